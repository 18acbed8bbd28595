import type { ReleaseConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import { describeTarget } from '../request/release-request.js';
import type { Rollout } from '../rollout/rollout.js';
import { whereItStands } from '../state/release-record.js';
import { RecordedRelease } from '../state/recorded-release.js';
import type { ReleaseStore } from '../state/release-store.js';
import { carryRelease } from './carry-release.js';

// Repair at start: before taking a new request, every release the store holds unfinished (the worker
// was killed, or stopped at a safe point) is carried to its end by the same rollout as any other:
// each host made whole, exactly what the release suspended and muted put back, and the release
// continued if it can and rolled back if not.

export interface RepairDeps {
  readonly store: ReleaseStore;
  readonly rollout: Rollout;
  readonly releases: readonly ReleaseConfig[];
  readonly logger: Logger;
  readonly stopRequested: AbortSignal;
}

export async function repairUnfinished(deps: RepairDeps): Promise<void> {
  const unfinished = await deps.store.unfinished();
  if (unfinished.length === 0) {
    deps.logger.info('no unfinished release found at start');
    return;
  }
  deps.logger.warn(
    { count: unfinished.length, releases: unfinished.map((r) => ({ releaseId: r.releaseId, target: r.target, image: r.request.image, found: whereItStands(r) })) },
    'unfinished releases found at start: carrying each to its end before taking new requests',
  );
  for (const record of unfinished) {
    if (deps.stopRequested.aborted) break;
    const logger = deps.logger.child({ releaseId: record.releaseId, target: describeTarget(record.request.target), image: record.request.image });
    await carryRelease(new RecordedRelease(deps.store, record), { rollout: deps.rollout, releases: deps.releases, logger, stopRequested: deps.stopRequested, occasion: 'repair' });
  }
}
