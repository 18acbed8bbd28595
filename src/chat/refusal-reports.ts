import type { Chat } from './chat.js';
import { requestRefused, type RequestRefusedInput } from './release-messages.js';
import { RefusalSummary, type RefusalSummaryOptions } from './refusal-summary.js';

// How the worker tells chat of refused messages. A request whose signature was verified (written by
// CI, or by whoever holds a key the worker holds) gets a message of its own: someone may be waiting on
// it. Every other refusal is counted into a summary (refusal-summary.ts), posted when it falls due by
// a timer that does not keep the process alive, and at close. Telling is counting or queueing a chat
// message: it never waits on chat.

export interface ToldRefusal extends RequestRefusedInput {
  /** The message's signature was verified with a key the worker holds before it was refused. */
  readonly authentic: boolean;
}

export interface RefusalReports {
  told(refusal: ToldRefusal): void;
  /** Posts the summary of what is counted and not yet posted, and stops the timer. */
  close(): void;
}

export function refusalReports(chat: Chat, options: RefusalSummaryOptions & { readonly now?: () => number } = {}): RefusalReports {
  const now = options.now ?? Date.now;
  const summary = new RefusalSummary(options);
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    const due = summary.dueAt();
    if (due === undefined || timer) return;
    timer = setTimeout(postDue, Math.max(0, due - now()));
    timer.unref();
  };
  function postDue() {
    timer = undefined;
    const message = summary.take(now());
    if (message) chat.post(message);
    schedule();
  }
  return {
    told(refusal) {
      if (refusal.authentic) {
        chat.post(requestRefused(refusal));
        return;
      }
      summary.add(refusal, now());
      schedule();
    },
    close() {
      clearTimeout(timer);
      timer = undefined;
      const message = summary.take(now(), { force: true });
      if (message) chat.post(message);
    },
  };
}
