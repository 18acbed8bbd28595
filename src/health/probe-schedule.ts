// How often a host out of service is looked at while its container comes up. Every millisecond
// between the application's first good answer and the look that sees it is time out of service, so
// the first seconds are polled fast; past them a container that is slow to start is polled less
// often, up to the configured health interval.

/** Polled at this pace at first. */
export const FAST_PROBE_MS = 25;
/** For this long after the wait began. */
export const FAST_PROBE_WINDOW_MS = 2_000;

/** The pause before the next probe, `elapsedMs` into the wait; at most `intervalMs` (health.intervalMs). */
export function probeDelay(elapsedMs: number, intervalMs: number): number {
  if (elapsedMs < FAST_PROBE_WINDOW_MS) return Math.min(FAST_PROBE_MS, intervalMs);
  // Doubling for every further fast window waited, from the fast pace up to the interval.
  const doublings = Math.floor((elapsedMs - FAST_PROBE_WINDOW_MS) / FAST_PROBE_WINDOW_MS) + 1;
  return Math.min(intervalMs, FAST_PROBE_MS * 2 ** Math.min(doublings, 20));
}
