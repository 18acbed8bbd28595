import { ChangeMessageVisibilityCommand, GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { printable } from '../request/outside-text.js';

// What `enqueue --wait` learns from the queue while no worker has recorded its release: whether the
// request was refused before it could be recorded (unauthentic, malformed: the worker moves it to the
// dead-letter queue, naming the original message id), whether any worker is taking messages at all, and
// whether every message, the caller's included, has been taken.
// A refused authentic request is in the release state; these are the cases the state never sees.

export interface DeadLetterRefusal {
  readonly code: string;
  readonly reason: string;
}

export interface QueueWatch {
  /** The refusal of the sent message, if the dead-letter queue holds it; undefined if not (or it cannot be read). */
  refusal(): Promise<DeadLetterRefusal | undefined>;
  /** True when messages wait on the queue and none is in flight: no worker is receiving. */
  idle(): Promise<boolean>;
  /** True when no message waits on the queue: every one sent, the caller's included, was received by someone. */
  allTaken(): Promise<boolean>;
}

/** How many batches of the dead-letter queue one look reads, and how long what it read stays hidden. */
const DEAD_LETTER_BATCHES = 3;
const PEEK_VISIBILITY_SECONDS = 5;

export function watchQueue(sqs: SQSClient, queueUrl: string, messageId: string, note: (line: string) => void): QueueWatch {
  let deadLetterUrl: Promise<string | undefined> | undefined;
  let saidCannotPeek = false;

  const findDeadLetterQueue = async (): Promise<string | undefined> => {
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['RedrivePolicy'] }));
    const arn = (JSON.parse(Attributes?.RedrivePolicy ?? '{}') as { deadLetterTargetArn?: string }).deadLetterTargetArn;
    const parts = arn?.split(':');
    if (!parts || parts.length < 6) return undefined;
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: parts[5], QueueOwnerAWSAccountId: parts[4] }));
    return QueueUrl;
  };

  const counts = async () => {
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    return { waiting: Number(Attributes.ApproximateNumberOfMessages), inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible) };
  };

  const cannotPeek = (why: string) => {
    if (!saidCannotPeek) note(`cannot look into the dead-letter queue (${printable(why, 200)}): a request refused as unauthentic is only seen when the wait ends`);
    saidCannotPeek = true;
    return undefined;
  };

  return {
    async refusal() {
      deadLetterUrl ??= findDeadLetterQueue().catch((error: unknown) => cannotPeek(`${(error as Error).name}: ${(error as Error).message}`));
      const url = await deadLetterUrl;
      if (!url) return saidCannotPeek ? undefined : cannotPeek('the queue has no redrive policy naming one');
      try {
        for (let batch = 0; batch < DEAD_LETTER_BATCHES; batch++) {
          const { Messages = [] } = await sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: url,
              MaxNumberOfMessages: 10,
              WaitTimeSeconds: 0,
              VisibilityTimeout: PEEK_VISIBILITY_SECONDS,
              MessageAttributeNames: ['harbormaster.original-message-id', 'harbormaster.refusal', 'harbormaster.reason'],
            }),
          );
          if (Messages.length === 0) return undefined;
          for (const message of Messages) {
            const attributes = message.MessageAttributes ?? {};
            // The worker names the original message; SQS's own redrive keeps its id.
            const original = attributes['harbormaster.original-message-id']?.StringValue ?? message.MessageId;
            if (original !== messageId) continue;
            // Put back at once for ops (replay, inspection): CI only looked.
            await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: 0 })).catch(() => undefined);
            return {
              code: printable(attributes['harbormaster.refusal']?.StringValue ?? 'redriven', 64),
              reason: printable(attributes['harbormaster.reason']?.StringValue ?? 'the queue moved it to the dead-letter queue after too many receives', 1000),
            };
          }
        }
      } catch (error) {
        return cannotPeek(`${(error as Error).name}: ${(error as Error).message}`);
      }
      return undefined;
    },

    async idle() {
      const { waiting, inFlight } = await counts();
      return waiting > 0 && inFlight === 0;
    },

    async allTaken() {
      return (await counts()).waiting === 0;
    },
  };
}
