import { setTimeout as sleep } from 'node:timers/promises';
import { isTransient } from '../aws/transient.js';
import { EngineTimeoutError, EngineUnavailableError, HostUnreachableError, PullError } from '../host/host-errors.js';
import { StepFailure } from './step-runner.js';

// Which failures of a host may pass by themselves, and waiting them out within a window. A host that
// is slow or briefly absent (its connection refused or timed out, its engine stopped or restarting,
// a forward that cannot open, the registry out of reach for a moment, AWS throttling) is waited for;
// what waiting cannot mend (credentials or a host key refused, an image that does not exist, an
// engine that answered with an error) fails at once.

/** A failure that may pass by itself: the host or its engine out of reach for a moment, AWS throttling. */
export function isPassing(error: unknown): boolean {
  const cause = error instanceof StepFailure ? error.cause : error;
  return cause instanceof HostUnreachableError || cause instanceof EngineTimeoutError || cause instanceof EngineUnavailableError || isTransient(cause);
}

/** At preflight also a pull that the registry did not answer, or whose stream broke off. */
export function isPassingAtPreflight(error: unknown): boolean {
  const cause = error instanceof StepFailure ? error.cause : error;
  return isPassing(cause) || (cause instanceof PullError && (cause.reason === 'unreachable' || cause.reason === 'interrupted'));
}

export interface WaitOutOptions {
  /** How long a passing failure is tried again, from the first one. */
  readonly windowMs: number;
  readonly passing: (error: unknown) => boolean;
  /** Pause before the second try; doubled after each, at most 5 s. */
  readonly backoffMs: number;
  /** Waiting ends at once: the last failure is thrown. */
  readonly stop?: AbortSignal;
  /** Told once, at the first passing failure, with how long it is tried again. */
  readonly onWaiting?: (error: unknown, windowMs: number) => void;
}

/** Runs `work` until it succeeds, fails for a reason that does not pass, or `windowMs` is spent. */
export async function waitOutPassing<T>(work: () => Promise<T>, options: WaitOutOptions): Promise<T> {
  let since: number | undefined;
  let pause = options.backoffMs;
  for (;;) {
    try {
      return await work();
    } catch (error) {
      if (!options.passing(error) || options.stop?.aborted) throw error;
      if (since === undefined) {
        since = Date.now();
        if (options.windowMs > 0) options.onWaiting?.(error, options.windowMs);
      }
      const left = since + options.windowMs - Date.now();
      if (left <= 0) throw error;
      await sleep(Math.min(pause, left), undefined, options.stop ? { signal: options.stop } : undefined).catch(() => undefined);
      if (options.stop?.aborted) throw error;
      pause = Math.min(5_000, pause * 2);
    }
  }
}
