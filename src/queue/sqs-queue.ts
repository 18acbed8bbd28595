import { ChangeMessageVisibilityCommand, DeleteMessageCommand, ReceiveMessageCommand, SQSClient, type SendMessageBatchRequestEntry } from '@aws-sdk/client-sqs';
import { isTransient, withRetry } from '../aws/transient.js';
import type { Logger } from '../log/logger.js';
import { printable } from '../request/outside-text.js';
import { deleteMessageBatch, packBatches, sendMessageBatch } from './sqs-batches.js';
import { TurnBatcher } from './turn-batcher.js';
import { keepUndeliverable } from './undeliverable.js';

// The worker's narrow view of its queues. Everything the consumer needs and nothing else, so the loop
// can be tested against a real SQS-compatible server and reasoned about without one.

export interface QueueMessage {
  readonly id: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly receiveCount: number;
  /** When SQS received it (SentTimestamp): a request's age is measured to here, never to when a worker got to it. */
  readonly sentAt?: Date;
}

export interface Refusal {
  readonly code: string;
  readonly reason: string;
}

/**
 * Where a refused message went. `deadLettered: false`: the dead-letter queue could not take it
 * (it does not exist, access is denied, or it stayed unreachable through the retries), so its body,
 * refusal and the error were written to `keptAt` (a file ops can read and re-send from) and the
 * message was acknowledged all the same: a refused message is never retried.
 */
export type DeadLetterResult =
  | { readonly deadLettered: true }
  | { readonly deadLettered: false; readonly keptAt: string; readonly error: string };

export interface WorkQueue {
  /** Long-polls for up to `max` messages (1 to 10; default 1); empty when the wait ended empty. Rejects with AbortError when aborted. */
  receive(options: { waitSeconds: number; visibilityTimeoutSeconds: number; signal: AbortSignal; max?: number }): Promise<QueueMessage[]>;
  extendVisibility(message: QueueMessage, seconds: number): Promise<void>;
  acknowledge(message: QueueMessage): Promise<void>;
  /** Hands the message back: visible again to any worker after `seconds`. */
  handBack(message: QueueMessage, seconds: number): Promise<void>;
  /**
   * Moves a refused message to the dead-letter queue with its reason attached, then deletes it; if
   * the dead-letter queue cannot take it, keeps it on disk instead (see DeadLetterResult) and deletes
   * it too. Rejects only when the message could be kept nowhere, or not deleted: it then stays on the
   * request queue. The SQS queue sends the refusals of one turn of the event loop together
   * (SendMessageBatch and DeleteMessageBatch, ten to a call).
   */
  deadLetter(message: QueueMessage, refusal: Refusal): Promise<DeadLetterResult>;
}

export interface SqsWorkQueueOptions {
  /**
   * Where a refused message is kept when the dead-letter queue cannot take it, one file per message
   * (`<directory>/<messageId>.json`, mode 0600, directory 0700). The worker passes
   * `<stateDirectory>/undeliverable`. Without it such a message is left on the request queue (and
   * SQS's own redrive policy, if the queue has one, ends its redeliveries).
   */
  readonly undeliverableDirectory?: string;
  /** Retries of a transient dead-letter failure (throttling, 5xx, network) before keeping it on disk. */
  readonly deadLetterRetries?: number;
  readonly deadLetterMinTimeoutMs?: number;
  readonly now?: () => Date;
}

/** The longest reason sent as an attribute, by our choice (SQS's own limit is the 256 KiB message). */
const MAX_ATTRIBUTE_CHARACTERS = 1000;

export const isFifoQueue = (url: string) => url.endsWith('.fifo');

