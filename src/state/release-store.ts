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
   * Writes `record` as revision record.revision + 1, only if the stored revision is record.revision;
   * durable when it resolves. Resolves with what was stored; rejects with StaleRecordError otherwise.
   */
  save(record: ReleaseRecord): Promise<ReleaseRecord>;
  /** Every release not in a final state, oldest first. */
  unfinished(): Promise<ReleaseRecord[]>;
  close?(): Promise<void> | void;
}
