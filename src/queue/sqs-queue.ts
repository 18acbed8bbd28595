import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isTransient, withRetry } from '../aws/transient.js';
import type { Logger } from '../log/logger.js';
import { printable } from '../request/outside-text.js';

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
   * it too. Rejects only when the message could be kept nowhere: it then stays on the request queue.
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

  async deadLetter(message: QueueMessage, refusal: Refusal): Promise<DeadLetterResult> {
    try {
      await this.sendToDeadLetterQueue(message, refusal);
    } catch (error) {
      // A permanent failure (no such queue, access denied) fails at once; a transient one after its
      // bounded retries. Either way it is not tried again by redelivery: the message is kept on disk
      // and acknowledged, so one bad dead-letter queue never turns into an endless loop.
      const failure = describeError(error);
      const log = this.logger.child({ messageId: message.id, refusal: refusal.code });
      if (this.options.undeliverableDirectory === undefined) {
        log.error({ err: error, transient: isTransient(error) }, 'the dead-letter queue refused the message and no undeliverable directory is configured; it stays on the request queue');
        throw new Error(`cannot move message ${message.id} to the dead-letter queue (${failure}) and there is nowhere else to keep it`, { cause: error });
      }
      let keptAt: string;
      try {
        keptAt = await this.keep(message, refusal, failure);
      } catch (keepError) {
        log.error({ err: keepError, deadLetterError: failure }, 'the dead-letter queue refused the message and it could not be kept on disk; it stays on the request queue');
        throw new Error(`cannot move message ${message.id} to the dead-letter queue (${failure}) nor keep it on disk (${describeError(keepError)})`, { cause: error });
      }
      log.error({ err: error, transient: isTransient(error), keptAt }, 'the dead-letter queue refused the message; its body is kept on disk and the message is acknowledged');
      await this.acknowledge(message);
      return { deadLettered: false, keptAt, error: failure };
    }
    await this.acknowledge(message);
    return { deadLettered: true };
  }

  private async sendToDeadLetterQueue(message: QueueMessage, refusal: Refusal): Promise<void> {
    const fifo = isFifoQueue(this.urls.deadLetter);
    await withRetry(
      async () => {
        await this.sqs.send(
          new SendMessageCommand({
            QueueUrl: this.urls.deadLetter,
            MessageBody: message.body.length > 0 ? message.body : '(empty message)',
            // Attribute values are escaped: SQS refuses most control characters in them, and they
            // are read by people and tools that would act on the rest.
            MessageAttributes: {
              'harbormaster.refusal': { DataType: 'String', StringValue: attributeValue(refusal.code, 64) },
              'harbormaster.reason': { DataType: 'String', StringValue: attributeValue(refusal.reason, MAX_ATTRIBUTE_CHARACTERS) },
              'harbormaster.original-message-id': { DataType: 'String', StringValue: attributeValue(message.id, 128) },
            },
            ...(fifo ? { MessageGroupId: 'refused', MessageDeduplicationId: message.id.replace(/[^A-Za-z0-9-]/g, '').slice(0, 128) } : {}),
          }),
        );
      },
      {
        what: 'moving the message to the dead-letter queue',
        logger: this.logger,
        retries: this.options.deadLetterRetries ?? 5,
        ...(this.options.deadLetterMinTimeoutMs !== undefined ? { minTimeoutMs: this.options.deadLetterMinTimeoutMs } : {}),
      },
    );
  }

  /** Writes the message, its refusal and the failure to `<directory>/<messageId>.json`, atomically. */
  private async keep(message: QueueMessage, refusal: Refusal, error: string): Promise<string> {
    const directory = this.options.undeliverableDirectory!;
    await mkdir(directory, { recursive: true, mode: 0o700 });
    const info = await lstat(directory);
    if (!info.isDirectory()) throw new Error(`${directory} is not a directory`);
    if ((info.mode & 0o077) !== 0) await chmod(directory, 0o700);
    const name = fileNameFor(message.id);
    const path = join(directory, `${name}.json`);
    const temporary = join(directory, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
    const record = {
      messageId: message.id,
      receiveCount: message.receiveCount,
      keptAt: (this.options.now?.() ?? new Date()).toISOString(),
      refusal: { code: refusal.code, reason: refusal.reason },
      deadLetterQueue: this.urls.deadLetter,
      deadLetterError: error,
      /** The message body exactly as received: send it again from here once the cause is fixed. */
      body: message.body,
    };
    const file = await open(temporary, 'wx', 0o600);
    try {
      await file.writeFile(`${JSON.stringify(record, null, 2)}\n`, 'utf8');
      await file.sync();
    } catch (writeError) {
      await file.close().catch(() => undefined);
      await unlink(temporary).catch(() => undefined);
      throw writeError;
    }
    await file.close();
    try {
      await rename(temporary, path);
    } catch (renameError) {
      await unlink(temporary).catch(() => undefined);
      throw renameError;
    }
    // The rename is durable once the directory is synced.
    const handle = await open(directory, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    return path;
  }
}

/** A message attribute value SQS accepts and a person can read: no control characters, no credentials. */
function attributeValue(text: string, max: number): string {
  const value = printable(text, max);
  return value.length > 0 ? value : '(empty)';
}

/** SQS message ids are UUIDs; anything else is made a safe file name all the same. */
function fileNameFor(messageId: string): string {
  const safe = messageId.replace(/[^A-Za-z0-9-]/g, '_').slice(0, 128);
  return safe.length > 0 && !/^[_-]+$/.test(safe) ? safe : `message-${randomBytes(6).toString('hex')}`;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return printable(String(error), 300);
  return printable(`${error.name}: ${error.message}`, 300);
}
