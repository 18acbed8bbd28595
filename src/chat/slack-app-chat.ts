import type { Logger } from '../log/logger.js';
import type { Chat, ChatMessage } from './chat.js';
import { callJson, type CallOutcome } from './json-call.js';
import { createConversationChat } from './release-conversation.js';
import { headline, viewBlocks, type ReleaseView } from './release-view.js';
import { messageBlocks } from './slack-payload.js';

// Chat as a Slack app: the Web API's chat.postMessage and chat.update with the bot token (scope
// chat:write). One message per release kept current, host lines and details in its thread
// (thread_ts), a failure broadcast to the channel with the requester mentioned. Slack answers HTTP
// 200 with {ok: false, error} for a refused call (dropped, except `ratelimited`, tried again) and
// HTTP 429 with Retry-After when rate limited (waited for). The token is never logged.

export interface SlackAppChatOptions {
  readonly botToken: string;
  /** A channel id: chat.update does not take a channel name. */
  readonly channel: string;
  /** Default https://slack.com/api. */
  readonly apiUrl?: string;
  /** CI names (a request's requestedBy) to Slack user ids. */
  readonly users?: Readonly<Record<string, string>>;
  readonly logger: Logger;
  readonly retryWindowMs?: number;
  readonly fetchImpl?: typeof fetch;
  readonly timeoutMs?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly maxRetryAfterMs?: number;
}

export function createSlackAppChat(options: SlackAppChatOptions): Chat {
  const apiUrl = (options.apiUrl ?? 'https://slack.com/api').replace(/\/+$/, '');
  const fetchImpl = options.fetchImpl ?? fetch;
  const { channel } = options;
  const users = options.users ?? {};

  async function call(method: 'chat.postMessage' | 'chat.update', body: Record<string, unknown>): Promise<CallOutcome> {
    const outcome = await callJson(
      { method: 'POST', url: `${apiUrl}/${method}`, headers: { authorization: `Bearer ${options.botToken}` }, body },
      { fetchImpl, timeoutMs: options.timeoutMs ?? 10_000, secrets: [options.botToken] },
    );
    if (outcome.kind !== 'delivered') return outcome;
    const answer = outcome.body as { ok?: unknown; error?: unknown } | undefined;
    if (answer?.ok === true) return outcome;
    const error = typeof answer?.error === 'string' ? answer.error : 'no ok in the answer';
    return error === 'ratelimited' ? { kind: 'retry', reason: `${method}: ${error}` } : { kind: 'drop', reason: `${method}: ${error}` };
  }

  const common = { unfurl_links: false, unfurl_media: false };
  const viewBody = (view: ReleaseView) => ({ channel, text: headline(view), blocks: viewBlocks(view) });

  return createConversationChat(
    {
      via: 'slack',
      channel,
      postMain: (view) => call('chat.postMessage', { ...viewBody(view), ...common }),
      mainId: (body) => {
        const ts = (body as { ts?: unknown } | undefined)?.ts;
        return typeof ts === 'string' ? ts : undefined;
      },
      updateMain: (ts, view) => call('chat.update', { ...viewBody(view), ts }),
      folds: () => false,
      reply: (ts, message: ChatMessage, mention) => {
        const prefix = mention ? `${mention} ` : '';
        return call('chat.postMessage', {
          channel,
          text: `${prefix}${message.text}`,
          blocks: messageBlocks(message, prefix),
          ...(ts !== undefined ? { thread_ts: ts, ...(mention ? { reply_broadcast: true } : {}) } : {}),
          ...common,
        });
      },
      post: (message) => call('chat.postMessage', { channel, text: message.text, blocks: messageBlocks(message), ...common }),
    },
    {
      logger: options.logger.child({ component: 'chat', via: 'slack-app' }),
      retryWindowMs: options.retryWindowMs ?? 10 * 60_000,
      ...(options.minBackoffMs !== undefined ? { minBackoffMs: options.minBackoffMs } : {}),
      ...(options.maxBackoffMs !== undefined ? { maxBackoffMs: options.maxBackoffMs } : {}),
      ...(options.maxRetryAfterMs !== undefined ? { maxRetryAfterMs: options.maxRetryAfterMs } : {}),
      mentionOf: (requestedBy) => (users[requestedBy] ? `<@${users[requestedBy]}>` : undefined),
    },
  );
}
