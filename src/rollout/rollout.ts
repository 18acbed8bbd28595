import type { CallLimit } from '../aws/transient.js';
import type { ReleaseConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import type { TargetControl } from '../state/control.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import type { ReleaseRecord } from '../state/release-record.js';

// The boundary between the queue worker and the rolling release engine. The worker claims a
// release in its store and hands the recorded release to a Rollout, which carries it to its end
// (or to a safe point, when asked to stop) and records how it ended.

export interface RolloutContext {
  readonly logger: Logger;
  /**
   * Aborted when the worker is asked to stop: the rollout reaches its next safe point (every host
   * whole and in service as before, Auto Scaling and alarms restored) and returns `stopped`.
   */
  readonly stopRequested: AbortSignal;
  /** The release as this worker's configuration serves it now; undefined when it no longer does. */
  /** The configuration of the release's target, as vouching found it: how the container runs comes from here, never from the record. */
  readonly releaseConfig: ReleaseConfig;
  /**
   * new: first acceptance; redelivered: a known release whose request came again; repair: found
   * unfinished when this worker started; takeover: found unfinished by a later sweep of the store (its
   * worker died, or it waited for its target).
   */
  readonly occasion: 'new' | 'redelivered' | 'repair' | 'takeover';
  /** Aborted when this worker lost the target's lease: it must stop acting at once (another worker carries on). */
  readonly leaseLost?: AbortSignal;
  /** Under a lease: taken by every AWS call of the release (aborted with leaseLost; a deadline per attempt). */
  readonly leaseCalls?: CallLimit;
  /** What operators asked of the release's target (stop, promote, lock), read fresh at every release-level decision. */
  readonly readControl?: () => Promise<TargetControl>;
}

export type RolloutOutcome =
  | { status: 'succeeded'; hosts: number }
  /** The release failed; the hosts it touched are back as the policy says; Auto Scaling and alarms restored. */
  | { status: 'rolled-back'; reason: string }
  /** The release failed and something could not be put back: it needs a person. */
  | { status: 'failed'; reason: string }
  /** Nothing was changed (no instance, preflight failed). */
  | { status: 'refused'; reason: string }
  /** A newer release of the same target came first; nothing was changed. */
  | { status: 'superseded'; reason: string }
  /** Stopped at a safe point on request; the release is resumed by the next start. */
  | { status: 'interrupted'; reason: string }
  /** Stopped by an operator at a safe point and ended there (not resumed); every host whole, Auto Scaling and alarms restored. */
  | { status: 'stopped'; reason: string };

export interface Rollout {
  run(release: RecordedRelease, context: RolloutContext): Promise<RolloutOutcome>;
}

/** How a release ended (or stands), from its record. */
export function outcomeOf(record: ReleaseRecord): RolloutOutcome {
  const reason = record.reason ?? record.status;
  switch (record.status) {
    case 'succeeded':
      return { status: 'succeeded', hosts: Object.keys(record.hosts).length };
    case 'rolled-back':
      return { status: 'rolled-back', reason };
    case 'failed':
      return { status: 'failed', reason };
    case 'refused':
      return { status: 'refused', reason };
    case 'superseded':
      return { status: 'superseded', reason };
    case 'stopped':
      return { status: 'stopped', reason };
    default:
      return { status: 'interrupted', reason };
  }
}
