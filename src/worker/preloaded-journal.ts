import type { Logger } from '../log/logger.js';
import type { StepJournal } from '../rollout/step-runner.js';

// A step journal handed to `harbormaster worker` by code that ran in the same process before the CLI:
// a module loaded with `node --import`. Only the test harness does that (test/support/hold-preload.ts,
// which neither the package nor the container image holds: they carry dist/, built from src/ alone).
// No environment variable, option or file of the worker's turns one on.

const SLOT = Symbol.for('harbormaster.preloadedStepJournal');

type JournalFactory = (logger: Logger) => StepJournal | undefined;
type WithSlot = { [SLOT]?: JournalFactory };

/** For a module loaded before the CLI: the worker asks `make` for its step journal at start. */
export function installStepJournal(make: JournalFactory): void {
  (globalThis as WithSlot)[SLOT] = make;
}

/** The journal a preloaded module installed, if any; said in the log at once when there is one. */
export function preloadedStepJournal(logger: Logger): StepJournal | undefined {
  const make = (globalThis as WithSlot)[SLOT];
  if (!make) return undefined;
  const journal = make(logger);
  if (journal) logger.warn('a step journal was installed before start by a module loaded with node --import (the test harness); this worker is not running as installed');
  return journal;
}
