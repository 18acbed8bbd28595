import type { CallLimit } from '../aws/transient.js';
import type { ReleaseConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import type { Rollout, RolloutOutcome } from '../rollout/rollout.js';
import { isFinal, type ReleaseStatus } from '../state/release-record.js';
import type { TargetControl } from '../state/control.js';
import type { RecordedRelease } from '../state/recorded-release.js';

// Hands one recorded release to the rollout, whatever brought it (a new request, a redelivery, the
// repair at start), and writes the outcome line of the log: `release succeeded`, `release
// rolled-back`, `release failed`, `release refused`, `release superseded`, `release stopped` or `release interrupted`.

const FINAL_STATUS: Record<Exclude<RolloutOutcome['status'], 'interrupted'>, ReleaseStatus> = {
  succeeded: 'succeeded',
  'rolled-back': 'rolled-back',
  failed: 'failed',
  refused: 'refused',
  superseded: 'superseded',
  stopped: 'stopped',
};

export interface CarryDeps {
  readonly rollout: Rollout;
  /** The configuration of the release's target, as vouching found it (vouching.ts). */
  readonly releaseConfig: ReleaseConfig;
  readonly logger: Logger;
  readonly stopRequested: AbortSignal;
  readonly occasion: 'new' | 'redelivered' | 'repair' | 'takeover';
  readonly leaseLost?: AbortSignal;
  readonly leaseCalls?: CallLimit;
  /** What operators asked of the target, read fresh by the rollout at each release-level decision. */
  readonly readControl?: () => Promise<TargetControl>;
}

/** Resolves with the outcome, or undefined when the rollout broke off without one (the record says where it stands). */
export async function carryRelease(release: RecordedRelease, deps: CarryDeps): Promise<RolloutOutcome | undefined> {
  const started = Date.now();
  let outcome: RolloutOutcome;
  try {
    outcome = await deps.rollout.run(release, { logger: deps.logger, stopRequested: deps.stopRequested, releaseConfig: deps.releaseConfig, occasion: deps.occasion, ...(deps.leaseLost ? { leaseLost: deps.leaseLost } : {}), ...(deps.leaseCalls ? { leaseCalls: deps.leaseCalls } : {}), ...(deps.readControl ? { readControl: deps.readControl } : {}) });
  } catch (error) {
    // Not an outcome: the record holds how far it got, and the next start or delivery carries it on.
    deps.logger.error({ err: error, durationMs: Date.now() - started }, 'the release broke off before its end; its record is kept and it will be carried on');
    return undefined;
  }
  const durationMs = Date.now() - started;
  if (outcome.status !== 'interrupted' && !isFinal(release.record.status)) {
    // A rollout that does not record its own end (a test double) has it recorded here.
    await release.update((draft) => {
      draft.status = FINAL_STATUS[outcome.status as Exclude<RolloutOutcome['status'], 'interrupted'>];
      draft.finishedAt = new Date().toISOString();
      if ('reason' in outcome) draft.reason = outcome.reason;
    });
  }
  const level = outcome.status === 'succeeded' ? 'info' : outcome.status === 'failed' ? 'error' : 'warn';
  deps.logger[level]({ outcome, durationMs }, `release ${outcome.status}`);
  return outcome;
}
