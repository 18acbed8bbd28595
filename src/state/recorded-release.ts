import type { ReleaseRecord } from './release-record.js';
import { LeaseLostError, type ReleaseStore, type TargetLease } from './release-store.js';

// The running release's handle on its record. Every change goes through `update`, which applies it
// to a copy and resolves only once the store holds it durably: the write-ahead rule ("record the
// intent, then act") is `await release.update(...)` before the effect. Changes from hosts that work
// side by side are applied one after the other, each over the revision the previous one stored.
// Under a target lease every write is fenced by it: a worker that lost its lease cannot write, and
// since it writes before each effect, it takes no new step (an AWS or Docker call under way is
// abandoned by the lease's signal). A lease this worker gave up by its own clock (`leaseLost`) stops writes here too,
// before the store's own fence: the store may still accept one for the last moments of the lease.

export class RecordedRelease {
  private current: ReleaseRecord;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: ReleaseStore,
    record: ReleaseRecord,
    private readonly options: { readonly lease?: TargetLease; readonly leaseLost?: AbortSignal; readonly clock?: () => Date } = {},
  ) {
    this.current = record;
  }

  get record(): Readonly<ReleaseRecord> {
    return this.current;
  }

  get releaseId(): string {
    return this.current.releaseId;
  }

  /** Applies `change` to a copy of the record and stores it; resolves when it is durable. */
  update(change: (draft: ReleaseRecord) => void): Promise<ReleaseRecord> {
    const lost = this.options.leaseLost;
    const stopIfLost = () => {
      if (lost?.aborted) throw lost.reason instanceof LeaseLostError ? lost.reason : new LeaseLostError(this.current.target, 'this worker gave it up');
    };
    const work = async () => {
      stopIfLost();
      const draft = structuredClone(this.current);
      change(draft);
      draft.updatedAt = (this.options.clock?.() ?? new Date()).toISOString();
      this.current = await this.store.save(draft, this.options.lease);
      // Given up while the write was on its way: it landed, but no effect may follow it.
      stopIfLost();
      return this.current;
    };
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
