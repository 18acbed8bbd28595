import { branchName, parsePersonalBranch, PERSONAL_BRANCH_PREFIX } from '../request/names.js';
import { isPersonal, newReleaseRequest, type ReleaseRequest, type RequestTarget } from '../request/release-request.js';
import { provenanceFromEnvironment } from './ci-environment.js';
import type { Promotion } from './promote-from.js';
import { UsageError } from './usage-error.js';
import { printable } from '../request/outside-text.js';

const first = (value: string | undefined) => (value !== undefined && value.trim() !== '' ? value.trim() : undefined);

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
  /** What `--promote-from` found current on the other deployment (promote-from.ts). */
  promotion?: Promotion;
}

/**
 * Builds the request from flags and the CI's environment, without any network: what `--dry-run`
 * prints. `note` is told of choices the caller should know of (a personal branch over --deployment).
 */
export function buildRequest(options: EnqueueOptions, env: NodeJS.ProcessEnv, note: (line: string) => void = () => undefined): ReleaseRequest {
  if (options.promotion) return buildPromotion(options, options.promotion, env);
  const found = provenanceFromEnvironment(env);
  const branch = options.branch ?? usableBranch(found.branch, note);
  if (!options.stack) throw new UsageError('--stack is required');
  if (!options.release) throw new UsageError('--release is required');
  if (!options.image) throw new UsageError('--image is required (a full reference: registry/path:tag or @sha256:digest)');

  let target: RequestTarget;
  const personal = branch?.startsWith(PERSONAL_BRANCH_PREFIX) ? parsePersonalBranch(branch) : undefined;
  if (branch?.startsWith(PERSONAL_BRANCH_PREFIX) && !personal) {
    throw new UsageError(`branch '${branch}' is not of the form remote-run/<user>/<feature>`);
  }
  if (personal) {
    // One pipeline line serves every branch: a personal branch goes to its user's deployment.
    if (options.deployment) note(`branch '${printable(branch!, 200)}' is a personal branch: releasing to ${printable(personal.user, 40)}'s personal deployment, not --deployment ${printable(options.deployment, 40)}`);
    target = { stack: options.stack, release: options.release, personal };
  } else {
    if (!options.deployment) throw new UsageError('--deployment is required unless the branch is remote-run/<user>/<feature>');
    target = { stack: options.stack, release: options.release, deployment: options.deployment };
  }
  const requestedBy = options.requestedBy ?? first(env.HARBORMASTER_REQUESTED_BY) ?? found.requestedBy;
  if (!requestedBy) throw new UsageError('--requested-by (or HARBORMASTER_REQUESTED_BY) is required: no CI and no $USER found in the environment');
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

/**
 * A promotion: the image and the source of the release current on the other deployment, to the fixed
 * --deployment (a personal branch does not redirect it). Only flags override the source: the CI's own
 * branch and commit are those of the promoting job, not of the image.
 */
function buildPromotion(options: EnqueueOptions, promotion: Promotion, env: NodeJS.ProcessEnv): ReleaseRequest {
  if (!options.stack || !options.release) throw new UsageError('--stack and --release are required');
  if (!options.deployment) throw new UsageError('--promote-from needs --deployment: the deployment to promote to');
  const requestedBy = options.requestedBy ?? first(env.HARBORMASTER_REQUESTED_BY) ?? provenanceFromEnvironment(env).requestedBy;
  if (!requestedBy) throw new UsageError('--requested-by (or HARBORMASTER_REQUESTED_BY) is required: no CI and no $USER found in the environment');
  const { source } = promotion;
  const branch = options.branch ?? source.branch;
  const commit = options.commit ?? source.commit;
  const buildUrl = options.buildUrl ?? source.buildUrl;
  const built = newReleaseRequest({
    target: { stack: options.stack, release: options.release, deployment: options.deployment },
    image: promotion.image,
    requestedBy,
    source: { ...(branch ? { branch } : {}), ...(commit ? { commit: commit.toLowerCase() } : {}), ...(buildUrl ? { buildUrl } : {}) },
    promotedFrom: promotion.promotedFrom,
  });
  if (!built.ok) throw new UsageError(built.reason);
  return built.value;
}

/**
 * The CI's branch, if the request can carry it. One outside the request's alphabet is left out with a
 * note rather than fail the build: it is provenance only, unless it is a personal branch (which fits).
 */
function usableBranch(branch: string | undefined, note: (line: string) => void): string | undefined {
  // A personal branch is never dropped: it decides the target, and a bad one must stop the call.
  if (branch === undefined || branch.startsWith(PERSONAL_BRANCH_PREFIX)) return branch;
  const checked = branchName('branch').safeParse(branch);
  if (checked.success) return branch;
  note(`the CI's branch '${printable(branch, 200)}' is left out of the request: ${printable(checked.error.issues[0]?.message ?? 'not a branch name', 200)}`);
  return undefined;
}

/** The FIFO group: one per target, so a target's requests are delivered in order, one at a time. */
export function messageGroupId(target: RequestTarget): string {
  return isPersonal(target) ? `${target.stack}.${target.release}.~${target.personal.user}` : `${target.stack}.${target.release}.${target.deployment}`;
}

/** The region and endpoint of the AWS calls: flags, then the environment, then the queue URL. */
export function awsPlace(options: EnqueueOptions, env: NodeJS.ProcessEnv): { region?: string; endpoint?: string } {
  const queueUrl = options.queueUrl ?? env.HARBORMASTER_QUEUE_URL;
  const region = options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? (queueUrl ? regionOfQueue(queueUrl) : undefined);
  // Outside AWS (moto, LocalStack) the queue URL's own origin is the endpoint.
  const endpoint = options.endpoint ?? env.HARBORMASTER_AWS_ENDPOINT ?? (queueUrl && !regionOfQueue(queueUrl) ? new URL(queueUrl).origin : undefined);
  return { ...(region ? { region } : {}), ...(endpoint ? { endpoint } : {}) };
}

function regionOfQueue(url: string): string | undefined {
  return /sqs\.([a-z0-9-]+)\.amazonaws\.com/.exec(url)?.[1];
}

