import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { after, before } from 'node:test';
import { MOTO_CREDENTIALS, MOTO_REGION, startMoto, type MotoServer } from '../../local-fleet/moto.js';

export function sqsClient(endpoint: string): SQSClient {
  return new SQSClient({ endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, maxAttempts: 1 });
}

export interface TestQueues {
  url: string;
  deadLetterUrl: string;
}

let counter = 0;

/** A request queue with its dead-letter queue, as ops would create them. */
export async function createQueues(sqs: SQSClient, options: { fifo?: boolean; visibilityTimeoutSeconds?: number; maxReceiveCount?: number } = {}): Promise<TestQueues> {
  const suffix = `${process.pid}-${++counter}${options.fifo ? '.fifo' : ''}`;
  const fifoAttributes = options.fifo ? { FifoQueue: 'true' } : {};
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `releases-dlq-${suffix}`, Attributes: fifoAttributes }));
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: `releases-${suffix}`,
      Attributes: {
        ...fifoAttributes,
        VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 30),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: options.maxReceiveCount ?? 5 }),
      },
    }),
  );
  return { url: queue.QueueUrl!, deadLetterUrl: dlq.QueueUrl! };
}

export async function deleteQueues(sqs: SQSClient, queues: TestQueues): Promise<void> {
  await sqs.send(new DeleteQueueCommand({ QueueUrl: queues.url })).catch(() => undefined);
  await sqs.send(new DeleteQueueCommand({ QueueUrl: queues.deadLetterUrl })).catch(() => undefined);
}

export async function sendRaw(sqs: SQSClient, url: string, body: string): Promise<string> {
  return (await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }))).MessageId!;
}

/** Reads every message of a queue without deleting it (visibility 0 is not allowed, so a short one). */
export async function drain(sqs: SQSClient, url: string, expected: number, timeoutMs = 10_000): Promise<Message[]> {
  const seen = new Map<string, Message>();
  const deadline = Date.now() + timeoutMs;
  while (seen.size < expected && Date.now() < deadline) {
    const result = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30, MessageAttributeNames: ['All'] }),
    );
    for (const message of result.Messages ?? []) seen.set(message.MessageId!, message);
  }
  return [...seen.values()];
}

export async function queueDepth(sqs: SQSClient, url: string): Promise<{ visible: number; inFlight: number }> {
  const attributes = (
    await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    )
  ).Attributes!;
  return { visible: Number(attributes.ApproximateNumberOfMessages), inFlight: Number(attributes.ApproximateNumberOfMessagesNotVisible) };
}

/** A moto_server for the current suite: started before its tests, stopped after them. */
export function motoForSuite(): { readonly moto: MotoServer; readonly sqs: SQSClient } {
  const suite = {} as { moto: MotoServer; sqs: SQSClient };
  before(async () => {
    suite.moto = await startMoto();
    suite.sqs = sqsClient(suite.moto.endpoint);
  });
  after(async () => {
    suite.sqs?.destroy();
    await suite.moto?.stop();
  });
  return suite;
}
