import type { CallLimit } from '../aws/transient.js';

// How a worker keeps a target's lease, all on its own monotonic clock. It renews it every sixth of
// the lease period. Each attempt of an AWS call under the lease gets at most a third of the period
// (CallLimit.attemptMs). The worker gives the lease up, aborting every AWS call of its releases on
// that target, once two thirds of the period have passed since it sent the last renewal (or the
// taking) that succeeded: a call sent just before that ends, or is abandoned, by the end of the
// period, before another worker may take the lease (it waits a full period without a renewal; see
// src/state/lease-watch.ts).

export interface LeaseTiming {
  readonly renewEveryMs: number;
  /** The deadline of each AWS call attempt made under the lease. */
  readonly callMs: number;
  /** How long after the last successful renewal was sent the lease is given up. */
  readonly holdMs: number;
}

export function leaseTiming(leaseMs: number): LeaseTiming {
  const callMs = Math.floor(leaseMs / 3);
  return { renewEveryMs: Math.max(500, Math.floor(leaseMs / 6)), callMs, holdMs: leaseMs - callMs };
}

/** The limit every AWS call under the lease takes. */
export const leaseCallLimit = (lost: AbortSignal, timing: LeaseTiming): CallLimit => ({ signal: lost, attemptMs: timing.callMs });
