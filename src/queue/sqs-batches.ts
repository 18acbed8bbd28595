import {
  DeleteMessageBatchCommand,
  SendMessageBatchCommand,
  type BatchResultErrorEntry,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { withRetry, type RetryOptions } from '../aws/transient.js';
import { printable } from '../request/outside-text.js';

// SQS's batch calls, up to ten entries a call, each entry succeeding or failing on its own. A call
// that fails whole is retried like a single call (transient failures only). Of a call that answers,
// the entries the server failed (SenderFault false) are sent again, the next attempt carrying only
// them; an entry refused as the sender's fault is not retried. Every entry ends with its own outcome.

export const MAX_BATCH_ENTRIES = 10;
/**
 * The most bytes (bodies and attributes) put in one SendMessageBatch, by our choice: the limit every
 * SQS queue had before it became 1 MiB. An entry larger than this goes in a batch of its own.
 */
export const MAX_BATCH_BYTES = 256 * 1024;

/** An entry SQS failed in a batch, as an error named by its code: transient unless it was the sender's fault. */
export class BatchEntryError extends Error {
  readonly $retryable?: { throttling: boolean };
  readonly senderFault: boolean;

  constructor(entry: BatchResultErrorEntry) {
    super(printable(entry.Message ?? 'failed in the batch', 300));
    this.name = printable(entry.Code ?? 'BatchEntryFailed', 80);
    this.senderFault = entry.SenderFault === true;
    if (!this.senderFault) this.$retryable = { throttling: false };
  }
}

export type EntryOutcome = { readonly ok: true } | { readonly ok: false; readonly error: unknown };

interface BatchAnswer {
  readonly Successful?: ReadonlyArray<{ readonly Id?: string | undefined }> | undefined;
  readonly Failed?: readonly BatchResultErrorEntry[] | undefined;
}

/** One batch call for `count` entries (ids '0', '1'...), retried for the entries still pending; an outcome per entry, in order. */
async function callBatch(count: number, call: (ids: readonly number[]) => Promise<BatchAnswer>, retry: RetryOptions): Promise<EntryOutcome[]> {
  const outcomes: Array<EntryOutcome | undefined> = new Array(count).fill(undefined);
  let pending = Array.from({ length: count }, (_, i) => i);
  try {
    await withRetry(async () => {
      const answer = await call(pending);
      for (const done of answer.Successful ?? []) outcomes[Number(done.Id)] = { ok: true };
      let again: BatchEntryError | undefined;
      for (const failed of answer.Failed ?? []) {
        const error = new BatchEntryError(failed);
        if (error.senderFault) outcomes[Number(failed.Id)] = { ok: false, error };
        else again ??= error;
      }
      pending = pending.filter((i) => outcomes[i] === undefined);
      // Entries the answer failed on the server's side (or did not mention) go in the next attempt.
      if (pending.length > 0) throw again ?? new BatchEntryError({ Id: '', Code: 'BatchEntryMissing', SenderFault: false, Message: 'the answer did not mention the entry' });
    }, retry);
  } catch (error) {
    for (const i of pending) outcomes[i] ??= { ok: false, error };
  }
  return outcomes.map((outcome) => outcome ?? { ok: false, error: new Error('no outcome') });
}

/** Sends up to ten messages in one SendMessageBatch (retried as above). */
export function sendMessageBatch(sqs: SQSClient, queueUrl: string, entries: ReadonlyArray<Omit<SendMessageBatchRequestEntry, 'Id'>>, retry: RetryOptions): Promise<EntryOutcome[]> {
  return callBatch(
    entries.length,
    (ids) => sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: ids.map((i) => ({ ...entries[i]!, Id: String(i) })) })),
    retry,
  );
}

/** Deletes up to ten messages in one DeleteMessageBatch (retried as above). */
export function deleteMessageBatch(sqs: SQSClient, queueUrl: string, receiptHandles: readonly string[], retry: RetryOptions): Promise<EntryOutcome[]> {
  return callBatch(
    receiptHandles.length,
    (ids) => sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: ids.map((i) => ({ Id: String(i), ReceiptHandle: receiptHandles[i]! })) })),
    retry,
  );
}

/** Entries (by their sizes in bytes) grouped into batches of at most ten and MAX_BATCH_BYTES, in order; indexes. */
export function packBatches(sizes: readonly number[]): number[][] {
  const batches: number[][] = [];
  let current: number[] = [];
  let bytes = 0;
  sizes.forEach((size, index) => {
    if (current.length > 0 && (current.length >= MAX_BATCH_ENTRIES || bytes + size > MAX_BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(index);
    bytes += size;
  });
  if (current.length > 0) batches.push(current);
  return batches;
}
