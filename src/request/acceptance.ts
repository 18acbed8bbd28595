import type { KeyScope, ReleaseConfig } from '../config/worker-config.js';
import { isProtectedDeployment } from '../config/deployments.js';
import { parseImageReference, repositoryAllowed } from './image-reference.js';
import { printable } from './outside-text.js';
import { describeTarget, isPersonal, validateReleaseRequest, type ReleaseRequest } from './release-request.js';
import { openEnvelope, type EnvelopeRefusal, type SigningKey, type StoredEnvelope } from './signed-envelope.js';

// The decision whether a queue message may become a release. Pure: body, keys, configuration and the
// clock in; a verdict out. The worker acts on the verdict; nothing here touches the network.

export type RefusalCode =
  | EnvelopeRefusal
  | 'invalid'
  | 'expired'
  | 'from-the-future'
  | 'unknown-target'
  | 'image-not-allowed'
  | 'user-not-allowed'
  | 'key-not-allowed';

export interface AcceptedRelease {
  readonly request: ReleaseRequest;
  readonly keyId: string;
  /** The value of the `deployment` tag: given, or derived from the user for a personal deployment. */
  readonly deployment: string;
  readonly releaseConfig: ReleaseConfig;
}

export type Verdict = { ok: true; release: AcceptedRelease } | { ok: false; code: RefusalCode; reason: string; releaseId?: string };

export interface AcceptancePolicy {
  readonly keys: ReadonlyMap<string, SigningKey>;
  readonly releases: readonly ReleaseConfig[];
  readonly maxAgeSeconds: number;
  /** Key ids limited to some targets (signing.keys[].scope); a key not listed may release any served target that is not protected. */
  readonly scopes?: ReadonlyMap<string, KeyScope>;
  /** Clock skew tolerated for a request that seems to come from the future. */
  readonly futureSkewSeconds?: number;
}

export function personalDeploymentName(pattern: string, user: string): string {
  return pattern.replaceAll('{user}', user.replace(/[._]/g, '-'));
}

/** The targets the configuration serves, named as records name them: its fixed deployments, and the personal deployment of each allowed user. */
export function servedTargetNames(releases: readonly ReleaseConfig[]): { readonly fixed: string[]; readonly personal: string[] } {
  return {
    fixed: releases.flatMap((r) => r.deployments.map((d) => `${r.stack}/${r.release}/${d}`)),
    personal: releases.flatMap((r) => (r.personal ? r.personal.users.map((u) => `${r.stack}/${r.release}/${personalDeploymentName(r.personal!.deployment, u)}`) : [])),
  };
}

/** `authentic` as in OpenedEnvelope: the signature was verified before the message was refused. */
export type OpenedRequest =
  | { ok: true; request: ReleaseRequest; keyId: string; envelope: StoredEnvelope }
  | { ok: false; code: RefusalCode; reason: string; authentic: boolean };

/**
 * Authenticates and validates a message: size, envelope, signature, then the request's shape. Says
 * nothing about whether the request may still be released: a request the release state already
 * knows is resumed from there, and only a new one is judged by `judgeNewRequest`.
 */
export function openRequest(body: string, keys: ReadonlyMap<string, SigningKey>): OpenedRequest {
  const opened = openEnvelope(body, keys);
  if (!opened.ok) return { ok: false, code: opened.code, reason: safeReason(opened.reason), authentic: opened.authentic };
  const validated = validateReleaseRequest(opened.payload);
  if (!validated.ok) return { ok: false, code: 'invalid', reason: safeReason(`request: ${validated.reason}`), authentic: true };
  return { ok: true, request: validated.value, keyId: opened.keyId, envelope: opened.envelope };
}

/**
 * Whether a request seen for the first time may become a release: its age, then what this worker
 * serves. The age is measured from when it was signed (`createdAt`) to `receivedAt`, when the queue
 * received it (SQS's SentTimestamp): time spent waiting in the queue behind other releases never turns
 * a valid request into a refused one. Replays are refused by this bound and by release-id uniqueness.
 */
export function judgeNewRequest(request: ReleaseRequest, keyId: string, policy: AcceptancePolicy, receivedAt: Date): Verdict {
  const refuse = (code: RefusalCode, reason: string): Verdict => ({ ok: false, code, reason, releaseId: request.releaseId });
  const ageSeconds = (receivedAt.getTime() - Date.parse(request.createdAt)) / 1000;
  if (ageSeconds > policy.maxAgeSeconds) {
    return refuse('expired', `request was signed ${Math.round(ageSeconds)} s before the queue received it, more than the ${policy.maxAgeSeconds} s allowed: enqueue it again`);
  }
  if (-ageSeconds > (policy.futureSkewSeconds ?? 60)) {
    return refuse('from-the-future', `request is dated ${Math.round(-ageSeconds)} s after the queue received it: check the clock of the machine that enqueued it`);
  }
  const served = servedRelease(request, policy.releases);
  if (!served.ok) return refuse(served.code, served.reason);
  const { deployment, releaseConfig } = served.release;
  const outOfScope = keyScopeRefusal(request, keyId, deployment, policy.scopes?.get(keyId), isProtectedTarget(request, releaseConfig, deployment));
  if (outOfScope) return refuse('key-not-allowed', safeReason(outOfScope));
  return { ok: true, release: { request, keyId, ...served.release } };
}

