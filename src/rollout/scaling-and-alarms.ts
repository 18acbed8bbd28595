import { setTimeout as sleep } from 'node:timers/promises';
import type { AlarmActions } from '../alarms/alarm-actions.js';
import { muteRuleName, type AlarmMuteRules } from '../alarms/alarm-mute-rules.js';
import { AutoScalingGroupNotFoundError, type AutoScaling } from '../autoscaling/process-suspension.js';
import { isTransient } from '../aws/transient.js';
import type { Logger } from '../log/logger.js';
import type { AlarmRecord, GroupRecord, ReleaseRecord } from '../state/release-record.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import { LeaseLostError } from '../state/release-store.js';
import { StepFailure, type StepLog } from './step-runner.js';

// Auto Scaling and alerting around a release. What was suspended or muted *before* is recorded
// before anything is touched (afterwards the live state no longer says), each suspension or mute is
// recorded before its call, and the restore is exactly the difference: the processes this release
// suspended, the alarms it muted. A restore is confirmed by reading AWS back; until then it stays
// pending and is tried again, loudly, with backoff, until the worker is asked to stop. One that AWS
// refuses for good (the group deleted, access denied) is left for a person, said, and not tried again.

export interface ScalingEffects {
  readonly autoScaling: AutoScaling;
  readonly alarms: AlarmActions;
  readonly muteRules: AlarmMuteRules;
}

/** What is left to put back, from the record alone: pure. */
export interface RestoreNeeds {
  readonly resume: ReadonlyArray<{ readonly group: string; readonly processes: readonly string[] }>;
  readonly alarms?: { readonly mode: 'mute-rule'; readonly rule: string } | { readonly mode: 'disable-actions'; readonly names: readonly string[] };
}

const touched = (phase: GroupRecord['phase'] | AlarmRecord['phase']) => phase === 'suspending' || phase === 'suspended' || phase === 'resuming' || phase === 'muting' || phase === 'muted' || phase === 'unmuting';

export function restoreNeeds(record: Pick<ReleaseRecord, 'scaling' | 'alarms'>): RestoreNeeds {
  // A call recorded as under way may have been applied: undoing it is always right, because only
  // what was not suspended or muted before is ever in these lists.
  const resume = Object.entries(record.scaling)
    .filter(([, group]) => touched(group.phase) && group.suspend.length > 0)
    .map(([group, { suspend }]) => ({ group, processes: suspend }));
  const alarms = record.alarms;
  if (!alarms || !touched(alarms.phase)) return { resume };
  if (alarms.mode === 'mute-rule') return alarms.rule ? { resume, alarms: { mode: 'mute-rule', rule: alarms.rule.name } } : { resume };
  return alarms.disable.length > 0 ? { resume, alarms: { mode: 'disable-actions', names: alarms.disable } } : { resume };
}

/** Suspends the recorded processes and mutes the recorded alarms; each call is recorded before it is made. */
export async function suspendAndMute(release: RecordedRelease, effects: ScalingEffects, steps: StepLog, muteWindowMs: number): Promise<void> {
  const groups = Object.entries(release.record.scaling).filter(([, g]) => g.phase !== 'suspended' && g.phase !== 'left' && g.suspend.length > 0);
  if (groups.length > 0) {
    await steps.run('suspend-auto-scaling', undefined, async () => {
      for (const [name, group] of groups) {
        // Suspending again after this release put the group back (it was stopped at a safe point, or
        // killed before its end was written): a process someone suspended since is theirs, not this
        // release's, so it is neither suspended nor, later, resumed by it.
        const theirs = group.phase === 'resumed' ? (await effects.autoScaling.describe(name)).suspended : [];
        await release.update((draft) => void (draft.scaling[name] = { ...draft.scaling[name]!, suspend: group.suspend.filter((p) => !theirs.includes(p)), phase: 'suspending' }));
        const suspend = release.record.scaling[name]!.suspend;
        if (suspend.length > 0) await effects.autoScaling.suspend(name, suspend);
        await release.update((draft) => void (draft.scaling[name]!.phase = 'suspended'));
      }
    });
  }
  let alarms = release.record.alarms;
  if (!alarms || alarms.phase === 'muted' || alarms.phase === 'left') return;
  if (alarms.mode === 'disable-actions' && alarms.phase === 'unmuted') {
    // Likewise, an alarm whose actions someone disabled since is left to them.
    const enabled = await effects.alarms.actionsEnabled(alarms.disable);
    const disable = alarms.disable.filter((name) => enabled.get(name) === true);
    await release.update((draft) => void (draft.alarms = { ...draft.alarms!, disable }));
    alarms = release.record.alarms!;
  }
  if (alarms.mode === 'disable-actions' && alarms.disable.length === 0) return;
  await steps.run('mute-alarms', undefined, async () => {
    const now = new Date();
    const until = new Date(now.getTime() + muteWindowMs).toISOString();
    await release.update((draft) => {
      const a = draft.alarms!;
      // A rule already reaching to now (a resumed muting) keeps its start; one that ended starts again now.
      const ongoing = a.rule !== undefined && a.phase !== 'unmuted' && a.phase !== 'planned';
      a.phase = 'muting';
      if (a.mode === 'mute-rule') a.rule = { name: muteRuleName(draft.releaseId), start: ongoing ? a.rule!.start : now.toISOString(), until };
    });
    const recorded = release.record.alarms!;
    if (recorded.mode === 'mute-rule') {
      await effects.muteRules.mute({ name: recorded.rule!.name, alarms: recorded.names, start: new Date(recorded.rule!.start), until: new Date(recorded.rule!.until), description: `Harbormaster release ${release.releaseId} to ${release.record.target}` });
    } else {
      await effects.alarms.disable(recorded.disable);
    }
    await release.update((draft) => void (draft.alarms!.phase = 'muted'));
  });
}


