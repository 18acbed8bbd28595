import { performance } from 'node:perf_hooks';

// Whether another worker's lease may be taken, judged without comparing two clocks. A lease's expiry
// is written by its holder's clock; a taker whose clock runs ahead would read it as expired while it
// is still being renewed. So a taker never reads another owner's expiry: it takes the lease only
// after it has seen the lease item unchanged (same owner, same token, same revision, which every
// renewal bumps) for a full lease period on its own monotonic clock. The holder judges its own lease
// by its own clock from when it sent its last renewal, so by the time a taker has watched the item
// unchanged that long, the holder's lease has run out by the holder's own reckoning too (clocks that
// run at the same rate are assumed; their readings are not).

/** What identifies one state of a lease item: any write by its holder changes it. */
export interface LeaseState {
  readonly owner: string;
  readonly token: number;
  readonly revision: number;
}

export class LeaseWatch {
  /** Per target: the state last seen and when (monotonic ms) it was first seen. */
  private readonly seen = new Map<string, { readonly key: string; readonly since: number }>();

  constructor(private readonly monotonic: () => number = () => performance.now()) {}

  /**
   * Notes this sighting of the target's lease; true once the same state has been seen unchanged for
   * `periodMs` since it was first seen. A changed state starts the watch again.
   */
  unchangedFor(target: string, state: LeaseState, periodMs: number): boolean {
    const key = `${state.owner}\u0000${state.token}\u0000${state.revision}`;
    const now = this.monotonic();
    const prior = this.seen.get(target);
    if (!prior || prior.key !== key) {
      this.seen.set(target, { key, since: now });
      return false;
    }
    return now - prior.since >= periodMs;
  }

  forget(target: string): void {
    this.seen.delete(target);
  }
}
