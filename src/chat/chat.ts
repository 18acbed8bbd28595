import type { ReleaseEvent } from './release-events.js';

// Chat is told what happens; it never decides anything. Posting never blocks or fails a release:
// messages are queued and delivered in order in the background, retried with backoff, and 429s
// are honoured with their Retry-After.

export interface ChatMessage {
  /** One-line plain text (the fallback every Slack-compatible receiver shows). */
  readonly text: string;
  /** Optional Slack attachments-style detail lines. */
  readonly fields?: ReadonlyArray<{ readonly title: string; readonly value: string }>;
  readonly severity?: 'info' | 'success' | 'warning' | 'failure';
  /** What the message tells about a release, for chats that keep one message per release and for listeners (GitHub, metrics). */
  readonly event?: ReleaseEvent;
}

export interface Chat {
  /** Queues a message; returns at once. */
  post(message: ChatMessage): void;
  /** Waits until every queued message is delivered or given up on, at most timeoutMs. */
  flush(timeoutMs?: number): Promise<void>;
}

export const silentChat: Chat = { post() {}, async flush() {} };