/**
 * Keeps a mute rule's expiry ahead of now while the release runs: a worker that dies stops renewing,
 * and the alarms unmute themselves at most one window later. Returns the function that stops it.
 */
export function keepMuted(release: RecordedRelease, effects: ScalingEffects, muteWindowMs: number, log: Logger): () => Promise<void> {
  const alarms = release.record.alarms;
  if (!alarms || alarms.mode !== 'mute-rule') return async () => undefined;
  let renewing: Promise<void> | undefined;
  let stopped = false;
  const renew = async () => {
    const until = new Date(Date.now() + muteWindowMs).toISOString();
    let rule: { name: string; start: string } | undefined;
    // Recorded first (a crash after the call leaves a record that reaches at least as far as AWS), and
    // only while the alarms are still meant to be muted: never a renewal after the rule was deleted.
    await release.update((draft) => {
      const a = draft.alarms!;
      if (stopped || a.phase !== 'muted' || !a.rule) return;
      a.rule.until = until;
      rule = { name: a.rule.name, start: a.rule.start };
    });
    if (!rule || stopped) return;
    await effects.muteRules.mute({ name: rule.name, alarms: alarms.names, start: new Date(rule.start), until: new Date(until) });
    log.debug({ rule: rule.name, until }, 'alarm mute rule renewed');
  };
  const timer = setInterval(() => {
    if (renewing || stopped) return;
    renewing = renew()
      .catch((error: unknown) => log.warn({ err: error }, 'renewing the alarm mute rule failed; it will be tried again'))
      .finally(() => (renewing = undefined));
  }, Math.max(1_000, Math.floor(muteWindowMs / 3)));
  timer.unref();
  // Stops renewing and waits for a renewal under way, so that none lands after the unmuting.
  return async () => {
    stopped = true;
    clearInterval(timer);
    await renewing;
  };
}

/** A failure that retrying will not clear: AWS refused the call itself (the group or alarm gone, access denied, a validation error). */
export function isPermanent(error: unknown): boolean {
  const cause = error instanceof StepFailure ? error.cause : error;
  if (cause instanceof AutoScalingGroupNotFoundError) return true;
  return cause instanceof Error && (cause as { $fault?: string }).$fault === 'client' && !isTransient(cause);
}

const lost = (error: unknown) => error instanceof LeaseLostError || (error instanceof StepFailure && error.cause instanceof LeaseLostError);

/**
 * Tries every pending restore once and reads AWS back. What still differs is `pending` (tried again);
 * what failed for good is recorded `left`, with what a person must put back in `attention`, and never tried again.
 */