export class SqsWorkQueue implements WorkQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly urls: { readonly queue: string; readonly deadLetter: string },
    private readonly logger: Logger,
    private readonly options: SqsWorkQueueOptions = {},
  ) {}

  /** Refusals made in one turn of the event loop, dead-lettered together. */
  private readonly deadLetters = new TurnBatcher<DeadLetterItem, DeadLetterResult>((items) => this.deadLetterTogether(items));

  async receive(options: { waitSeconds: number; visibilityTimeoutSeconds: number; signal: AbortSignal; max?: number }): Promise<QueueMessage[]> {
    const result = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.urls.queue,
        MaxNumberOfMessages: Math.max(1, Math.min(10, options.max ?? 1)),
        WaitTimeSeconds: options.waitSeconds,
        VisibilityTimeout: options.visibilityTimeoutSeconds,
        MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      }),
      { abortSignal: options.signal },
    );
    return (result.Messages ?? [])
      .filter((message) => message.ReceiptHandle && message.MessageId)
      .map((message) => ({
        id: message.MessageId!,
        receiptHandle: message.ReceiptHandle!,
        body: message.Body ?? '',
        receiveCount: Number(message.Attributes?.ApproximateReceiveCount ?? '1'),
        ...(message.Attributes?.SentTimestamp ? { sentAt: new Date(Number(message.Attributes.SentTimestamp)) } : {}),
      }));
  }

  extendVisibility(message: QueueMessage, seconds: number) {
    return withRetry(
      async () => {
        await this.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: this.urls.queue, ReceiptHandle: message.receiptHandle, VisibilityTimeout: seconds }));
      },
      { what: 'extending message visibility', logger: this.logger, retries: 2 },
    );
  }

  handBack(message: QueueMessage, seconds: number) {
    return withRetry(
      async () => {
        await this.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: this.urls.queue, ReceiptHandle: message.receiptHandle, VisibilityTimeout: seconds }));
      },
      { what: 'handing the message back', logger: this.logger, retries: 2 },
    );
  }

  acknowledge(message: QueueMessage) {
    return withRetry(
      async () => {
        await this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.urls.queue, ReceiptHandle: message.receiptHandle }));
      },
      { what: 'deleting the message', logger: this.logger },
    );
  }

  deadLetter(message: QueueMessage, refusal: Refusal): Promise<DeadLetterResult> {
    return this.deadLetters.add({ message, refusal });
  }

  /** The refused messages of one turn, in batches (ten at most, MAX_BATCH_BYTES at most), the batches side by side. */
  private deadLetterTogether(items: readonly DeadLetterItem[]): Array<Promise<DeadLetterResult>> {
    const fifo = isFifoQueue(this.urls.deadLetter);
    const entries = items.map((item) => deadLetterEntry(item, fifo));
    const answers: Array<Promise<DeadLetterResult>> = new Array(items.length);
    for (const batch of packBatches(entries.map(entryBytes))) {
      const settled = this.deadLetterBatch(
        batch.map((i) => items[i]!),
        batch.map((i) => entries[i]!),
      );
      batch.forEach((index, k) => {
        answers[index] = settled.then((outcomes) => {
          const outcome = outcomes[k]!;
          if (!outcome.ok) throw outcome.error;
          return outcome.value;
        });
      });
    }
    return answers;
  }

  /**
   * One batch: sent to the dead-letter queue together; each message the dead-letter queue could not
   * take (a permanent failure at once, a transient one after its bounded retries) is kept on disk
   * instead, so one bad dead-letter queue never turns into an endless loop; then every message sent
   * or kept is deleted from the request queue, together. A message kept nowhere, or not deleted,
   * fails alone and stays on the request queue.
   */
  private async deadLetterBatch(items: readonly DeadLetterItem[], entries: ReadonlyArray<Omit<SendMessageBatchRequestEntry, 'Id'>>): Promise<Array<Settled<DeadLetterResult>>> {
    const sent = await sendMessageBatch(this.sqs, this.urls.deadLetter, entries, {
      what: 'moving refused messages to the dead-letter queue',
      logger: this.logger,
      retries: this.options.deadLetterRetries ?? 5,
      ...(this.options.deadLetterMinTimeoutMs !== undefined ? { minTimeoutMs: this.options.deadLetterMinTimeoutMs } : {}),
    });
    const placed: Array<Settled<DeadLetterResult>> = await Promise.all(
      items.map(async (item, k): Promise<Settled<DeadLetterResult>> => {
        const outcome = sent[k]!;
        if (outcome.ok) return { ok: true, value: { deadLettered: true } };
        try {
          return { ok: true, value: await this.keepInstead(item, outcome.error) };
        } catch (error) {
          return { ok: false, error };
        }
      }),
    );
    const toDelete = placed.flatMap((outcome, k) => (outcome.ok ? [k] : []));
    if (toDelete.length === 0) return placed;
    const deleted = await deleteMessageBatch(
      this.sqs,
      this.urls.queue,
      toDelete.map((k) => items[k]!.message.receiptHandle),
      { what: 'deleting refused messages', logger: this.logger },
    );
    toDelete.forEach((k, d) => {
      const outcome = deleted[d]!;
      if (outcome.ok) return;
      const { message, refusal } = items[k]!;
      this.logger.error({ err: outcome.error, messageId: message.id, refusal: refusal.code }, 'the refused message was placed but deleting it from the request queue failed; it will be delivered again');
      placed[k] = { ok: false, error: new Error(`message ${message.id} was placed but deleting it failed (${describeError(outcome.error)})`, { cause: outcome.error }) };
    });
    return placed;
  }

  /** A message the dead-letter queue refused, kept on disk: where, and why. Rejects when there is nowhere to keep it. */
  private async keepInstead(item: DeadLetterItem, error: unknown): Promise<DeadLetterResult> {
    const { message, refusal } = item;
    const failure = describeError(error);
    const log = this.logger.child({ messageId: message.id, refusal: refusal.code });
    if (this.options.undeliverableDirectory === undefined) {
      log.error({ err: error, transient: isTransient(error) }, 'the dead-letter queue refused the message and no undeliverable directory is configured; it stays on the request queue');
      throw new Error(`cannot move message ${message.id} to the dead-letter queue (${failure}) and there is nowhere else to keep it`, { cause: error });
    }
    let keptAt: string;
    try {
      keptAt = await keepUndeliverable(this.options.undeliverableDirectory, { message, refusal, deadLetterQueue: this.urls.deadLetter, error: failure, keptAt: this.options.now?.() ?? new Date() });
    } catch (keepError) {
      log.error({ err: keepError, deadLetterError: failure }, 'the dead-letter queue refused the message and it could not be kept on disk; it stays on the request queue');
      throw new Error(`cannot move message ${message.id} to the dead-letter queue (${failure}) nor keep it on disk (${describeError(keepError)})`, { cause: error });
    }
    log.error({ err: error, transient: isTransient(error), keptAt }, 'the dead-letter queue refused the message; its body is kept on disk and the message is acknowledged');
    return { deadLettered: false, keptAt, error: failure };
  }
}

