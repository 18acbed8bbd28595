import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { clientOptions } from '../aws/clients.js';
import { withRetry } from '../aws/transient.js';
import { isFifoQueue } from '../queue/sqs-queue.js';
import { parsePersonalBranch, PERSONAL_BRANCH_PREFIX } from '../request/names.js';
import { describeTarget, isPersonal, newReleaseRequest, type ReleaseRequest, type RequestTarget } from '../request/release-request.js';
import { signEnvelope, MAX_MESSAGE_BYTES } from '../request/signed-envelope.js';
import { loadEnqueueKey } from '../secrets/signing-keys.js';
import { provenanceFromEnvironment } from './ci-environment.js';
import { UsageError } from './usage-error.js';

export interface EnqueueOptions {
  queueUrl?: string;
  region?: string;
  endpoint?: string;
  stack?: string;
  release?: string;
  deployment?: string;
  branch?: string;
  image?: string;
  requestedBy?: string;
  commit?: string;
  buildUrl?: string;
}

/** Builds the request from flags and the CI's environment, without any network: what `--dry-run` prints. */
export function buildRequest(options: EnqueueOptions, env: NodeJS.ProcessEnv): ReleaseRequest {
  const found = provenanceFromEnvironment(env);
  const branch = options.branch ?? found.branch;
  if (!options.stack) throw new UsageError('--stack is required');
  if (!options.release) throw new UsageError('--release is required');
  if (!options.image) throw new UsageError('--image is required (a full reference: registry/path:tag or @sha256:digest)');

  let target: RequestTarget;
  const personal = branch?.startsWith(PERSONAL_BRANCH_PREFIX) ? parsePersonalBranch(branch) : undefined;
  if (branch?.startsWith(PERSONAL_BRANCH_PREFIX) && !personal) {
    throw new UsageError(`branch '${branch}' is not of the form remote-run/<user>/<feature>`);
  }
  if (personal) {
    if (options.deployment) throw new UsageError(`--deployment cannot be combined with the personal branch '${branch}'; the deployment comes from the user`);
    target = { stack: options.stack, release: options.release, personal };
  } else {
    if (!options.deployment) throw new UsageError('--deployment is required unless the branch is remote-run/<user>/<feature>');
    target = { stack: options.stack, release: options.release, deployment: options.deployment };
  }
  const requestedBy = options.requestedBy ?? found.requestedBy;
  if (!requestedBy) throw new UsageError('--requested-by is required: no CI user or $USER found in the environment');
  const commit = options.commit ?? found.commit;
  const buildUrl = options.buildUrl ?? found.buildUrl;
  const built = newReleaseRequest({
    target,
    image: options.image,
    requestedBy,
    source: { ...(branch ? { branch } : {}), ...(commit ? { commit: commit.toLowerCase() } : {}), ...(buildUrl ? { buildUrl } : {}) },
  });
  if (!built.ok) throw new UsageError(built.reason);
  return built.value;
}

/** The FIFO group: one per target, so a target's requests are delivered in order, one at a time. */
export function messageGroupId(target: RequestTarget): string {
  return isPersonal(target) ? `${target.stack}.${target.release}.~${target.personal.user}` : `${target.stack}.${target.release}.${target.deployment}`;
}

/** Sends the request; resolves with it, and where it was sent (for `--wait`). */
export async function enqueue(options: EnqueueOptions, env: NodeJS.ProcessEnv): Promise<{ request: ReleaseRequest; region: string; endpoint?: string }> {
  const queueUrl = options.queueUrl ?? env.HARBORMASTER_QUEUE_URL;
  if (!queueUrl) throw new UsageError('--queue-url (or HARBORMASTER_QUEUE_URL) is required');
  const region = options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? regionOfQueue(queueUrl);
  if (!region) throw new UsageError('--region (or AWS_REGION) is required: the queue URL does not name one');
  const request = buildRequest(options, env);
  const key = loadEnqueueKey(env);
  const body = signEnvelope(request, key);
  if (Buffer.byteLength(body) > MAX_MESSAGE_BYTES) throw new UsageError(`request is larger than ${MAX_MESSAGE_BYTES} bytes`);

  // Outside AWS (moto, LocalStack) the queue URL's own origin is the endpoint.
  const endpoint = options.endpoint ?? env.HARBORMASTER_AWS_ENDPOINT ?? (regionOfQueue(queueUrl) ? undefined : new URL(queueUrl).origin);
  const sqs = new SQSClient(clientOptions({ region, ...(endpoint ? { endpoint } : {}) }));
  try {
    await withRetry(
      async () => {
        await sqs.send(
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
      },
      { what: 'sending the request', retries: 3 },
    );
  } catch (error) {
    throw new Error(`cannot send the request to ${queueUrl}: ${(error as Error).message}`, { cause: error });
  } finally {
    sqs.destroy();
  }
  return { request, region, ...(endpoint ? { endpoint } : {}) };
}

function regionOfQueue(url: string): string | undefined {
  return /sqs\.([a-z0-9-]+)\.amazonaws\.com/.exec(url)?.[1];
}

