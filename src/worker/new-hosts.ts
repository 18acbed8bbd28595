import { randomUUID } from 'node:crypto';
import type { ReleaseConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import { voucherOf } from '../request/vouching.js';
import { repeatImage } from './rollback-choice.js';
import { isFinal, newReleaseRecord, type ReleaseRecord } from '../state/release-record.js';
import type { ReleaseStore } from '../state/release-store.js';
import type { ReleaseHistory } from '../state/target-summary.js';
import type { InstanceFinder, TargetInstance } from '../target/target-instances.js';

// Hosts that join a target between releases get its current release (rollout.newHosts): an instance
// Auto Scaling launched runs whatever its image or user data starts, so the worker looks at each
// target it serves every period and, for running instances that no release of the current image
// covered, claims a release of the current image to those instances alone. It is recorded like any
// release (its own id, newest-wins, history) and carried by the same engine; the hosts already on the
// current image are never touched. An instance gets one such release per image: one that could not
// be released is said in that release's outcome and left to the next release.

/** How many of a target's newest records are read to know what covers its hosts. */
const RECORDS_READ = 50;

/** Pure: the current release (the newest that succeeded and was not itself for new hosts) and the instances no release of its image covered since. */
export function uncovered(instances: readonly TargetInstance[], newestFirst: readonly ReleaseRecord[]): { current: ReleaseRecord; instances: string[] } | undefined {
  // A release in progress (or waiting) carries the target on: it looks at the target again itself.
  if (newestFirst.some((r) => !isFinal(r.status))) return undefined;
  const current = newestFirst.find((r) => r.status === 'succeeded' && !r.newHosts);
  if (!current) return undefined;
  const since = newestFirst.slice(0, newestFirst.indexOf(current) + 1).filter((r) => r.request.image === current.request.image || r.request.image === repeatImage(current));
  // A release for new hosts that gave way to a newer one (superseded) covered nothing; one that could
  // not start (refused) is said in its outcome and left to the next release, as one that failed.
  const covered = new Set(since.filter((r) => r.status !== 'superseded').flatMap((r) => [...Object.keys(r.hosts), ...(r.newHosts?.instances ?? [])]));
  const missing = instances.map((i) => i.instanceId).filter((id) => !covered.has(id));
  return missing.length > 0 ? { current, instances: missing } : undefined;
}

/** The release of the current image to `instances` alone. */
export function newHostsRecord(current: ReleaseRecord, instances: readonly string[], now: Date, worker: string): ReleaseRecord {
  const request = { ...current.request, releaseId: randomUUID(), image: repeatImage(current), createdAt: now.toISOString() };
  return { ...newReleaseRecord({ request, keyId: current.keyId, vouchedBy: voucherOf(current), target: current.target, deployment: current.deployment, now, worker }), newHosts: { of: current.releaseId, instances: [...instances] } };
}

export interface NewHostsDeps {
  readonly store: ReleaseStore & Pick<ReleaseHistory, 'recent'>;
  readonly finder: InstanceFinder;
  readonly releases: readonly ReleaseConfig[];
  readonly logger: Logger;
  readonly workerId: string;
  /** Told when a release for new hosts was claimed: the worker's sweep takes it up. */
  readonly onClaimed: () => void;
}

/** One look at every fixed deployment served with rollout.newHosts; returns the releases claimed. */
export async function releaseNewHosts(deps: NewHostsDeps, now = new Date()): Promise<ReleaseRecord[]> {
  const claimed: ReleaseRecord[] = [];
  for (const release of deps.releases.filter((r) => r.rollout?.newHosts)) {
    for (const deployment of release.deployments) {
      const target = `${release.stack}/${release.release}/${deployment}`;
      try {
        const records = await deps.store.recent(target, RECORDS_READ);
        if (records.length === 0) continue;
        const instances = await deps.finder.find({ stack: release.stack, release: release.release, deployment });
        const found = uncovered(instances, records);
        if (!found) continue;
        const record = newHostsRecord(found.current, found.instances, now, deps.workerId);
        const result = await deps.store.claim(record);
        if (!result.claimed) continue;
        deps.logger.info({ target, releaseId: record.releaseId, instances: found.instances, image: record.request.image, of: found.current.releaseId }, 'hosts joined the target since its release: releasing its current image to them');
        claimed.push(result.record);
      } catch (error) {
        deps.logger.warn({ err: error, target }, 'looking for hosts that joined the target failed; looking again at the next period');
      }
    }
  }
  if (claimed.length > 0) deps.onClaimed();
  return claimed;
}
