import type { ControlChange, TargetControl } from './control.js';
import type { ReleaseRecord } from './release-record.js';

// Where release records live. One interface, two stores: files on the bastion (one worker) and
// DynamoDB (several workers). Both pass the same contract suite (test/state/release-store-contract.ts).
//
// Writes are conditional: `save` writes revision N+1 only over revision N, so a writer working from
// a stale copy (a second worker, a worker that slept past its lease) is refused, never merged.

export class StaleRecordError extends Error {
  override name = 'StaleRecordError';
  constructor(
    readonly releaseId: string,
    readonly expected: number,
    readonly found: number | undefined,
  ) {
    super(`release ${releaseId}: the record is at revision ${found ?? 'none'}, not ${expected}: another writer changed it; this worker must stop acting on it`);
  }
}

/** Neither the record of a release nor its previous copy can be read: what it changed is unknown. */
export class DamagedRecordError extends Error {
  override name = 'DamagedRecordError';
  constructor(
    readonly releaseId: string,
    readonly where: string,
    readonly problem: string,
  ) {
    super(`the record of release ${releaseId} (${where}) cannot be read: ${problem}`);
  }
}

/** A damaged record found while reading: said in the log and in chat, never a reason to stop the worker. */
export interface DamageReport {
  readonly releaseId?: string;
  readonly where: string;
  readonly problem: string;
  /** What the store used instead: the previous copy of the record, or nothing. */
  readonly recovered: 'previous-copy' | 'nothing';
}

/** The right to act on one target until `expiresAt`: taken, renewed by heartbeat, released. */
export interface TargetLease {
  readonly target: string;
  readonly owner: string;
  /** Bumped by every taking: a write under an older token is refused (fencing). */
  readonly token: number;
  /** Epoch ms, by the clock of the worker that took or renewed it. */
  readonly expiresAt: number;
  /**
   * The newest release that started on the target, as the lease item said when the lease was taken
   * (DynamoDB store; the file and memory stores know every release at once and leave it out).
   */
  readonly newest?: { readonly releaseId: string; readonly createdAt: string };
}

/** This worker no longer holds the lease (it expired and another worker took it): it must stop acting. */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
  constructor(
    readonly target: string,
    readonly reason: string,
  ) {
    super(`lost the lease on ${target}: ${reason}; this worker stops acting on it`);
  }
}

/** A release of a target as newest-wins compares them: by the request's signed creation time, then id. */
export interface TargetRelease {
  readonly releaseId: string;
  readonly createdAt: string;
  readonly status: ReleaseRecord['status'];
}

export interface ClaimResult {
  /** true: this call created the record; false: it existed, and `record` is the stored one. */
  readonly claimed: boolean;
  readonly record: ReleaseRecord;
}

export interface ReleaseStore {
  /** A name for logs: "files in /var/lib/harbormaster". */
  readonly description: string;
  /** Creates the record of a release seen for the first time; an existing record is returned untouched. */
  claim(record: ReleaseRecord): Promise<ClaimResult>;
  /** undefined: no such release. Rejects with DamagedRecordError when the record exists but cannot be read. */
  get(releaseId: string): Promise<ReleaseRecord | undefined>;
  /**
   * Writes `record` as revision record.revision + 1, only if the stored revision is record.revision
   * and, under a lease, only while that lease is still the holder's (else LeaseLostError); durable
   * when it resolves. Resolves with what was stored; rejects with StaleRecordError otherwise.
   */
  save(record: ReleaseRecord, lease?: TargetLease): Promise<ReleaseRecord>;
  /** Every release not in a final state, oldest first. */
  unfinished(): Promise<ReleaseRecord[]>;
  /** Every release of a target the store knows, with its status (for newest-wins). */
  releasesOf(target: string): Promise<TargetRelease[]>;
  /**
   * Takes the target's lease if it is free, given up, or already `owner`'s (then it is renewed, or
   * taken anew once expired); undefined while another owner holds it. Another owner's lease that is
   * no longer renewed is taken once it is over (the DynamoDB store judges that without reading the
   * other owner's clock: see lease-watch.ts). Each taking bumps the token.
   */
  acquireLease(target: string, owner: string, ttlMs: number): Promise<TargetLease | undefined>;
  /** Moves the lease's expiry forward; rejects with LeaseLostError if it is no longer the holder's. */
  renewLease(lease: TargetLease, ttlMs: number): Promise<TargetLease>;
  /** Gives the lease up (if still held); another worker may take it at once. */
  releaseLease(lease: TargetLease): Promise<void>;
  /** What operators asked of the target (control.ts); revision 0 when nothing was ever written. */
  control(target: string): Promise<TargetControl>;
  /**
   * Applies `change` to the target's control as stored now and writes it as the next revision, only
   * over the revision it was computed from; when another writer came first, reads again and applies
   * `change` anew (so `change` must be pure). Never fenced by a lease: operators write while a worker
   * holds the target. Resolves with what is stored (unchanged when `change` returns undefined).
   */
  updateControl(target: string, change: ControlChange): Promise<TargetControl>;
  close?(): Promise<void> | void;
}
