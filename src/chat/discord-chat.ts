import type { Logger } from '../log/logger.js';
import type { Chat, ChatMessage } from './chat.js';
import { callJson, type CallOutcome } from './json-call.js';
import { createConversationChat } from './release-conversation.js';
import { headline, OUTCOME_WORDS, type ReleaseView } from './release-view.js';

// Chat through a Discord webhook, which can edit what it sent: the release's message is executed with
// ?wait=true (the answer is the message, with its id) and edited with PATCH
// /webhooks/{id}/{token}/messages/{message_id}. Host lines are folded into the message (its latest
// line); failures and restores pending are sent as messages of their own. Discord shows text as it
// is, so Slack's escapes are undone; allowed_mentions is empty, so no text from a request pings anyone.
// The webhook URL holds its token: it is never logged.

export interface DiscordChatOptions {
  /** https://discord.com/api/webhooks/{id}/{token}, with ?thread_id= if it posts in a thread. */
  readonly url: string;
  readonly username?: string;
  readonly logger: Logger;
  readonly retryWindowMs?: number;
  readonly fetchImpl?: typeof fetch;
  readonly timeoutMs?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

const COLORS = { info: 0x439fe0, success: 0x2eb67d, warning: 0xecb22e, failure: 0xe01e5a } as const;

const plain = (text: string) => text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

export function createDiscordChat(options: DiscordChatOptions): Chat {
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw new Error('chat.discord webhook URL is not a valid URL');
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new Error('chat.discord webhook URL must be http(s)');
  const fetchImpl = options.fetchImpl ?? fetch;
  const secrets = [options.url, base.pathname];
  const send = (method: 'POST' | 'PATCH', url: URL, body: unknown): Promise<CallOutcome> =>
    callJson({ method, url: url.toString(), body }, { fetchImpl, timeoutMs: options.timeoutMs ?? 10_000, secrets });
  const executeUrl = () => {
    const url = new URL(base);
    url.searchParams.set('wait', 'true');
    return url;
  };
  const messageUrl = (id: string) => {
    const url = new URL(base);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/messages/${encodeURIComponent(id)}`;
    return url;
  };
  const common = { allowed_mentions: { parse: [] }, ...(options.username ? { username: options.username } : {}) };

  function viewBody(view: ReleaseView) {
    const color = view.outcome === undefined ? COLORS.info : view.outcome === 'succeeded' ? COLORS.success : view.outcome === 'rolled-back' || view.outcome === 'failed' ? COLORS.failure : COLORS.warning;
    return {
      content: clip(plain(headline(view)).replace(/^:[a-z_]+: /, ''), 2000),
      embeds: [
        {
          color,
          fields: [
            { name: 'Target', value: plain(view.target), inline: true },
            { name: 'Image', value: clip(plain(view.image), 1024), inline: false },
            { name: 'Requested by', value: plain(view.requestedBy) || '-', inline: true },
            { name: 'Step', value: clip(plain(view.step), 1024) || '-', inline: true },
            { name: 'Hosts', value: `${view.done} of ${view.total}`, inline: true },
            { name: 'Outcome', value: view.outcome ? OUTCOME_WORDS[view.outcome] : 'in progress', inline: true },
          ],
          footer: { text: clip(`Release ${plain(view.releaseId)}${view.latest ? ` · ${plain(view.latest)}` : ''}`, 2048) },
        },
      ],
    };
  }

  function messageBody(message: ChatMessage) {
    const fields = (message.fields ?? []).slice(0, 25).map(({ title, value }) => ({ name: clip(plain(title), 256), value: clip(plain(value), 1024) || '-', inline: value.length <= 40 }));
    return {
      content: clip(plain(message.text), 2000),
      ...(fields.length > 0 ? { embeds: [{ color: COLORS[message.severity ?? 'info'], fields }] } : {}),
      ...common,
    };
  }

  return createConversationChat(
    {
      via: 'discord',
      postMain: (view) => send('POST', executeUrl(), { ...viewBody(view), ...common }),
      mainId: (body) => {
        const id = (body as { id?: unknown } | undefined)?.id;
        return typeof id === 'string' ? id : undefined;
      },
      updateMain: (id, view) => send('PATCH', messageUrl(id), { ...viewBody(view), allowed_mentions: { parse: [] } }),
      folds: (message) => !(message.severity === 'failure' || message.event?.kind === 'restore-pending'),
      reply: (_id, message) => send('POST', executeUrl(), messageBody(message)),
      post: (message) => send('POST', executeUrl(), messageBody(message)),
    },
    {
      logger: options.logger.child({ component: 'chat', via: 'discord', webhookHost: base.host }),
      retryWindowMs: options.retryWindowMs ?? 10 * 60_000,
      ...(options.minBackoffMs !== undefined ? { minBackoffMs: options.minBackoffMs } : {}),
      ...(options.maxBackoffMs !== undefined ? { maxBackoffMs: options.maxBackoffMs } : {}),
    },
  );
}
