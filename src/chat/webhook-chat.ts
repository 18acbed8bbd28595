import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger.js';
import type { Chat, ChatMessage } from './chat.js';
import { postToWebhook } from './webhook-attempt.js';
import { toSlackPayload, type SlackPayload } from './slack-payload.js';
import { IdleWaiters } from './idle-waiters.js';

// Chat over a Slack-compatible incoming webhook. post() only queues; one background sender delivers
// the queue in order (a message is never overtaken by a later one, so "succeeded" never shows up
// above "started"). Each message is retried until it is delivered, refused for good (a 4xx), or its
// retry window has passed: chat news older than that helps nobody, and the release never waits.
//
// The sender's sleeps are unref'd so chat never keeps a process alive; flush() is what a process
// that wants its last messages out waits on, for as long as it chooses.

export interface WebhookChatOptions {
  /** The incoming-webhook URL. A secret: only its host is ever logged. */
  readonly url: string;
  readonly logger: Logger;
  /** Shown as the poster's name where the receiver allows it. */
  readonly username?: string;
  /** How long a message is worth delivering, from post(). Default 10 minutes. */
  readonly retryWindowMs?: number;
  readonly fetchImpl?: typeof fetch;
  /** Per attempt. Default 10 s. */
  readonly timeoutMs?: number;
  /** First backoff after a failure (doubled each time, with jitter). Default 1 s. */
  readonly minBackoffMs?: number;
  /** Longest backoff between two attempts. Default 60 s. */
  readonly maxBackoffMs?: number;
  /** Longest Retry-After honoured; a server asking for more is asked again after this. Default 60 s. */
  readonly maxRetryAfterMs?: number;
  /** Messages waiting at most; past it the oldest waiting one is dropped. Default 500. */
  readonly maxQueued?: number;
  /** flush()'s timeout when none is given. Default 10 s. */
  readonly flushTimeoutMs?: number;
}

interface QueuedMessage {
  readonly payload: SlackPayload;
  /** performance.now() after which the message is no longer worth sending. */
  readonly deadline: number;
}

const DEFAULTS = {
  retryWindowMs: 10 * 60_000,
  timeoutMs: 10_000,
  minBackoffMs: 1_000,
  maxBackoffMs: 60_000,
  maxRetryAfterMs: 60_000,
  maxQueued: 500,
  flushTimeoutMs: 10_000,
};

/** Throws only when the URL is not an http(s) URL (a configuration error, reported without the URL). */
export function createWebhookChat(options: WebhookChatOptions): Chat {
  const settings = { ...DEFAULTS, ...definedOnly(options) };
  const host = webhookHost(options.url);
  const fetchImpl = options.fetchImpl ?? fetch;
  const log = options.logger.child({ component: 'chat', webhookHost: host });
  const maxQueued = Math.max(2, settings.maxQueued);

  const queue: QueuedMessage[] = [];
  const idleWaiters = new IdleWaiters();
  let sending = false;

  // Enough of the message for ops to know which one was lost; String() because a caller's bug
  // (a message without text) must still be logged, not crash the sender.
  function summary(item: QueuedMessage): string {
    return String(item.payload.text).slice(0, 120);
  }

  function backoffMs(failures: number): number {
    const exponential = Math.min(settings.maxBackoffMs, settings.minBackoffMs * 2 ** (failures - 1));
    // Half fixed, half random: keeps several workers that failed together from retrying together.
    return Math.round(exponential / 2 + Math.random() * (exponential / 2));
  }

  async function deliver(item: QueuedMessage): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      if (performance.now() >= item.deadline) {
        log.warn({ text: summary(item), attempts: attempt - 1 }, 'chat message dropped: not delivered within its retry window');
        return;
      }
      const outcome = await postToWebhook(options.url, item.payload, { fetchImpl, timeoutMs: settings.timeoutMs });
      if (outcome.kind === 'delivered') {
        if (attempt > 1) log.info({ attempts: attempt }, 'chat message delivered after retrying');
        return;
      }
      if (outcome.kind === 'drop') {
        log.warn({ text: summary(item), reason: outcome.reason }, 'chat message dropped: the webhook refused it');
        return;
      }
      const waitMs =
        outcome.retryAfterMs !== undefined ? Math.min(outcome.retryAfterMs, settings.maxRetryAfterMs) : backoffMs(attempt);
      if (performance.now() + waitMs >= item.deadline) {
        log.warn({ text: summary(item), attempts: attempt, reason: outcome.reason }, 'chat message dropped: not delivered within its retry window');
        return;
      }
      // The first failure is news for ops; the retries after it would only be noise.
      const level = attempt === 1 ? 'warn' : 'debug';
      log[level]({ attempt, reason: outcome.reason, retryInMs: waitMs }, 'chat post failed, retrying');
      await sleep(waitMs, undefined, { ref: false });
    }
  }

  async function sendQueue(): Promise<void> {
    sending = true;
    try {
      while (queue.length > 0) {
        try {
          await deliver(queue[0]!);
        } catch (error) {
          // deliver() is written not to throw; if it ever does, one message is lost, not the sender.
          log.error({ err: error }, 'chat sender failed on a message; dropped it');
        }
        queue.shift();
      }
    } finally {
      sending = false;
      idleWaiters.wakeAll();
    }
  }

  return {
    post(message: ChatMessage): void {
      try {
        if (queue.length >= maxQueued) {
          // queue[0] is in flight; the oldest waiting one is the least worth keeping.
          const [dropped] = queue.splice(1, 1);
          if (dropped) log.warn({ text: summary(dropped), queued: queue.length }, 'chat message dropped: too many waiting');
        }
        queue.push({ payload: toSlackPayload(message, options.username), deadline: performance.now() + settings.retryWindowMs });
        if (!sending) void sendQueue();
      } catch (error) {
        log.error({ err: error }, 'chat message could not be queued');
      }
    },

    flush(timeoutMs = settings.flushTimeoutMs): Promise<void> {
      if (!sending) return Promise.resolve();
      return idleWaiters.wait(timeoutMs, () => log.info({ queued: queue.length, timeoutMs }, 'chat flush timed out; messages still queued'));
    },
  };
}

function webhookHost(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('chat webhook URL is not a valid URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error('chat webhook URL must be http(s)');
  return parsed.host;
}

/** Options given as undefined fall back to the defaults instead of overriding them. */
function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as Partial<T>;
}
