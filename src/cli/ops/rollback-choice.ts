import { randomUUID } from 'node:crypto';
import { newReleaseRecord, type ReleaseRecord } from '../../state/release-record.js';

// `harbormaster rollback`, decided: which release's image to go back to, and the new release that does
// it. Pure but for the new id: the command reads the target's recent releases and claims what this returns.

/** Statuses of releases that put their image on hosts (all or some): what counts as "current". */
const CHANGED_HOSTS = new Set<ReleaseRecord['status']>(['running', 'succeeded', 'stopped', 'failed', 'interrupted']);

export type RollbackChoice = { readonly ok: true; readonly to: ReleaseRecord; readonly of?: ReleaseRecord } | { readonly ok: false; readonly reason: string };

/**
 * `recent`: the target's releases, newest first. The current image is that of the newest release that
 * put its image on hosts (running, succeeded, stopped, failed or interrupted; a rolled-back, refused
 * or superseded one left the hosts as they were). Without `to`, the choice is the newest succeeded
 * release whose image differs from it; with `to`, that release, which must be of this target and have succeeded.
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
  const previous = recent.find((r) => r.status === 'succeeded' && r.request.image !== current);
  if (!previous) {
    return { ok: false, reason: `no succeeded release of ${target} with an image other than the current one (${current ?? 'none known'}) among its last ${recent.length} release(s); name one with --to RELEASE_ID` };
  }
  return { ok: true, to: previous, ...(of ? { of } : {}) };
}

/** The new release: the request of `to` with a new id and creation time (so newest-wins makes it the newest), marked as a rollback. */
export function rollbackRecord(choice: { to: ReleaseRecord; of?: ReleaseRecord }, by: string, now: Date, reason?: string, releaseId: string = randomUUID()): ReleaseRecord {
  const { to, of } = choice;
  const request = { ...to.request, releaseId, createdAt: now.toISOString() };
  return {
    ...newReleaseRecord({ request, keyId: to.keyId, target: to.target, deployment: to.deployment, now, worker: 'harbormaster rollback' }),
    origin: { kind: 'rollback', to: to.releaseId, ...(of ? { of: of.releaseId } : {}), by, at: now.toISOString(), ...(reason ? { reason } : {}) },
  };
}