/** A message seen for the first time, judged whole: authenticated, valid, fresh and served. */
export function judgeMessage(body: string, policy: AcceptancePolicy, receivedAt: Date): Verdict {
  const opened = openRequest(body, policy.keys);
  if (!opened.ok) return opened;
  return judgeNewRequest(opened.request, opened.keyId, policy, receivedAt);
}

/** The most a refusal reason weighs: it is logged, posted to chat and sent as a message attribute. */
export const MAX_REASON_LENGTH = 1000;

/**
 * Every reason leaves this module through here. Reasons are built from escaped parts already; this
 * is the last guard, so that no later change can echo a control character or a credential.
 */
function safeReason(reason: string): string {
  return printable(reason, MAX_REASON_LENGTH);
}

export type ServedRelease =
  | { ok: true; release: Pick<AcceptedRelease, 'deployment' | 'releaseConfig'> }
  | { ok: false; code: RefusalCode; reason: string };

/** Whether this worker serves the request's target and image, and with which configuration. */
export function servedRelease(request: ReleaseRequest, releases: readonly ReleaseConfig[]): ServedRelease {
  const refuse = (code: RefusalCode, reason: string): ServedRelease => ({ ok: false, code, reason: safeReason(reason) });
  const { target } = request;
  const releaseConfig = releases.find((r) => r.stack === target.stack && r.release === target.release);
  if (!releaseConfig) return refuse('unknown-target', `this worker does not serve ${target.stack}/${target.release}`);
  let deployment: string;
  if (isPersonal(target)) {
    if (!releaseConfig.personal) return refuse('unknown-target', `${target.stack}/${target.release} has no personal deployments on this worker`);
    if (!releaseConfig.personal.users.includes(target.personal.user)) {
      return refuse('user-not-allowed', `user '${target.personal.user}' may not deploy ${describeTarget(target)}: ask ops to add them to personal.users`);
    }
    deployment = personalDeploymentName(releaseConfig.personal.deployment, target.personal.user);
  } else {
    if (!releaseConfig.deployments.includes(target.deployment)) return refuse('unknown-target', `this worker does not serve ${describeTarget(target)}`);
    deployment = target.deployment;
  }
  const image = parseImageReference(request.image);
  if (!image.ok) return refuse('invalid', image.reason);
  if (!repositoryAllowed(image.image.repository, releaseConfig.images.allowedRepositories)) {
    return refuse('image-not-allowed', `image repository '${printable(image.image.repository)}' is not allowed for ${target.stack}/${target.release}`);
  }
  return { ok: true, release: { deployment, releaseConfig } };
}

/** Whether the request's deployment is marked protected (releases[].deployments[].protected); a personal one never is. */
export function isProtectedTarget(request: ReleaseRequest, releaseConfig: ReleaseConfig, deployment: string): boolean {
  return !isPersonal(request.target) && isProtectedDeployment(releaseConfig, deployment);
}

/**
 * Why a key may not release the request's target under its scope, or undefined when it may. A key
 * without a scope may release every served deployment that is not `protectedDeployment` (marked
 * protected in releases[].deployments); only a scope that lists a protected deployment lets a key
 * release it. Checked after the target is known to be served, so the reason can name the deployment
 * the release would reach.
 */
export function keyScopeRefusal(request: ReleaseRequest, keyId: string, deployment: string, scope: KeyScope | undefined, protectedDeployment: boolean): string | undefined {
  const { target } = request;
  const release = `${target.stack}/${target.release}`;
  const what = `key '${keyId}' may not release ${describeTarget(target)} (deployment ${deployment})`;
  if (!scope) {
    if (!protectedDeployment) return undefined;
    return `${what}: ${deployment} is protected (releases[].deployments[].protected) and the key has no scope (signing.keys[].scope); sign with a key whose scope lists ${deployment} in its deployments, or ask ops to give this key such a scope`;
  }
  const todo = 'sign with a key whose scope includes it, or ask ops to widen the scope of the key';
  if (scope.releases && !scope.releases.includes(release)) {
    return `${what}: its scope (signing.keys[].scope.releases) allows only ${scope.releases.join(', ')}; ${todo}`;
  }
  if (isPersonal(target)) {
    if (!scope.personal) return `${what}: its scope (signing.keys[].scope.personal) does not allow personal deployments; ${todo}`;
    return undefined;
  }
  if (!scope.deployments.includes(target.deployment)) {
    const allowed =
      scope.deployments.length === 0
        ? 'allows only personal deployments'
        : `allows only the deployments ${scope.deployments.join(', ')}${scope.personal ? ' and personal deployments' : ''}`;
    return `${what}: its scope (signing.keys[].scope.deployments) ${allowed}; ${todo}`;
  }
  return undefined;
}
