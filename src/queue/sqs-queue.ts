import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { withRetry } from '../aws/transient.js';
import type { Logger } from '../log/logger.js';

// The worker's narrow view of its queues. Everything the consumer needs and nothing else, so the loop
// can be tested against a real SQS-compatible server and reasoned about without one.

export interface QueueMessage {
  readonly id: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly receiveCount: number;
}

export interface Refusal {
  readonly code: string;
  readonly reason: string;
}

export interface WorkQueue {
  /** Long-polls for one message; undefined when the wait ended empty. Rejects with AbortError when aborted. */
  receive(options: { waitSeconds: number; visibilityTimeoutSeconds: number; signal: AbortSignal }): Promise<QueueMessage | undefined>;
  extendVisibility(message: QueueMessage, seconds: number): Promise<void>;
  acknowledge(message: QueueMessage): Promise<void>;
  /** Moves a refused message to the dead-letter queue with its reason attached, then deletes it. */
  deadLetter(message: QueueMessage, refusal: Refusal): Promise<void>;
}

export const isFifoQueue = (url: string) => url.endsWith('.fifo');

export class SqsWorkQueue implements WorkQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly urls: { readonly queue: string; readonly deadLetter: string },
    private readonly logger: Logger,
  ) {}

  async receive(options: { waitSeconds: number; visibilityTimeoutSeconds: number; signal: AbortSignal }) {
    const result = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.urls.queue,
        MaxNumberOfMessages: 1,
        WaitTimeSeconds: options.waitSeconds,
        VisibilityTimeout: options.visibilityTimeoutSeconds,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
      { abortSignal: options.signal },
    );
    const message = result.Messages?.[0];
    if (!message?.ReceiptHandle || !message.MessageId) return undefined;
    return {
      id: message.MessageId,
      receiptHandle: message.ReceiptHandle,
      body: message.Body ?? '',
      receiveCount: Number(message.Attributes?.ApproximateReceiveCount ?? '1'),
    };
  }

  extendVisibility(message: QueueMessage, seconds: number) {
    return withRetry(
      async () => {
        await this.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: this.urls.queue, ReceiptHandle: message.receiptHandle, VisibilityTimeout: seconds }));
      },
      { what: 'extending message visibility', logger: this.logger, retries: 2 },
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

  async deadLetter(message: QueueMessage, refusal: Refusal) {
    const fifo = isFifoQueue(this.urls.deadLetter);
    await withRetry(
      async () => {
        await this.sqs.send(
          new SendMessageCommand({
            QueueUrl: this.urls.deadLetter,
            MessageBody: message.body.length > 0 ? message.body : '(empty message)',
            MessageAttributes: {
              'harbormaster.refusal': { DataType: 'String', StringValue: refusal.code },
              'harbormaster.reason': { DataType: 'String', StringValue: refusal.reason.slice(0, 1000) },
              'harbormaster.original-message-id': { DataType: 'String', StringValue: message.id },
            },
            ...(fifo ? { MessageGroupId: 'refused', MessageDeduplicationId: message.id.replace(/[^A-Za-z0-9-]/g, '').slice(0, 128) } : {}),
          }),
        );
      },
      { what: 'moving the message to the dead-letter queue', logger: this.logger },
    );
    await this.acknowledge(message);
  }
}
