import type { StopRequest } from '../state/control.js';
import type { HostRecord, ReleaseRecord } from '../state/release-record.js';
import { minHealthyFor } from './plan.js';

// The release-level decision: from the record, what this take-up has observed and done so far, and
// what operators asked, the one next thing to do. Pure: no I/O and no clock but `observed.at`; the
// engine (release-runner.ts) observes, asks, records the intent and acts, then asks again.
//
// Precedence, first match wins:
//  1. Stopped by an operator, going forward (recorded in the release): restore, then end `stopped`.
//  2. Forward, a watched alarm entered ALARM and policy.onAlarm is rollback: `turn-back` at once
//     (hosts half-way go back; so do the released ones).
//  3. Forward, at a safe point (no host half-way):
//     a. an operator's stop for this release not yet taken: take it (`stop`; with rollback: back);
//     b. a watched alarm entered ALARM (policy.onAlarm stop), or the alarms could not be read for
//        longer than policy.alarmUnreadableSeconds: `stop`, as an operator's stop without rollback;
//     c. the worker asked to stop: `interrupt` (restore, then resume at the next start).
//  4. Forward, a release task (rollout.releaseTask) not yet succeeded: `release-task`; found
//     `started` (the worker died while it ran) and not idempotent: `turn-back` for a person.
//  4b. Forward, Auto Scaling and alarms not confirmed suspended and muted by this take-up: `suspend`.
//  5. Forward, a gate of the plan (policy.steps) before the next batch, not passed yet: `reach-gate`
//     (recorded, so a restart resumes it with the time left), then a bake waits out its time and a pause
//     waits for an operator's promotion that the worker first saw after the gate was reached (by the
//     worker's clock: the record's `promotion.seenAt`, promotion-seen.ts) (`wait-gate`), then `pass-gate`.
//  6. Forward, the batch caught half-way, else the first batch with hosts left: those hosts, cut down so that policy.minHealthy still
//     serve; none may leave: `wait`, and once that has lasted the in-service timeout, `turn-back`.
//  7. Forward, every batch done: `look-again` at the target (hosts that joined or left), a bounded
//     number of rounds; then `restore`.
//  8. Back: hosts caught half-way, side by side (`back-hosts`); then the released hosts, last first,
//     one at a time (to the old image with policy.onFailure `all` or an operator's rollback, else
//     checked whole on the new one); a host that would go below policy.minHealthy is waited for, then
//     left on the new image (`leave-host`).
//  9. Otherwise: `restore`, after which the engine ends the release (see finalOutcome).

export interface ReleaseObservation {
  /** Epoch ms. */
  readonly at: number;
  /** Hosts in service now in every load balancer they were in before the release. */
  readonly serving: ReadonlySet<string>;
  /** The operator's stop of this release, from the target's control document. */
  readonly stop?: StopRequest | undefined;
  /** A watched alarm that entered ALARM during the release. */
  readonly alarm?: { readonly alarm: string; readonly reason: string } | undefined;
  /** Since when (epoch ms) the watched alarms could not be read. */
  readonly alarmsUnreadableSince?: number | undefined;
  /** The worker is asked to stop (SIGTERM): go to a safe point and leave the release to be resumed. */
  readonly interrupt: boolean;
  /** This take-up has confirmed Auto Scaling suspended and alarms muted. */
  readonly suspended: boolean;
  /** Since when (epoch ms) no host could leave service without going below policy.minHealthy. */
  readonly noRoomSince?: number | undefined;
  /** How many times this take-up looked at the target again once every batch was done, and whether the last look found nothing more to do. */
  readonly looks: number;
  readonly lookedEnough: boolean;
  /** Hosts this take-up already carried back (or found it could not). */
  readonly settledBack: ReadonlySet<string>;
}

