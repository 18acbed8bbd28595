import { UsageError } from '../usage-error.js';

// How often a command waiting for a release to end (`stop`, `rollback`) reads its record:
// HARBORMASTER_OPS_POLL_MS, a whole number of milliseconds, else every 2 s.

export const DEFAULT_OPS_POLL_MS = 2_000;
export const MIN_OPS_POLL_MS = 100;
export const MAX_OPS_POLL_MS = 60_000;

/** The interval; a value that is not a whole number from MIN to MAX is refused (UsageError, exit 2). */
export function opsPollMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.HARBORMASTER_OPS_POLL_MS;
  if (text === undefined || text === '') return DEFAULT_OPS_POLL_MS;
  const ms = /^[0-9]{1,6}$/.test(text) ? Number(text) : Number.NaN;
  if (!(ms >= MIN_OPS_POLL_MS && ms <= MAX_OPS_POLL_MS)) {
    throw new UsageError(
      `HARBORMASTER_OPS_POLL_MS must be a whole number of milliseconds from ${MIN_OPS_POLL_MS} to ${MAX_OPS_POLL_MS} (how often the command reads the release state while it waits), not '${text.slice(0, 20)}': correct it, or unset it for every ${DEFAULT_OPS_POLL_MS} ms`,
    );
  }
  return ms;
}
