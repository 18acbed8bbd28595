import { parseRetryAfter } from './retry-after.js';
import type { SlackPayload } from './slack-payload.js';

// One POST to the webhook, and what it means for the message: delivered, worth another try (the
// network, a 5xx, a 429 with its Retry-After), or never going to succeed (any other 4xx, a
// redirect). Never throws, and never puts the URL (a secret: whoever has it can post) in a reason.

export type AttemptOutcome =
  | { readonly kind: 'delivered' }
  | { readonly kind: 'retry'; readonly reason: string; readonly retryAfterMs?: number }
  | { readonly kind: 'drop'; readonly reason: string };

export interface AttemptOptions {
  readonly fetchImpl: typeof fetch;
  readonly timeoutMs: number;
}

const MAX_REASON_BODY = 200;

export async function postToWebhook(url: string, payload: SlackPayload, options: AttemptOptions): Promise<AttemptOutcome> {
  let response: Response;
  try {
    response = await options.fetchImpl(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      // A redirect would re-send the message somewhere the configuration never named.
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    return { kind: 'retry', reason: scrub(describeError(error), url) };
  }

  const status = response.status;
  if (status >= 200 && status < 300) {
    await response.body?.cancel().catch(() => undefined);
    return { kind: 'delivered' };
  }
  const reason = scrub(`HTTP ${status}${await bodyExcerpt(response)}`, url);
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    return retryAfterMs === undefined ? { kind: 'retry', reason } : { kind: 'retry', reason, retryAfterMs };
  }
  if (status >= 500 || status === 408) return { kind: 'retry', reason };
  return { kind: 'drop', reason };
}

async function bodyExcerpt(response: Response): Promise<string> {
  try {
    const text = (await response.text()).replace(/\s+/g, ' ').trim();
    return text ? `: ${text.slice(0, MAX_REASON_BODY)}` : '';
  } catch {
    return '';
  }
}

/** fetch reports "fetch failed" and hides the useful part (ECONNREFUSED, a TLS error) in `cause`. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 3 && current instanceof Error; depth += 1) {
    const code = (current as Error & { code?: unknown }).code;
    parts.push(`${current.name}${typeof code === 'string' ? ` ${code}` : ''}: ${current.message}`);
    current = current.cause;
  }
  return parts.length > 0 ? parts.join(' <- ') : String(error);
}

/** Removes the URL and its path (where Slack, Mattermost and Discord keep the secret) from a text. */
function scrub(text: string, url: string): string {
  let scrubbed = text.split(url).join('[webhook]');
  try {
    const { pathname, search } = new URL(url);
    for (const secret of [pathname + search, pathname]) {
      if (secret.length > 1) scrubbed = scrubbed.split(secret).join('[webhook path]');
    }
  } catch {
    // An unparsable URL was refused when the chat was created; nothing more to remove.
  }
  return scrubbed;
}
