import { isFinal, type ReleaseRecord } from './release-record.js';

// What a target's finished releases leave behind, kept apart from the release records and never
// expired: the current release (the last that succeeded) and the last failure. Stores write it with
// every final record (foldTargetSummary), so `status` reads one small item per target and a later
// rollback knows the current image after its record has expired.

export const TARGET_SUMMARY_FORMAT = 'harbormaster.target/1';

/** One release as ops see it at a glance. */
export interface ReleaseSummary {
  readonly releaseId: string;
  readonly image: string;
  /** The image by digest, as pulled (absent in summaries of releases from before digests were recorded). */
  readonly imageDigest?: string;
  readonly status: ReleaseRecord['status'];
  readonly requestedBy: string;
  readonly commit?: string;
  readonly branch?: string;
  readonly buildUrl?: string;
  /** The request's signed creation time. */
  readonly createdAt: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  readonly reason?: string;
  /** What the release left for a person (a failed restore). */
  readonly attention?: string[];
  /** Instance ids the release touched. */
  readonly hosts: string[];
}

export interface TargetSummary {
  readonly format: typeof TARGET_SUMMARY_FORMAT;
  readonly target: string;
  /** The last release of the target that succeeded: what its hosts should run. */
  readonly current?: ReleaseSummary;
  /** The last release that rolled back, failed or was refused. */
  readonly lastFailure?: ReleaseSummary;
  readonly updatedAt: string;
}

/** Statuses that count as a failure in a summary. */
export const FAILURE_STATUSES: ReadonlySet<ReleaseRecord['status']> = new Set(['rolled-back', 'failed', 'refused']);

export function releaseSummary(record: ReleaseRecord): ReleaseSummary {
  const { request } = record;
  const { source } = request;
  return {
    releaseId: record.releaseId,
    image: request.image,
    ...(record.imageDigest ? { imageDigest: record.imageDigest } : {}),
    status: record.status,
    requestedBy: request.requestedBy,
    ...(source.commit ? { commit: source.commit } : {}),
    ...(source.branch ? { branch: source.branch } : {}),
    ...(source.buildUrl ? { buildUrl: source.buildUrl } : {}),
    createdAt: request.createdAt,
    ...(record.startedAt ? { startedAt: record.startedAt } : {}),
    ...(record.finishedAt ? { finishedAt: record.finishedAt } : {}),
    ...(record.reason ? { reason: record.reason } : {}),
    ...(record.attention?.length ? { attention: [...record.attention] } : {}),
    hosts: Object.keys(record.hosts),
  };
}

/** Which slot of the summary a final record fills: current, lastFailure, or none (superseded). */
export function summarySlot(record: ReleaseRecord): 'current' | 'lastFailure' | undefined {
  if (record.status === 'succeeded') return 'current';
  if (FAILURE_STATUSES.has(record.status)) return 'lastFailure';
  return undefined;
}

const endOf = (summary: ReleaseSummary | undefined) => summary?.finishedAt ?? summary?.createdAt ?? '';

/**
 * The summary after a final record: the record takes its slot unless that slot already holds a
 * release that ended later. Records that are not final leave the summary as it is.
 */
export function foldTargetSummary(summary: TargetSummary | undefined, record: ReleaseRecord, now: Date): TargetSummary {
  const base: TargetSummary = summary ?? { format: TARGET_SUMMARY_FORMAT, target: record.target, updatedAt: now.toISOString() };
  if (!isFinal(record.status)) return base;
  const slot = summarySlot(record);
  const next = releaseSummary(record);
  if (!slot || endOf(base[slot]) > endOf(next)) return { ...base, updatedAt: now.toISOString() };
  return { ...base, [slot]: next, updatedAt: now.toISOString() };
}

/** What `status` and `history` read from a store, beside the ReleaseStore's own reads. */
export interface ReleaseHistory {
  readonly description: string;
  /** The summary of every target that has a finished release. */
  targetSummaries(): Promise<TargetSummary[]>;
  /** A target's releases, newest request first, at most `limit`. */
  recent(target: string, limit: number): Promise<ReleaseRecord[]>;
  get(releaseId: string): Promise<ReleaseRecord | undefined>;
  /** Every release not in a final state (what `status` shows in progress or waiting). */
  openReleases(): Promise<ReleaseRecord[]>;
}
