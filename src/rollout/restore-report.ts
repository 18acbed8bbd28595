import * as say from '../chat/release-messages.js';
import type { Chat } from '../chat/chat.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import type { RolloutContext } from './rollout.js';
import { restoreScalingAndAlarms, type RestoreResult, type ScalingEffects } from './scaling-and-alarms.js';
import type { StepLog } from './step-runner.js';

// The restore at the end of every release, told to the log and to chat: loud while it is pending
// (the first attempt, then every tenth), once when it is confirmed after retrying, and once, exactly,
// for what AWS refused for good and a person must put back.

export function restoreAndReport(
  release: RecordedRelease,
  effects: ScalingEffects & { readonly chat: Chat },
  steps: StepLog,
  context: Pick<RolloutContext, 'logger' | 'stopRequested' | 'leaseLost'>,
  backoff?: { readonly minMs: number; readonly maxMs: number },
): Promise<RestoreResult> {
  const log = context.logger;
  const target = release.record.target;
  return restoreScalingAndAlarms(
    release,
    effects,
    steps,
    {
      pending: (left, attempt, retryInMs) => {
        log.error({ pending: left, attempt, retryInMs }, 'restoring Auto Scaling or alarms failed: still pending, trying again');
        if (attempt === 1 || attempt % 10 === 0) effects.chat.post(say.restorePending({ target, left, attempt, retryInMs }));
      },
      restored: (attempts) => {
        log.info({ attempts }, 'Auto Scaling and alarms restored after retrying');
        effects.chat.post(say.restoreConfirmed({ target, attempts }));
      },
      left: (left) => {
        log.error({ left }, 'restoring Auto Scaling or alarms failed for good: left for a person');
        effects.chat.post(say.restoreLeft({ target, left }));
      },
    },
    backoff,
    { stopRequested: context.stopRequested, ...(context.leaseLost ? { leaseLost: context.leaseLost } : {}) },
  );
}