export type ReleaseAction =
  | { readonly kind: 'stop'; readonly request: StopRequest }
  | { readonly kind: 'interrupt' }
  | { readonly kind: 'suspend' }
  | { readonly kind: 'release-task' }
  | { readonly kind: 'release-hosts'; readonly hosts: string[]; readonly cut: boolean }
  | { readonly kind: 'wait'; readonly why: string }
  | { readonly kind: 'reach-gate'; readonly gate: number }
  | { readonly kind: 'wait-gate'; readonly gate: number; readonly until?: number }
  | { readonly kind: 'pass-gate'; readonly gate: number; readonly by?: string }
  | { readonly kind: 'turn-back'; readonly failure: { readonly step: string; readonly reason: string } }
  | { readonly kind: 'look-again'; readonly mayTakeIn: boolean }
  | { readonly kind: 'back-hosts'; readonly hosts: string[]; readonly goal: 'new' | 'old' }
  | { readonly kind: 'leave-host'; readonly host: string; readonly reason: string }
  | { readonly kind: 'restore' };

/** Rounds of looking at the target again: a fleet still growing after these is left to the next release. */
export const LOOK_ROUNDS = 3;

const present = (record: ReleaseRecord): HostRecord[] => Object.values(record.hosts).filter((h) => h.progress !== 'gone');
const isDone = (h: HostRecord | undefined) => h === undefined || h.progress === 'released' || h.progress === 'gone';

export function decideRelease(record: ReleaseRecord, observed: ReleaseObservation): ReleaseAction {
  const plan = record.plan!;
  if (record.direction === 'forward') {
    if (record.stop && !record.stop.rollback) return { kind: 'restore' };
    const policy = plan.settings.policy;
    const alarm = observed.alarm && { step: 'alarm', reason: `${observed.alarm.alarm} entered ALARM: ${observed.alarm.reason}` };
    if (alarm && policy.onAlarm !== 'stop') return { kind: 'turn-back', failure: alarm };
    const halfway = present(record).some((h) => h.progress === 'in-progress');
    if (!halfway && observed.stop) return { kind: 'stop', request: observed.stop };
    const stopBy = (by: string): ReleaseAction => ({ kind: 'stop', request: { releaseId: record.releaseId, by, at: new Date(observed.at).toISOString(), rollback: false } });
    if (!halfway && alarm) return stopBy(`alarm ${alarm.reason}`);
    const unreadableMs = observed.alarmsUnreadableSince === undefined ? 0 : observed.at - observed.alarmsUnreadableSince;
    const boundMs = (policy.alarmUnreadableSeconds ?? 120) * 1000;
    if (!halfway && boundMs > 0 && unreadableMs > boundMs) return stopBy(`the alarm watch (the alarms could not be read for ${Math.round(unreadableMs / 1000)} s)`);
    if (!halfway && observed.interrupt) return { kind: 'interrupt' };
    // The task ran with the target's release; hosts that join later only get its image.
    const task = record.newHosts ? undefined : plan.settings.releaseTask;
    if (task && record.releaseTask?.phase !== 'succeeded') {
      const ran = record.releaseTask;
      if (ran?.phase !== 'started' || task.idempotent) return { kind: 'release-task' };
      return {
        kind: 'turn-back',
        failure: { step: 'release-task', reason: `the release task was under way on ${ran.host} when its worker stopped: it may have run in part, and it is not run again (rollout.releaseTask.idempotent is false); check what it did, then enqueue the release again` },
      };
    }
    if (!observed.suspended) return { kind: 'suspend' };
    // A batch caught half-way (after a crash) is finished first, then the batches in order.
    const left = plan.batches.map((batch) => batch.filter((id) => !isDone(record.hosts[id])));
    const halfwayBatch = left.find((batch) => batch.some((id) => record.hosts[id]?.progress === 'in-progress'));
    const next = left.findIndex((batch) => batch.length > 0);
    const gate = halfwayBatch ? undefined : gateBefore(record, next === -1 ? plan.batches.length : next, observed);
    if (gate) return gate;
    const todo = halfwayBatch ?? left[next];
    if (todo) return nextHosts(record, todo, observed);
    // A release for hosts that joined since the target's release is for those hosts alone: it never takes others in.
    if (!observed.lookedEnough && !record.newHosts) return { kind: 'look-again', mayTakeIn: observed.looks < LOOK_ROUNDS - 1 };
    return { kind: 'restore' };
  }
  return back(record, observed);
}

