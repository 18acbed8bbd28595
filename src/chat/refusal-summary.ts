import type { ChatMessage } from './chat.js';
import { formatDuration, plural } from './release-format.js';
import { untrusted } from './slack-text.js';

// Refusals of messages nobody is known to have written (not JSON, no envelope, a key the worker does
// not hold, a signature that does not match), counted and told in one chat message at a time: a
// flood of forgeries is a count, not a message each. Pure: the caller says what time it is.
//
// A summary falls due `gatherMs` after the first refusal it counts (so one burst is one message), and
// never sooner than `intervalMs` after the previous summary: at most one a minute by default.

export interface UnauthenticRefusal {
  readonly code: string;
  readonly reason: string;
  readonly messageId: string;
  /** Where the message was kept when the dead-letter queue could not take it, with that queue's error. */
  readonly keptAt?: string;
  readonly deadLetterError?: string;
}

export interface RefusalSummaryOptions {
  /** The least time between two summaries; default 60 s. */
  readonly intervalMs?: number;
  /** How long a summary waits after its first refusal, gathering the rest of a burst; default 10 s. */
  readonly gatherMs?: number;
  /** The distinct reasons quoted (by code and reason, in the order first seen); default 5. */
  readonly maxReasons?: number;
}

interface Counted {
  readonly firstAt: number;
  count: number;
  readonly byCode: Map<string, number>;
  /** The first distinct reasons, `code: reason`. */
  readonly reasons: string[];
  readonly firstMessageId: string;
  kept: number;
  firstKept?: { readonly keptAt: string; readonly error?: string };
}

export class RefusalSummary {
  private readonly intervalMs: number;
  private readonly gatherMs: number;
  private readonly maxReasons: number;
  private counted: Counted | undefined;
  private lastPostedAt = Number.NEGATIVE_INFINITY;

  constructor(options: RefusalSummaryOptions = {}) {
    this.intervalMs = options.intervalMs ?? 60_000;
    this.gatherMs = Math.min(options.gatherMs ?? 10_000, this.intervalMs);
    this.maxReasons = options.maxReasons ?? 5;
  }

  /** Counts one refusal, made at `now` (ms). */
  add(refusal: UnauthenticRefusal, now: number): void {
    const counted: Counted = (this.counted ??= { firstAt: now, count: 0, byCode: new Map<string, number>(), reasons: [], firstMessageId: refusal.messageId, kept: 0 });
    counted.count += 1;
    counted.byCode.set(refusal.code, (counted.byCode.get(refusal.code) ?? 0) + 1);
    const reason = `${refusal.code}: ${refusal.reason}`;
    if (counted.reasons.length < this.maxReasons && !counted.reasons.includes(reason)) counted.reasons.push(reason);
    if (refusal.keptAt !== undefined) {
      counted.kept += 1;
      counted.firstKept ??= { keptAt: refusal.keptAt, ...(refusal.deadLetterError !== undefined ? { error: refusal.deadLetterError } : {}) };
    }
  }

  /** When the summary of what is counted falls due (ms), or undefined when nothing is counted. */
  dueAt(): number | undefined {
    if (!this.counted) return undefined;
    return Math.max(this.counted.firstAt + this.gatherMs, this.lastPostedAt + this.intervalMs);
  }

  /**
   * The summary, if one is due at `now`, and the count starts again from nothing. `force` takes it
   * whenever there is one (a worker that stops says what it counted).
   */
  take(now: number, options: { force?: boolean } = {}): ChatMessage | undefined {
    const due = this.dueAt();
    if (due === undefined || (!options.force && now < due)) return undefined;
    const counted = this.counted!;
    this.counted = undefined;
    this.lastPostedAt = now;
    return summaryMessage(counted, now);
  }
}

function summaryMessage(counted: Counted, now: number): ChatMessage {
  const codes = [...counted.byCode].map(([code, count]) => `${untrusted(code, 40)} ${count}`).join(', ');
  const fields = [
    { title: 'Refusals', value: codes },
    { title: 'First reasons', value: counted.reasons.map((reason) => untrusted(reason, 200)).join('\n') },
    { title: 'First queue message', value: untrusted(counted.firstMessageId, 128) },
  ];
  const what =
    `Refused ${plural(counted.count, 'message')} not signed by a key this worker holds in the last ${formatDuration(now - counted.firstAt)} (${codes}). ` +
    'They changed nothing';
  if (counted.kept === 0) {
    return { text: `${what} and went to the dead-letter queue.`, fields, severity: 'warning' };
  }
  // The dead-letter queue itself is broken: a person has to look, so this says where the messages are.
  const kept = counted.firstKept!;
  fields.push({ title: 'Kept at (first)', value: untrusted(kept.keptAt, 300) });
  if (kept.error !== undefined) fields.push({ title: 'Dead-letter queue error', value: untrusted(kept.error, 300) });
  return {
    text: `${what}; the dead-letter queue could not take ${counted.kept} of them, kept on the bastion (the first at ${untrusted(kept.keptAt, 200)}).`,
    fields,
    severity: 'failure',
  };
}
