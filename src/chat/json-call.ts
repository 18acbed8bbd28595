import { parseRetryAfter } from './retry-after.js';
import { describeError } from './webhook-attempt.js';

// One call to a JSON web API (Slack's Web API, Discord's or GitHub's REST API), and what it means for
// the message: done (with the answer's body), worth another try (the network, a 5xx, a 429 or a
// rate-limit 403, with how long the server asked to wait), or never going to succeed (any other 4xx, a
// redirect). Never throws; never puts a secret (a token, a webhook path) in a reason.

export type CallOutcome =
  | { readonly kind: 'delivered'; readonly status: number; readonly body: unknown }
  | { readonly kind: 'retry'; readonly reason: string; readonly retryAfterMs?: number }
  | { readonly kind: 'drop'; readonly reason: string };

export interface CallOptions {
  readonly fetchImpl: typeof fetch;
  readonly timeoutMs: number;
  /** Texts removed from every reason (tokens, webhook paths). */
  readonly secrets: readonly string[];
}

export interface JsonRequest {
  readonly method: 'POST' | 'PATCH';
  readonly url: string;
  readonly headers?: Record<string, string>;
  readonly body: unknown;
}

const MAX_REASON_BODY = 200;

export async function callJson(request: JsonRequest, options: CallOptions): Promise<CallOutcome> {
  const scrub = (text: string) => options.secrets.reduce((out, secret) => (secret.length > 3 ? out.split(secret).join('[secret]') : out), text);
  let response: Response;
  try {
    response = await options.fetchImpl(request.url, {
      method: request.method,
      headers: { 'content-type': 'application/json; charset=utf-8', ...request.headers },
      body: JSON.stringify(request.body),
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    return { kind: 'retry', reason: scrub(describeError(error)) };
  }
  const text = await response.text().catch(() => '');
  const status = response.status;
  if (status >= 200 && status < 300) {
    let body: unknown = undefined;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    return { kind: 'delivered', status, body };
  }
  const excerpt = text.replace(/\s+/g, ' ').trim().slice(0, MAX_REASON_BODY);
  const reason = scrub(`HTTP ${status}${excerpt ? `: ${excerpt}` : ''}`);
  const retryAfterMs = retryAfter(response, text);
  const rateLimited = status === 429 || (status === 403 && (response.headers.get('x-ratelimit-remaining') === '0' || response.headers.has('retry-after')));
  if (rateLimited || status >= 500 || status === 408) return retryAfterMs === undefined ? { kind: 'retry', reason } : { kind: 'retry', reason, retryAfterMs };
  return { kind: 'drop', reason };
}

/** Retry-After (Slack, GitHub, Discord), else Discord's retry_after in the body, else GitHub's x-ratelimit-reset. */
function retryAfter(response: Response, text: string): number | undefined {
  const header = parseRetryAfter(response.headers.get('retry-after'));
  if (header !== undefined) return header;
  try {
    const seconds = (JSON.parse(text) as { retry_after?: unknown }).retry_after;
    if (typeof seconds === 'number' && seconds >= 0) return Math.ceil(seconds * 1000);
  } catch {
    // Not JSON: no hint in the body.
  }
  const reset = Number(response.headers.get('x-ratelimit-reset'));
  if (response.headers.get('x-ratelimit-remaining') === '0' && reset > 0) return Math.max(0, reset * 1000 - Date.now());
  return undefined;
}

