import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadBalancerRef, LoadBalancers, Membership } from '../loadbalancer/load-balancers.js';

// Load balancer readings lag: right after a register or deregister call, DescribeTargetHealth and
// DescribeInstanceHealth may still report the previous state for a moment (eventual consistency).
// After such a call the reconciler waits here, polling with backoff, until every load balancer it
// called reports the change, or a bound passes; then it decides again from what it reads. Polling
// with backoff (not at a fixed short interval) keeps a release of many hosts under the API's rate limits.

const REGISTERED: ReadonlySet<Membership> = new Set(['in-service', 'pending', 'unhealthy']);

/** Whether a reading shows the call took: registered after a registration, no longer registered after a deregistration. */
export function showsCall(call: 'register' | 'deregister', reading: Membership): boolean {
  return call === 'register' ? REGISTERED.has(reading) : !REGISTERED.has(reading);
}

/** The pause before poll `attempt` (1-based): `firstMs`, doubling, at most `maxMs`, spread by up to a fifth either way. */
export function pollDelay(attempt: number, firstMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, firstMs * 2 ** Math.min(attempt - 1, 20));
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random())));
}

export interface SettleOptions {
  readonly firstMs: number;
  readonly maxMs: number;
  /** How long to wait at most for the readings to change. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/**
 * Waits until every one of `refs` reports that `call` took for the instance, or `timeoutMs` passed.
 * Resolves with the readings that showed it (one per ref, in order), or undefined when they did not
 * all show it in time; a failed reading counts as not yet.
 */
export async function awaitCallTaken(loadBalancers: LoadBalancers, refs: readonly LoadBalancerRef[], instanceId: string, call: 'register' | 'deregister', options: SettleOptions): Promise<Membership[] | undefined> {
  const deadline = Date.now() + options.timeoutMs;
  for (let attempt = 1; ; attempt += 1) {
    options.signal?.throwIfAborted();
    const readings = await Promise.all(refs.map((lb) => loadBalancers.membership(lb, instanceId).catch(() => undefined)));
    if (readings.every((reading) => reading !== undefined && showsCall(call, reading))) return readings as Membership[];
    const pause = pollDelay(attempt, options.firstMs, options.maxMs);
    if (Date.now() + pause > deadline) return undefined;
    await sleep(pause, undefined, options.signal ? { signal: options.signal } : {});
  }
}