/** The first gate before batch `index` not passed yet, as the action it calls for. */
function gateBefore(record: ReleaseRecord, index: number, observed: ReleaseObservation): ReleaseAction | undefined {
  const gates = record.plan!.gates ?? [];
  const gate = gates.findIndex((g, i) => g.afterBatch <= index && !record.gates?.[i]?.passedAt);
  if (gate === -1) return undefined;
  const reached = record.gates?.[gate]?.reachedAt;
  if (reached === undefined) return { kind: 'reach-gate', gate };
  const spec = gates[gate]!;
  if (spec.kind === 'bake') {
    const until = Date.parse(reached) + spec.seconds * 1000;
    return observed.at >= until ? { kind: 'pass-gate', gate } : { kind: 'wait-gate', gate, until };
  }
  const promotion = record.promotion;
  // A promotion first seen before the gate was reached was for an earlier gate, or came early; the time its writer put on it counts for nothing.
  if (promotion && Date.parse(promotion.seenAt) > Date.parse(reached)) return { kind: 'pass-gate', gate, by: promotion.by };
  return { kind: 'wait-gate', gate };
}

function nextHosts(record: ReleaseRecord, todo: string[], observed: ReleaseObservation): ReleaseAction {
  const plan = record.plan!;
  // From the policy and the target as it is now: hosts may have joined or left since the plan.
  const minHealthy = minHealthyFor(plan.settings.policy, present(record).length);
  const room = observed.serving.size - minHealthy;
  const leaving = todo.filter((id) => observed.serving.has(id));
  const now = leaving.length <= room ? todo : [...todo.filter((id) => !observed.serving.has(id)), ...leaving.slice(0, Math.max(0, room))];
  if (now.length > 0) return { kind: 'release-hosts', hosts: now, cut: now.length < todo.length };
  const why = `only ${observed.serving.size} host(s) are in service: taking another out would leave fewer than policy.minHealthy (${minHealthy}) serving`;
  if (observed.noRoomSince !== undefined && observed.at - observed.noRoomSince > plan.inServiceTimeoutMs) return { kind: 'turn-back', failure: { step: 'min-healthy', reason: why } };
  return { kind: 'wait', why };
}

/** Where a host goes back to: hosts caught half-way always to the old image; released ones as the policy or the operator says. */
export function goalBack(record: ReleaseRecord, id: string): 'new' | 'old' {
  const host = record.hosts[id];
  if (host && (host.progress === 'in-progress' || host.progress === 'attention')) return 'old';
  // An alarm says the new image is bad in production: every host released goes back.
  return record.plan!.onFailure === 'all' || record.stop?.rollback === true || record.failure?.step === 'alarm' ? 'old' : 'new';
}

function back(record: ReleaseRecord, observed: ReleaseObservation): ReleaseAction {
  const plan = record.plan!;
  const order = plan.batches.flat();
  const open = (id: string) => !observed.settledBack.has(id);
  const midway = order.filter((id) => open(id) && ['in-progress', 'attention'].includes(record.hosts[id]?.progress ?? 'pending'));
  if (midway.length > 0) return { kind: 'back-hosts', hosts: midway, goal: 'old' };
  const released = order.filter((id) => open(id) && ['released', 'kept'].includes(record.hosts[id]?.progress ?? 'pending')).reverse();
  const next = released[0];
  if (next === undefined) return { kind: 'restore' };
  const goal = goalBack(record, next);
  // A released host that goes back leaves service for a while: only if enough others serve.
  if (goal === 'old' && observed.serving.has(next)) {
    const minHealthy = minHealthyFor(plan.settings.policy, present(record).length);
    if (observed.serving.size - 1 < minHealthy) {
      if (observed.noRoomSince !== undefined && observed.at - observed.noRoomSince > plan.inServiceTimeoutMs) {
        return { kind: 'leave-host', host: next, reason: 'left on the new image: rolling it back now would leave fewer than policy.minHealthy in service' };
      }
      return { kind: 'wait', why: `rolling ${next} back now would leave fewer than policy.minHealthy (${minHealthy}) in service` };
    }
  }
  return { kind: 'back-hosts', hosts: [next], goal };
}
