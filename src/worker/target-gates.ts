import { heldBy, lockInForce, stopOf, type StopRequest, type TargetControl, type TargetLock } from '../state/control.js';
import type { ReleaseRecord } from '../state/release-record.js';
import type { TargetRelease } from '../state/release-store.js';

// The gate before a release starts (or resumes from a safe point), in one order. Pure: the record,
// the target's other releases, its control and the clock in; one verdict out. The scheduler applies it.
//
// 0. The record is final: the caller never asks.
// 1. An operator stopped this release and it has changed no host: `stop` (it ends stopped). First,
//    so that a stop of a release held by a lock takes effect at once.
// 2. Newest wins: a release that has not changed anything yet, or that was stopped at a safe point,
//    gives way to a newer one of its target (waiting, running or done, neither refused nor
//    superseded): `supersede`, or `wait` while a newer one that has not started goes first when this
//    one already changed hosts. A release for new hosts never counts as newer: it repeats the
//    current release, stamped when its hosts were found, and never supersedes a request CI signed.
//    It is itself judged by the time of the release it repeats: any later release that is waiting,
//    under way or succeeded supersedes it (that one releases every host of the target).
//    The release a lock admits (the rollback that set it) gives way to no newer release that has not
//    started: the lock holds those back until the target is unlocked.
// 3. A release that has not started waits while another of its target is half-way (running).
//    "Not started" is read from what the record says was touched, not from its status alone: a
//    `running` record that changed nothing is gated as one that has not started (changedNothing).
// 4. A lock in force that does not admit this release holds it, if it has changed no host: `hold`.
// 5. Otherwise: `go`.

/** One of the target's other releases; `newHosts` when it is a release for new hosts. */
export type OtherRelease = TargetRelease & { readonly newHosts?: boolean };

export interface GateInput {
  readonly record: ReleaseRecord;
  /** The target's other releases the store knows. */
  readonly others: readonly OtherRelease[];
  /** The newest release that started on the target, as its lease names it (DynamoDB): for newest-wins only. */
  readonly newestStarted?: OtherRelease | undefined;
  readonly control: TargetControl | undefined;
  readonly now: Date;
  /** A release for new hosts: the release it repeats (its signed creation time and id), which it is judged by. */
  readonly repeats?: { readonly createdAt: string; readonly releaseId: string } | undefined;
}

export type GateVerdict =
  | { readonly kind: 'go' }
  | { readonly kind: 'wait'; readonly reason: string }
  | { readonly kind: 'hold'; readonly lock: TargetLock }
  | { readonly kind: 'supersede'; readonly by: TargetRelease }
  | { readonly kind: 'stop'; readonly stop: StopRequest };

/** Newest wins: by the request's signed creation time, then id. */
export const newer = (a: { createdAt: string; releaseId: string }, b: { createdAt: string; releaseId: string }) =>
  a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.releaseId > b.releaseId);

/** What supersedes a release for new hosts: a later release that releases every host (waiting, under way, or succeeded). */
const COVERS_NEW_HOSTS = new Set<ReleaseRecord['status']>(['accepted', 'running', 'interrupted', 'succeeded']);

/** The newest of `others` that is newer than `record` (or than the release it repeats) and may supersede it. */
export function newestAbove(record: ReleaseRecord, others: readonly OtherRelease[], repeats?: { createdAt: string; releaseId: string }): OtherRelease | undefined {
  const mine = repeats ?? { createdAt: record.request.createdAt, releaseId: record.releaseId };
  return others
    .filter((other) => other.status !== 'refused' && other.status !== 'superseded' && !other.newHosts && newer(other, mine))
    .filter((other) => !record.newHosts || COVERS_NEW_HOSTS.has(other.status))
    .sort((a, b) => (newer(a, b) ? -1 : 1))[0];
}

/** Hosts a release has changed (or may have, mid-way): not 'pending', not back as they were, not gone. */
export function changedHosts(record: ReleaseRecord): string[] {
  return Object.values(record.hosts)
    .filter((h) => h.progress === 'released' || h.progress === 'kept' || h.progress === 'in-progress' || h.progress === 'attention')
    .map((h) => h.name ?? h.address);
}

/**
 * Changed nothing yet, whatever its status says: no host touched, no Auto Scaling process or alarm
 * touched, no release task started. A `running` record can be one (a worker killed right after
 * preparing it), or a finished record set back to `running` by hand: either way it is gated as a
 * release that has not started.
 */
export function changedNothing(record: ReleaseRecord): boolean {
  return (
    changedHosts(record).length === 0 &&
    Object.values(record.scaling ?? {}).every((group) => group.phase === 'planned') &&
    (record.alarms === undefined || record.alarms.phase === 'planned') &&
    record.releaseTask === undefined
  );
}

/** Not started yet (accepted, or running and changed nothing): newest wins, half-way and locks apply as before a start. */
const notStarted = (record: ReleaseRecord) => record.status === 'accepted' || (record.status === 'running' && changedNothing(record));

/** Whether the gate needs the other releases and the control: a release that has not started, or stopped at a safe point. */
export const isWaiting = (record: ReleaseRecord) => notStarted(record) || record.status === 'interrupted';

export function gateRelease({ record, others, newestStarted, control, now, repeats }: GateInput): GateVerdict {
  if (!isWaiting(record)) return { kind: 'go' };
  const untouched = changedHosts(record).length === 0;
  const stop = stopOf(control, record.releaseId);
  if (stop && untouched) return { kind: 'stop', stop };
  const admitted = lockInForce(control, now)?.admits === record.releaseId;
  const started = newestStarted && newestStarted.releaseId !== record.releaseId ? [newestStarted] : [];
  const overtaken = newestAbove(record, [...others.filter((other) => !(admitted && other.status === 'accepted')), ...started], repeats);
  if (overtaken && overtaken.status === 'accepted' && !untouched) {
    return { kind: 'wait', reason: `the newer release ${overtaken.releaseId} of ${record.target} goes first: this one is superseded once it has passed preflight, and resumes if it cannot start` };
  }
  if (overtaken) return { kind: 'supersede', by: overtaken };
  if (notStarted(record)) {
    const halfway = others.find((other) => other.status === 'running');
    if (halfway) return { kind: 'wait', reason: `release ${halfway.releaseId} of ${record.target} is still ${halfway.status}: it goes first` };
  }
  const lock = untouched ? heldBy(control, record.releaseId, now) : undefined;
  if (lock) return { kind: 'hold', lock };
  return { kind: 'go' };
}
