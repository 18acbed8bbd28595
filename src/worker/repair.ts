import type { Logger } from '../log/logger.js';
import { describeTarget } from '../request/release-request.js';
import { whereItStands } from '../state/release-record.js';
import type { ReleaseStore } from '../state/release-store.js';
import type { ReleaseScheduler } from './release-scheduler.js';

// Repair: every release the store holds unfinished (a worker was killed, or stopped at a safe point,
// or a request waits for its target) is handed to the scheduler, which carries each to its end when
// its target's lease is free: each host made whole, exactly what the release suspended and muted put
// back, the release continued if it can and rolled back if not. Both at start and on a sweep (every
// lease period, and when a target frees up here) this only starts them and returns: the queue is read
// alongside, so a long or stuck release never holds back the requests of other targets, and a long
// release taken up by a sweep never holds back the next sweep (which is how a waiting release of
// another target, or a dead worker's release, is taken up). A request for a target whose release is
// still half-way waits for it (the scheduler's check).

export interface RepairDeps {
  readonly store: ReleaseStore;
  readonly scheduler: ReleaseScheduler;
  readonly logger: Logger;
  /** Releases a sweep started and did not wait for: the worker waits for them before it exits. */
  readonly started: Set<Promise<void>>;
}

export async function repairUnfinished(deps: RepairDeps, when: 'start' | 'sweep'): Promise<void> {
  // Releases that changed something are handed over first. They all start at once, so this is no
  // guarantee: what keeps a waiting release from starting before them is the scheduler's check for
  // a release of its target still half-way.
  const unfinished = (await deps.store.unfinished()).sort((a, b) => Number(a.status === 'accepted') - Number(b.status === 'accepted'));
  if (when === 'start') {
    if (unfinished.length === 0) deps.logger.info('no unfinished release found at start');
    else {
      deps.logger.warn(
        { count: unfinished.length, releases: unfinished.map((r) => ({ releaseId: r.releaseId, target: r.target, image: r.request?.image, found: r.request ? whereItStands(r) : 'no request in the record' })) },
        'unfinished releases found at start: carrying each to its end, alongside new requests',
      );
    }
  }
  const runs = unfinished.map(async (record) => {
    // A record is data: one without a request is still handed over, for vouching to refuse.
    const logger = deps.logger.child({ releaseId: record.releaseId, target: record.request ? describeTarget(record.request.target) : record.target, image: record.request?.image });
    const taken = await deps.scheduler.take(record.releaseId, logger, when === 'start' ? 'repair' : 'takeover').catch((error: unknown) => {
      logger.error({ err: error }, 'taking up an unfinished release failed; the next sweep tries again');
      return undefined;
    });
    if (taken?.status === 'busy') logger.debug({ reason: taken.reason }, 'unfinished release not taken up now');
  });
  for (const run of runs) {
    deps.started.add(run);
    void run.finally(() => deps.started.delete(run));
  }
}
