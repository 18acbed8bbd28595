import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger.js';
import type { CallOutcome } from './json-call.js';
import { IdleWaiters } from './idle-waiters.js';

// A queue of calls delivered one at a time, in order, in the background: retried with backoff (or
// after the server's Retry-After) until done, refused for good, or past their retry window. push()
// returns at once, so a release never waits for chat, GitHub or a rate limit. Sleeps are unref'd;
// flush() is what a process that wants its last calls out waits on, for as long as it chooses.

export interface SenderItem {
  /** Made again for every attempt, so it sends what is current then. */
  attempt(): Promise<CallOutcome>;
  /** Called once the call is done, with the answer's body. */
  done?(body: unknown): void | Promise<void>;
  /** Called when the call is given up on. */
  dropped?(): void;
  /** What the logs name it by; never a secret. */
  readonly summary: string;
}

export interface SenderOptions {
  readonly logger: Logger;
  readonly retryWindowMs: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly maxRetryAfterMs?: number;
  readonly maxQueued?: number;
  readonly flushTimeoutMs?: number;
}

export interface OrderedSender {
  push(item: SenderItem): void;
  flush(timeoutMs?: number): Promise<void>;
}

export function createOrderedSender(options: SenderOptions): OrderedSender {
  const minBackoffMs = options.minBackoffMs ?? 1_000;
  const maxBackoffMs = options.maxBackoffMs ?? 60_000;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  const maxQueued = Math.max(2, options.maxQueued ?? 500);
  const log = options.logger;
  const queue: Array<{ item: SenderItem; deadline: number }> = [];
  const idleWaiters = new IdleWaiters();
  let sending = false;

  const backoffMs = (failures: number) => {
    const exponential = Math.min(maxBackoffMs, minBackoffMs * 2 ** (failures - 1));
    return Math.round(exponential / 2 + Math.random() * (exponential / 2));
  };

  async function deliver({ item, deadline }: { item: SenderItem; deadline: number }): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      if (performance.now() >= deadline) {
        log.warn({ what: item.summary, attempts: attempt - 1 }, 'call dropped: not done within its retry window');
        return item.dropped?.();
      }
      const outcome = await item.attempt();
      if (outcome.kind === 'delivered') {
        if (attempt > 1) log.info({ what: item.summary, attempts: attempt }, 'call done after retrying');
        await item.done?.(outcome.body);
        return;
      }
      if (outcome.kind === 'drop') {
        log.warn({ what: item.summary, reason: outcome.reason }, 'call dropped: refused');
        return item.dropped?.();
      }
      const waitMs = outcome.retryAfterMs !== undefined ? Math.min(outcome.retryAfterMs, maxRetryAfterMs) : backoffMs(attempt);
      if (performance.now() + waitMs >= deadline) {
        log.warn({ what: item.summary, attempts: attempt, reason: outcome.reason }, 'call dropped: not done within its retry window');
        return item.dropped?.();
      }
      log[attempt === 1 ? 'warn' : 'debug']({ what: item.summary, attempt, reason: outcome.reason, retryInMs: waitMs }, 'call failed, retrying');
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
          log.error({ err: error, what: queue[0]!.item.summary }, 'sender failed on a call; dropped it');
        }
        queue.shift();
      }
    } finally {
      sending = false;
      idleWaiters.wakeAll();
    }
  }

  return {
    push(item) {
      if (queue.length >= maxQueued) {
        const [dropped] = queue.splice(1, 1);
        if (dropped) log.warn({ what: dropped.item.summary, queued: queue.length }, 'call dropped: too many waiting');
        dropped?.item.dropped?.();
      }
      queue.push({ item, deadline: performance.now() + options.retryWindowMs });
      if (!sending) void sendQueue();
    },
    flush(timeoutMs = options.flushTimeoutMs ?? 10_000) {
      if (!sending) return Promise.resolve();
      return idleWaiters.wait(timeoutMs, () => log.info({ queued: queue.length, timeoutMs }, 'flush timed out; calls still queued'));
    },
  };
}
