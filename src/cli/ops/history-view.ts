import { askedBy } from '../../state/control.js';
import type { ReleaseRecord } from '../../state/release-record.js';
import { ago, duration, renderTable, shortId, shortImage, when, type Tone } from './table.js';

// `history TARGET`, decided: one entry per release, newest request first. Pure.

export interface HistoryEntry {
  readonly releaseId: string;
  readonly image: string;
  readonly status: ReleaseRecord['status'];
  readonly direction: 'forward' | 'back';
  readonly reason: string | null;
  readonly requestedBy: string;
  readonly source: { readonly branch?: string; readonly commit?: string; readonly buildUrl?: string };
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  /** From the first change to the end (or to now, for a release still going); null when it changed nothing. */
  readonly durationMs: number | null;
  readonly hosts: number;
  /** The release that came first, for a superseded one (from its recorded reason). */
  readonly supersededBy: string | null;
  /** Made by an operator (`harbormaster rollback`): whose image, undoing what, by whom. */
  readonly origin: ReleaseRecord['origin'] | null;
  /** An operator's stop, as the release took it up. */
  readonly stop: ReleaseRecord['stop'] | null;
}

export interface HistoryView {
  readonly format: 'harbormaster.history/1';
  readonly at: string;
  readonly target: string;
  readonly releases: HistoryEntry[];
}

const RELEASE_ID = /\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b/;

export function historyEntry(record: ReleaseRecord, now: Date): HistoryEntry {
  const end = record.finishedAt ? Date.parse(record.finishedAt) : now.getTime();
  return {
    releaseId: record.releaseId,
    image: record.request.image,
    status: record.status,
    direction: record.direction,
    reason: record.reason ?? null,
    requestedBy: record.request.requestedBy,
    source: { ...record.request.source },
    createdAt: record.request.createdAt,
    startedAt: record.startedAt ?? null,
    finishedAt: record.finishedAt ?? null,
    durationMs: record.startedAt ? Math.max(0, end - Date.parse(record.startedAt)) : null,
    hosts: Object.keys(record.hosts).length,
    supersededBy: record.status === 'superseded' ? (RELEASE_ID.exec(record.reason ?? '')?.[1] ?? null) : null,
    origin: record.origin ?? null,
    stop: record.stop ?? null,
  };
}

export function historyView(target: string, records: readonly ReleaseRecord[], now: Date): HistoryView {
  const releases = [...records].sort((a, b) => b.request.createdAt.localeCompare(a.request.createdAt) || b.releaseId.localeCompare(a.releaseId)).map((r) => historyEntry(r, now));
  return { format: 'harbormaster.history/1', at: now.toISOString(), target, releases };
}

/** "rollback of 1a2b3c4d by alice", "stopped by bob (with rollback)": who steered the release, for the BY column. */
export function steeredBy(entry: Pick<HistoryEntry, 'origin' | 'stop' | 'requestedBy'>): string {
  const parts = [entry.origin ? `rollback${entry.origin.of ? ` of ${shortId(entry.origin.of)}` : ''} by ${entry.origin.by}` : entry.requestedBy];
  if (entry.stop) parts.push(`stopped by ${askedBy(entry.stop)}${entry.stop.rollback ? ' (with rollback)' : ''}`);
  return parts.join('; ');
}

export const toneOf = (status: ReleaseRecord['status']): Tone =>
  status === 'succeeded' ? 'good' : status === 'failed' || status === 'rolled-back' || status === 'refused' ? 'bad' : status === 'superseded' ? 'dim' : 'warn'; // 'stopped', like the unfinished ones: neither good nor a failure

export function historyText(view: HistoryView, colour: boolean): string[] {
  const now = new Date(view.at);
  const rows = view.releases.map((r) => [
    shortId(r.releaseId),
    shortImage(r.image),
    { text: r.status, tone: toneOf(r.status) },
    steeredBy(r),
    r.source.commit ? r.source.commit.slice(0, 10) : (r.source.branch ?? '-'),
    r.startedAt ? `${when(r.startedAt)} (${ago(now, r.startedAt)})` : '-',
    r.durationMs === null ? '-' : duration(r.durationMs),
    String(r.hosts),
    r.supersededBy ? shortId(r.supersededBy) : '-',
    r.reason && r.status !== 'succeeded' ? r.reason : '',
  ]);
  if (rows.length === 0) return [`no release of ${view.target} is recorded`];
  return renderTable(['ID', 'IMAGE', 'OUTCOME', 'BY', 'SOURCE', 'STARTED', 'TOOK', 'HOSTS', 'SUPERSEDED BY', 'REASON'], rows, colour);
}