async function restoreOnce(release: RecordedRelease, effects: ScalingEffects, steps: StepLog): Promise<{ pending: string[]; left: string[] }> {
  const needs = restoreNeeds(release.record);
  const pending: string[] = [];
  const left: string[] = [];
  const failed = async (error: unknown, what: string, leave: (draft: ReleaseRecord) => void) => {
    if (lost(error)) throw error;
    const message = (error as Error).message;
    if (!isPermanent(error)) return void pending.push(`${what}: ${message}`);
    const reason = `${what} failed for good, left as it is for a person: ${message}`;
    left.push(reason);
    await release.update((draft) => {
      leave(draft);
      draft.attention = [...(draft.attention ?? []), reason];
    });
  };
  for (const { group, processes } of needs.resume) {
    try {
      await release.update((draft) => void (draft.scaling[group]!.phase = 'resuming'));
      await steps.run('resume-auto-scaling', undefined, () => effects.autoScaling.resume(group, processes));
      const still = (await effects.autoScaling.describe(group)).suspended.filter((p) => processes.includes(p));
      if (still.length > 0) throw new Error(`${still.join(', ')} still suspended after resuming`);
      await release.update((draft) => void (draft.scaling[group]!.phase = 'resumed'));
    } catch (error) {
      await failed(error, `resuming ${processes.join(', ')} on Auto Scaling group ${group}`, (draft) => void (draft.scaling[group]!.phase = 'left'));
    }
  }
  if (needs.alarms) {
    const what = needs.alarms.mode === 'mute-rule' ? `deleting alarm mute rule ${needs.alarms.rule} (alarms ${release.record.alarms!.names.join(', ')})` : `enabling the actions of alarms ${needs.alarms.names.join(', ')}`;
    try {
      await release.update((draft) => void (draft.alarms!.phase = 'unmuting'));
      if (needs.alarms.mode === 'mute-rule') {
        const { rule } = needs.alarms;
        await steps.run('unmute-alarms', undefined, () => effects.muteRules.unmute(rule));
        if (await effects.muteRules.read(rule)) throw new Error(`mute rule ${rule} still exists after deleting it`);
      } else {
        const { names } = needs.alarms;
        await steps.run('unmute-alarms', undefined, () => effects.alarms.enable(names));
        const off = [...(await effects.alarms.actionsEnabled(names))].filter(([, enabled]) => !enabled).map(([name]) => name);
        if (off.length > 0) throw new Error(`actions of ${off.join(', ')} still disabled after enabling them`);
      }
      await release.update((draft) => void (draft.alarms!.phase = 'unmuted'));
    } catch (error) {
      await failed(error, what, (draft) => void (draft.alarms!.phase = 'left'));
    }
  }
  return { pending, left };
}

export interface RestoreReporter {
  /** Told every time a restore is still pending after an attempt (the first time, then now and then). */
  pending(left: string[], attempt: number, retryInMs: number): void;
  restored(afterAttempts: number): void;
  /** Told once of the restores that failed for good: what a person must put back. */
  left(left: string[]): void;
}

/**
 * restored: AWS confirms every restore. left: the others are confirmed, these failed for good (also in
 * the record's `attention`). stopped: asked to stop while some were still pending (the record keeps them).
 */
export type RestoreResult = { readonly status: 'restored' | 'left' | 'stopped'; readonly left: string[]; readonly pending: string[] };

/**
 * Restores until AWS confirms it or refuses it for good: never reported done while it is not. Transient
 * failures are tried again with backoff until the worker is asked to stop; a lost lease ends it at once.
 */
export async function restoreScalingAndAlarms(
  release: RecordedRelease,
  effects: ScalingEffects,
  steps: StepLog,
  reporter: RestoreReporter,
  backoff = { minMs: 1_000, maxMs: 60_000 },
  signals: { readonly stopRequested?: AbortSignal; readonly leaseLost?: AbortSignal } = {},
): Promise<RestoreResult> {
  const left: string[] = [];
  for (let attempt = 1; ; attempt += 1) {
    signals.leaseLost?.throwIfAborted();
    const once = await restoreOnce(release, effects, steps);
    left.push(...once.left);
    if (once.left.length > 0) reporter.left(once.left);
    await release.update((draft) => {
      if (once.pending.length > 0) draft.pending = once.pending;
      else delete draft.pending;
    });
    if (once.pending.length === 0) {
      if (attempt > 1) reporter.restored(attempt);
      return { status: left.length > 0 ? 'left' : 'restored', left, pending: [] };
    }
    if (signals.stopRequested?.aborted) return { status: 'stopped', left, pending: once.pending };
    const retryInMs = Math.min(backoff.maxMs, backoff.minMs * 2 ** Math.min(attempt - 1, 16));
    reporter.pending(once.pending, attempt, retryInMs);
    await sleep(retryInMs, undefined, signals.stopRequested ? { signal: signals.stopRequested } : {}).catch(() => undefined);
    if (signals.stopRequested?.aborted) return { status: 'stopped', left, pending: once.pending };
  }
}
