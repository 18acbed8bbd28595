// What operators ask of a target, recorded apart from the release records: an operator's write never
// conflicts with the worker's (the worker writes release records under its lease; operators write
// this document, which has its own revision and no lease fence). The worker reads it at every
// release-level decision and before it starts a release; it is never a signal to a process.

/**
 * Who asked, and when (ISO time, the writer's clock). `by`: who the command ran as, as the store's
 * side vouches for it (the caller's ARN for DynamoDB, the OS user for the file store:
 * src/cli/ops/identity.ts); `note`: what the person added with --by, kept beside it.
 */
export interface ControlMark {
  readonly by: string;
  readonly at: string;
  readonly note?: string;
}

/** Who asked, for people: `by`, and the note beside it. */
export const askedBy = (mark: { readonly by: string; readonly note?: string | undefined }): string => (mark.note ? `${mark.by} (note: ${mark.note})` : mark.by);

/** Requests for a locked target wait in the release state; they are never refused and never expire. */
export interface TargetLock extends ControlMark {
  readonly reason: string;
  /** ISO time: a lock nobody lifts ends by itself. */
  readonly until: string;
  /** A release let through the lock: the rollback that set it. */
  readonly admits?: string;
}

/** Stop the release at its next safe point; with `rollback`, the hosts it released go back too. */
export interface StopRequest extends ControlMark {
  readonly releaseId: string;
  readonly rollback: boolean;
}

/** Lets the release past the manual gate it waits at (policy.steps `{pause: true}`). */
export interface PromoteRequest extends ControlMark {
  readonly releaseId: string;
}

/**
 * `harbormaster rollback`: a request, never a release. The worker checks it against its own history
 * (rollback-requests.ts) and turns it into a release with this id, or records why it did not.
 */
export interface RollbackRequest extends ControlMark {
  /** The id the rollback release gets (chosen by the command, so it can wait for it). */
  readonly releaseId: string;
  /** Back to the image of this release; none: the newest succeeded image other than the current one. */
  readonly to?: string;
  readonly reason?: string;
}

/** A rollback request the worker did not turn into a release, and why. */
export interface RollbackRefusal {
  readonly releaseId: string;
  readonly reason: string;
  readonly at: string;
}

export interface TargetControl {
  readonly target: string;
  /** Bumped by every write; 0: never written. A write over a stale revision is refused and retried. */
  readonly revision: number;
  readonly lock?: TargetLock;
  /** At most one per release: a second stop of the same release is the same request. */
  readonly stops?: readonly StopRequest[];
  readonly promotions?: readonly PromoteRequest[];
  /** A rollback asked for and not yet turned into a release. */
  readonly rollback?: RollbackRequest;
  /** The last rollback request the worker refused. */
  readonly refusedRollback?: RollbackRefusal;
  /** The last lock lifted by `harbormaster unlock`, and who lifted it (for status and the record of who did what). */
  readonly unlocked?: ControlMark & { readonly lock: TargetLock };
}

/** A change to a target's control, from what is stored now; undefined: nothing to change. */
export type ControlChange = (current: TargetControl) => Omit<TargetControl, 'revision' | 'target'> | undefined;

export const emptyControl = (target: string): TargetControl => ({ target, revision: 0 });

/** The lock in force at `now`, if any (an expired lock is no lock). */
export function lockInForce(control: TargetControl | undefined, now: Date): TargetLock | undefined {
  const lock = control?.lock;
  return lock && Date.parse(lock.until) > now.getTime() ? lock : undefined;
}

/** Whether a release may start on the target now: a lock holds it back unless it admits that release. */
export function heldBy(control: TargetControl | undefined, releaseId: string, now: Date): TargetLock | undefined {
  const lock = lockInForce(control, now);
  return lock && lock.admits !== releaseId ? lock : undefined;
}

export const stopOf = (control: TargetControl | undefined, releaseId: string): StopRequest | undefined => control?.stops?.find((s) => s.releaseId === releaseId);

export const promotionOf = (control: TargetControl | undefined, releaseId: string): PromoteRequest | undefined => control?.promotions?.find((p) => p.releaseId === releaseId);

/** Requests about releases that have ended are dropped at the next write, so the document stays small. */
export function withoutEnded(control: Omit<TargetControl, 'revision' | 'target'>, live: (releaseId: string) => boolean): Omit<TargetControl, 'revision' | 'target'> {
  return {
    ...(control.lock ? { lock: control.lock } : {}),
    ...(control.unlocked ? { unlocked: control.unlocked } : {}),
    ...(control.rollback ? { rollback: control.rollback } : {}),
    ...(control.refusedRollback ? { refusedRollback: control.refusedRollback } : {}),
    ...(control.stops?.some((s) => live(s.releaseId)) ? { stops: control.stops.filter((s) => live(s.releaseId)) } : {}),
    ...(control.promotions?.some((p) => live(p.releaseId)) ? { promotions: control.promotions.filter((p) => live(p.releaseId)) } : {}),
  };
}