interface DeadLetterItem {
  readonly message: QueueMessage;
  readonly refusal: Refusal;
}

type Settled<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

/** A refused message as the dead-letter queue gets it: its body, and its refusal in attributes. */
function deadLetterEntry({ message, refusal }: DeadLetterItem, fifo: boolean): Omit<SendMessageBatchRequestEntry, 'Id'> {
  return {
    MessageBody: message.body.length > 0 ? message.body : '(empty message)',
    // Attribute values are escaped: SQS refuses most control characters in them, and they are read
    // by people and tools that would act on the rest.
    MessageAttributes: {
      'harbormaster.refusal': { DataType: 'String', StringValue: attributeValue(refusal.code, 64) },
      'harbormaster.reason': { DataType: 'String', StringValue: attributeValue(refusal.reason, MAX_ATTRIBUTE_CHARACTERS) },
      'harbormaster.original-message-id': { DataType: 'String', StringValue: attributeValue(message.id, 128) },
    },
    ...(fifo ? { MessageGroupId: 'refused', MessageDeduplicationId: message.id.replace(/[^A-Za-z0-9-]/g, '').slice(0, 128) } : {}),
  };
}

/** What SQS counts of an entry against a batch's size: the body, and each attribute's name, type and value. */
function entryBytes(entry: Omit<SendMessageBatchRequestEntry, 'Id'>): number {
  const attributes = Object.entries(entry.MessageAttributes ?? {}).reduce(
    (sum, [name, value]) => sum + Buffer.byteLength(name) + Buffer.byteLength(value.DataType ?? '') + Buffer.byteLength(value.StringValue ?? ''),
    0,
  );
  return Buffer.byteLength(entry.MessageBody ?? '') + attributes;
}

/** A message attribute value SQS accepts and a person can read: no control characters, no credentials. */
function attributeValue(text: string, max: number): string {
  const value = printable(text, max);
  return value.length > 0 ? value : '(empty)';
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return printable(String(error), 300);
  return printable(`${error.name}: ${error.message}`, 300);
}
