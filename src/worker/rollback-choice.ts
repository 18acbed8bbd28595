import { parseImageReference } from '../request/image-reference.js';
import { voucherOf } from '../request/vouching.js';
import { newReleaseRecord, type ReleaseRecord } from '../state/release-record.js';

// A rollback, decided: which release's image to go back to, and the new release that does it. Pure:
// the worker reads the target's recent releases and claims what this returns (rollback-requests.ts);
// `harbormaster rollback` asks the same question first, so that a request that cannot be met is
// refused at the command line.

/** Statuses of releases that put their image on hosts (all or some): what counts as "current". */
const CHANGED_HOSTS = new Set<ReleaseRecord['status']>(['running', 'succeeded', 'stopped', 'failed', 'interrupted']);

export type RollbackChoice = { readonly ok: true; readonly to: ReleaseRecord; readonly of?: ReleaseRecord } | { readonly ok: false; readonly reason: string };

/**
 * `recent`: the target's releases, newest first. The current image is that of the newest release that
 * put its image on hosts (running, succeeded, stopped, failed or interrupted; a rolled-back, refused
 * or superseded one left the hosts as they were). Without `to`, the choice is the newest succeeded
 * release whose image differs from it (by reference or recorded digest) and that no succeeded rollback
 * undid; with `to`, that release, which must be of this target and have succeeded.
 */
export function chooseRollback(target: string, recent: readonly ReleaseRecord[], to?: ReleaseRecord | string): RollbackChoice {
  const of = recent.find((r) => CHANGED_HOSTS.has(r.status));
  if (typeof to === 'string') return { ok: false, reason: `--to ${to}: no such release in the release state (never accepted here, or past its retention)` };
  if (to) {
    if (to.target !== target) return { ok: false, reason: `--to ${to.releaseId} is a release of ${to.target}, not of ${target}` };
    if (to.status !== 'succeeded') return { ok: false, reason: `--to ${to.releaseId} ${to.status === 'running' || to.status === 'accepted' || to.status === 'interrupted' ? 'has not ended' : `ended ${to.status}`}: only a release that succeeded can be gone back to` };
    return { ok: true, to, ...(of ? { of } : {}) };
  }
  const current = of?.request.image;
  // A release a succeeded rollback undid is no place to go back to; images compare by tag or recorded digest.
  const undone = new Set(recent.flatMap((r) => (r.origin?.kind === 'rollback' && r.status === 'succeeded' && r.origin.of ? [r.origin.of] : [])));
  const previous = recent.find((r) => r.status === 'succeeded' && !undone.has(r.releaseId) && !(of && sameImage(r, of)));
  if (!previous) {
    return { ok: false, reason: `no succeeded release of ${target} with an image other than the current one (${current ?? 'none known'}) among its last ${recent.length} release(s); name one with --to RELEASE_ID` };
  }
  return { ok: true, to: previous, ...(of ? { of } : {}) };
}

/** The same image: by the reference released, or by the digest a pull of either recorded. */
function sameImage(a: ReleaseRecord, b: ReleaseRecord): boolean {
  const of = (r: ReleaseRecord) => new Set([r.request.image, repeatImage(r)]);
  const theirs = of(b);
  return [...of(a)].some((image) => theirs.has(image));
}

/**
 * The image a repeat of `release` goes by: the digest its pull recorded when it is of the same
 * repository (a tag pushed again since names another image), else the reference it was released as.
 */
export function repeatImage(release: Pick<ReleaseRecord, 'request' | 'imageDigest'>): string {
  const digest = release.imageDigest === undefined ? undefined : parseImageReference(release.imageDigest);
  const image = parseImageReference(release.request.image);
  return digest?.ok && image.ok && digest.image.digest !== undefined && digest.image.repository === image.image.repository ? release.imageDigest! : release.request.image;
}

/**
 * The new release: the request of `to` with the operator's release id, its creation time and its
 * requester (so newest-wins makes it the newest, and chat names who rolled back), by digest, resting
 * on the signed release that vouches for `to`.
 */
export function rollbackRecord(choice: { to: ReleaseRecord; of?: ReleaseRecord }, asked: { releaseId: string; by: string; at: string; note?: string; reason?: string }, now: Date, worker: string): ReleaseRecord {
  const { to, of } = choice;
  const request = { ...to.request, releaseId: asked.releaseId, image: repeatImage(to), requestedBy: asked.by, createdAt: now.toISOString() };
  return {
    ...newReleaseRecord({ request, keyId: to.keyId, vouchedBy: voucherOf(to), target: to.target, deployment: to.deployment, now, worker }),
    origin: { kind: 'rollback', to: to.releaseId, ...(of ? { of: of.releaseId } : {}), by: asked.by, ...(asked.note ? { note: asked.note } : {}), at: asked.at, ...(asked.reason ? { reason: asked.reason } : {}) },
  };
}
