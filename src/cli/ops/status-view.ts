import { askedBy, heldBy, lockInForce, type RollbackRefusal, type RollbackRequest, type TargetControl, type TargetLock } from '../../state/control.js';
import type { ReleaseRecord } from '../../state/release-record.js';
import type { ReleaseSummary, TargetSummary } from '../../state/target-summary.js';

// `status`, decided: from the targets' summaries and the unfinished records, what each target runs,
// what is in progress, what waits and why, what is still to restore, and the last failure. Pure: the
// command reads the store and prints what this returns (the `--json` shape documented in the README).

export interface InProgress {
  readonly releaseId: string;
  readonly image: string;
  readonly requestedBy: string;
  readonly direction: 'forward' | 'back';
  /** Hosts released (forward) or put back (back) so far, of all the release's hosts. */
  readonly hostsDone: number;
  readonly hostsTotal: number;
  /** Hosts in progress and their last recorded step: "h2 at stop-old". */
  readonly steps: string[];
  readonly worker: string | null;
  readonly since: string;
}

export interface Waiting {
  readonly releaseId: string;
  readonly image: string;
  readonly status: ReleaseRecord['status'];
  readonly requestedBy: string;
  readonly createdAt: string;
  readonly why: string;
}

export interface TargetStatus {
  readonly target: string;
  readonly current: ReleaseSummary | null;
  readonly inProgress: InProgress | null;
  readonly waiting: Waiting[];
  /** Auto Scaling processes still suspended, alarms still muted, restores not yet confirmed. */
  readonly restoresPending: string[];
  readonly lastFailure: ReleaseSummary | null;
  /** The lock in force (`harbormaster lock`): who, why, until; releases that have not started wait for it. */
  readonly lock: TargetLock | null;
  /** A rollback asked for (`harbormaster rollback`) that the worker has not turned into a release yet. */
  readonly rollbackRequested: RollbackRequest | null;
  /** The last rollback request the worker refused in the last day, and why. */
  readonly rollbackRefused: RollbackRefusal | null;
}

export interface StatusView {
  readonly format: 'harbormaster.status/1';
  readonly at: string;
  readonly targets: TargetStatus[];
}

const hostLabel = (host: ReleaseRecord['hosts'][string]) => host.name ?? host.address;

function inProgressOf(record: ReleaseRecord): InProgress {
  const hosts = Object.values(record.hosts);
  const doneAs = record.direction === 'back' ? ['restored', 'kept'] : ['released'];
  return {
    releaseId: record.releaseId,
    image: record.request.image,
    requestedBy: record.request.requestedBy,
    direction: record.direction,
    hostsDone: hosts.filter((h) => doneAs.includes(h.progress)).length,
    hostsTotal: hosts.length,
    steps: hosts.filter((h) => h.progress === 'in-progress').map((h) => `${hostLabel(h)} at ${h.intent?.action ?? 'start'}`),
    worker: record.owner?.worker ?? null,
    since: record.startedAt ?? record.acceptedAt,
  };
}

/** Why a release that is not running waits, given the running one and the others of its target. */
function whyWaiting(record: ReleaseRecord, running: ReleaseRecord | undefined, others: readonly ReleaseRecord[], control: TargetControl | undefined, now: Date): string {
  const lock = record.status === 'accepted' ? heldBy(control, record.releaseId, now) : undefined;
  if (lock) return `target locked by ${askedBy(lock)} until ${lock.until}: ${lock.reason}`;
  if (record.status === 'interrupted') return `interrupted at a safe point${record.reason ? ` (${record.reason})` : ''}: a worker carries it on when it takes it up`;
  if (running) return `target busy: release ${running.releaseId} is ${running.direction === 'back' ? 'rolling back' : 'running'}`;
  const halfway = others.find((o) => o.status === 'interrupted');
  if (halfway) return `release ${halfway.releaseId} is interrupted and goes first`;
  const newer = others.find((o) => o.request.createdAt > record.request.createdAt);
  if (newer) return `a newer request (${newer.releaseId}) waits too: this one will be superseded`;
  return 'accepted: waiting for a worker to take it up';
}

/** What a record still has to put back: suspended processes, muted alarms, unconfirmed restores. */
export function restoresOf(record: ReleaseRecord): string[] {
  const lines: string[] = [];
  for (const [group, state] of Object.entries(record.scaling)) {
    if (['suspending', 'suspended', 'resuming'].includes(state.phase) && state.suspend.length > 0) lines.push(`Auto Scaling ${group}: ${state.suspend.join(', ')} suspended (${state.phase})`);
  }
  const alarms = record.alarms;
  if (alarms && ['muting', 'muted', 'unmuting'].includes(alarms.phase)) {
    const names = alarms.mode === 'disable-actions' ? alarms.disable : alarms.names;
    if (names.length > 0) lines.push(`alarms ${names.join(', ')} ${alarms.mode === 'mute-rule' ? `muted${alarms.rule ? ` until ${alarms.rule.until}` : ''}` : 'actions disabled'} (${alarms.phase})`);
  }
  for (const pending of record.pending ?? []) lines.push(`not yet confirmed: ${pending}`);
  return lines;
}

export function statusView(input: {
  readonly targets: readonly string[];
  readonly summaries: readonly TargetSummary[];
  readonly unfinished: readonly ReleaseRecord[];
  /** Each shown target's control (lock, stops), where read. */
  readonly controls?: ReadonlyMap<string, TargetControl>;
  readonly now: Date;
}): StatusView {
  const summaries = new Map(input.summaries.map((s) => [s.target, s]));
  const targets = input.targets.map((target): TargetStatus => {
    const mine = input.unfinished.filter((r) => r.target === target).sort((a, b) => a.acceptedAt.localeCompare(b.acceptedAt));
    const running = mine.find((r) => r.status === 'running');
    const summary = summaries.get(target);
    const control = input.controls?.get(target);
    return {
      target,
      current: summary?.current ?? null,
      inProgress: running ? inProgressOf(running) : null,
      waiting: mine
        .filter((r) => r !== running)
        .map((r) => ({ releaseId: r.releaseId, image: r.request.image, status: r.status, requestedBy: r.request.requestedBy, createdAt: r.request.createdAt, why: whyWaiting(r, running, mine.filter((o) => o !== r), control, input.now) })),
      restoresPending: mine.flatMap((r) => restoresOf(r).map((line) => `${line} [release ${r.releaseId}]`)),
      lastFailure: summary?.lastFailure ?? null,
      lock: lockInForce(control, input.now) ?? null,
      rollbackRequested: control?.rollback ?? null,
      rollbackRefused: control?.refusedRollback && Date.parse(control.refusedRollback.at) > input.now.getTime() - 86_400_000 ? control.refusedRollback : null,
    };
  });
  return { format: 'harbormaster.status/1', at: input.now.toISOString(), targets };
}

/** True while any shown target has a release in progress or waiting: `status --watch` goes on. */
export const statusStillMoving = (view: StatusView) => view.targets.some((t) => t.inProgress !== null || t.waiting.length > 0);
