import { AsyncLocalStorage } from 'node:async_hooks';
import type { Rollout, RolloutOutcome } from '../rollout/rollout.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import type { Chat, ChatMessage } from './chat.js';

// Which release a chat message belongs to. The rollout posts messages without naming their release;
// `scopedRollout` runs each release inside an async scope, so everything posted while it runs (by the
// runner, the host reconciler, a reconnecting SSH session) is known to belong to it. Chats that keep
// one message per release, and the GitHub and metrics listeners, read the scope; the rollout is unchanged.

const scope = new AsyncLocalStorage<RecordedRelease>();

/** The release whose rollout is running in the caller's async context, if any. */
export function currentRelease(): RecordedRelease | undefined {
  return scope.getStore();
}

/** Told when a release's rollout starts and ends on this worker (it holds the target's lease meanwhile). */
export interface RunListener {
  runStarted?(release: RecordedRelease): void;
  runEnded?(release: RecordedRelease, outcome: RolloutOutcome | undefined): void;
}

export function scopedRollout(rollout: Rollout, listeners: readonly RunListener[] = []): Rollout {
  return {
    run(release, context) {
      for (const listener of listeners) safely(() => listener.runStarted?.(release));
      return scope.run(release, async () => {
        let outcome: RolloutOutcome | undefined;
        try {
          outcome = await rollout.run(release, context);
          return outcome;
        } finally {
          for (const listener of listeners) safely(() => listener.runEnded?.(release, outcome));
        }
      });
    },
  };
}

/** One chat for the rollout to post to, handing every message to each of several (chat, GitHub, metrics). */
export function fanOut(chats: readonly Chat[]): Chat {
  if (chats.length === 1) return chats[0]!;
  return {
    post(message: ChatMessage) {
      for (const chat of chats) safely(() => chat.post(message));
    },
    async flush(timeoutMs?: number) {
      await Promise.all(chats.map((chat) => chat.flush(timeoutMs).catch(() => undefined)));
    },
  };
}

function safely(call: () => void): void {
  try {
    call();
  } catch {
    // A listener's bug never reaches the release; each listener logs its own failures.
  }
}
