import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { clientOptions } from '../aws/clients.js';
import { withRetry } from '../aws/transient.js';
import { isFifoQueue } from '../queue/sqs-queue.js';
import { describeTarget, type ReleaseRequest } from '../request/release-request.js';
import { MAX_MESSAGE_BYTES, signEnvelope } from '../request/signed-envelope.js';
import { loadEnqueueKey } from '../secrets/signing-keys.js';
import { awsPlace, buildRequest, messageGroupId, type EnqueueOptions } from './enqueue.js';
import { UsageError } from './usage-error.js';

// `enqueue` without --dry-run: the request signed and sent to SQS. Apart from enqueue.ts (which
// builds the request) so `--dry-run` loads no AWS client.

/** Sends the request; resolves with it, and where it was sent (for `--wait`). */
export interface Sent {
  readonly request: ReleaseRequest;
  readonly queueUrl: string;
  /** SQS's id of the message: the dead-letter queue names it when the worker refuses the request. */
  readonly messageId: string;
  readonly region: string;
  readonly endpoint?: string;
}

export async function enqueue(options: EnqueueOptions, env: NodeJS.ProcessEnv, note: (line: string) => void = () => undefined): Promise<Sent> {
  const queueUrl = options.queueUrl ?? env.HARBORMASTER_QUEUE_URL;
  if (!queueUrl) throw new UsageError('--queue-url (or HARBORMASTER_QUEUE_URL) is required');
  const { region, endpoint } = awsPlace(options, env);
  if (!region) throw new UsageError('--region (or AWS_REGION) is required: the queue URL does not name one');
  const request = buildRequest(options, env, note);
  const key = loadEnqueueKey(env);
  const body = signEnvelope(request, key);
  if (Buffer.byteLength(body) > MAX_MESSAGE_BYTES) throw new UsageError(`request is larger than ${MAX_MESSAGE_BYTES} bytes`);

  const sqs = new SQSClient(clientOptions({ region, ...(endpoint ? { endpoint } : {}) }));
  let messageId = '';
  try {
    await withRetry(
      async () => {
        const sent = await sqs.send(
          new SendMessageCommand({
            QueueUrl: queueUrl,
            MessageBody: body,
            MessageAttributes: {
              'harbormaster.release-id': { DataType: 'String', StringValue: request.releaseId },
              'harbormaster.target': { DataType: 'String', StringValue: describeTarget(request.target) },
            },
            ...(isFifoQueue(queueUrl) ? { MessageGroupId: messageGroupId(request.target), MessageDeduplicationId: request.releaseId } : {}),
          }),
        );
        messageId = sent.MessageId ?? '';
      },
      { what: 'sending the request', retries: 3 },
    );
  } catch (error) {
    throw new Error(`cannot send the request to ${queueUrl}: ${(error as Error).message}`, { cause: error });
  } finally {
    sqs.destroy();
  }
  return { request, queueUrl, messageId, region, ...(endpoint ? { endpoint } : {}) };
}
