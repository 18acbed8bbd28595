import { createHash } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { releaseIdPattern } from '../request/names.js';
import { isFinal, RECORD_FORMAT, type ReleaseRecord, type ReleaseStatus } from './release-record.js';
import { LocalLeases } from './local-leases.js';
import type { StateDirectoryLock } from './state-directory-lock.js';
import type { ReleaseHistory, TargetSummary } from './target-summary.js';
import { TargetSummaryFiles } from './target-summary-files.js';
import { DamagedRecordError, LeaseLostError, StaleRecordError, type ClaimResult, type DamageReport, type ReleaseStore, type TargetLease, type TargetRelease } from './release-store.js';
import { syncDirectory, writeDurably } from './durable-files.js';
import type { ControlChange, TargetControl } from './control.js';
import { ControlFiles } from './control-files.js';

// The default store: one file per release in `<stateDirectory>/releases`, for one worker per bastion
// (a lock on the directory keeps a second worker out, see state-directory-lock.ts). Given the lock
// (guardWith), the store reads it back before each write takes its place (the rename or link), and
// once the lock is another worker's it writes nothing more and every lease it gave out is lost. (A
// takeover between that read and the rename can still let one last write through: files offer no
// atomic compare-and-rename across processes.)
//
// A write is durable before `save` resolves: the new revision goes to a temporary file that is
// flushed (fsync), the current file is kept as `<id>.prev.json`, the temporary file is renamed over
// the current one, and the directory is flushed. Each file carries a SHA-256 of its record, so a
// file that is torn, empty or altered is detected; the previous copy is used instead (it lacks the
// last write: an intent or an outcome the reconciler re-decides from what it observes, or a status
// or phase change that is then made again), and the damage is reported, never a reason to stop.
//
// Each target with a finished release also has `<stateDirectory>/targets/<sha1(target)>.json`: its
// current release and last failure (target-summary-files.ts), written after the final record.
//
// Each target's control (what operators asked: lock, stop, promote) is under
// `<stateDirectory>/control` (control-files.ts), written by the ops commands beside the running worker.

const FILE_FORMAT = 'harbormaster.release-file/1';

interface FileEnvelope {
  readonly format: typeof FILE_FORMAT;
  readonly sha256: string;
  readonly record: ReleaseRecord;
}

/** What the ledger of finished releases wrote before the release state existed. */
interface LegacyLedgerEntry {
  readonly releaseId: string;
  readonly target: string;
  readonly image: string;
  readonly outcome: string;
  readonly finishedAt: string;
}

const digest = (record: ReleaseRecord) => createHash('sha256').update(JSON.stringify(record)).digest('hex');

function encode(record: ReleaseRecord): string {
  const envelope: FileEnvelope = { format: FILE_FORMAT, sha256: digest(record), record };
  return `${JSON.stringify(envelope)}\n`;
}

type Decoded = { ok: true; record: ReleaseRecord } | { ok: false; problem: string };

function decode(text: string): Decoded {
  if (text.trim() === '') return { ok: false, problem: 'the file is empty' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { ok: false, problem: `the file is not whole JSON (torn or altered): ${(error as Error).message}` };
  }
  const value = parsed as Partial<FileEnvelope> & Partial<LegacyLedgerEntry>;
  if (value.format === FILE_FORMAT) {
    if (!value.record || typeof value.sha256 !== 'string') return { ok: false, problem: 'the file lacks its record or checksum' };
    if (digest(value.record) !== value.sha256) return { ok: false, problem: 'the record does not match its checksum (torn or altered)' };
    if (value.record.format !== RECORD_FORMAT) return { ok: false, problem: `unknown record format ${String(value.record.format)}` };
    return { ok: true, record: value.record };
  }
  if (typeof value.releaseId === 'string' && typeof value.outcome === 'string' && typeof value.finishedAt === 'string') {
    return { ok: true, record: fromLedgerEntry(value as LegacyLedgerEntry) };
  }
  return { ok: false, problem: 'the file is not a release record' };
}

/** A finished release from the earlier ledger, as a record: enough to acknowledge a late duplicate. */
function fromLedgerEntry(entry: LegacyLedgerEntry): ReleaseRecord {
  const [stack = 'unknown', release = 'unknown', deployment = 'unknown'] = entry.target.split('/');
  const status: ReleaseStatus = entry.outcome === 'succeeded' ? 'succeeded' : entry.outcome === 'refused' ? 'refused' : 'failed';
  return {
    format: RECORD_FORMAT,
    releaseId: entry.releaseId,
    revision: 1,
    request: {
      version: 1,
      releaseId: entry.releaseId,
      target: { stack, release, deployment: deployment.replace(/^~/, 'personal-') },
      image: entry.image,
      requestedBy: 'unknown',
      source: {},
      createdAt: entry.finishedAt,
    },
    keyId: 'unknown',
    target: entry.target,
    deployment,
    status,
    direction: 'forward',
    acceptedAt: entry.finishedAt,
    updatedAt: entry.finishedAt,
    finishedAt: entry.finishedAt,
    attempts: 1,
    reason: `recorded by the ledger of finished releases (${entry.outcome})`,
    scaling: {},
    hosts: {},
  };
}


async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

interface FinishedSummary extends TargetRelease {
  readonly finished: true;
  readonly target: string;
}

export interface FileReleaseStoreOptions {
  /** Told of every damaged file found (once per file and content). */
  readonly onDamage?: (report: DamageReport) => void;
  /**
   * For the ops commands beside a running worker: creates nothing when opened and leaves temporary
   * files alone, since they may be the worker's writes in progress. Such a store never saves a record:
   * it only claims new ones (`harbormaster rollback`) and writes the control of a target.
   */
  readonly readOnly?: boolean;
}

export class FileReleaseStore implements ReleaseStore, ReleaseHistory {
  readonly description: string;
  private readonly directory: string;
  private readonly summaries: TargetSummaryFiles;
  private ready: Promise<void> | undefined;
  /** Writes to one release are serialised here; different releases write side by side. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly reported = new Set<string>();
  private tmpCounter = 0;
  /** Summaries of finished records, which never change again: read once per process. */
  private readonly finished = new Map<string, FinishedSummary>();
  /** One worker per state directory (the directory lock): its leases live in its memory. */
  private readonly leases = new LocalLeases();
  private readonly controls: ControlFiles;
  private lock: Pick<StateDirectoryLock, 'lost' | 'verify'> | undefined;

  constructor(
    stateDirectory: string,
    private readonly options: FileReleaseStoreOptions = {},
  ) {
    this.directory = join(stateDirectory, 'releases');
    this.summaries = new TargetSummaryFiles(stateDirectory);
    this.controls = new ControlFiles(stateDirectory);
    this.description = `files in ${this.directory}`;
  }

  /** From now on every write first checks that the directory is still this worker's; its loss revokes every lease. */
  guardWith(lock: Pick<StateDirectoryLock, 'lost' | 'verify'>): void {
    this.lock = lock;
    const revoke = () => this.leases.revokeAll(`the state directory was taken over by another worker (${String((lock.lost.reason as Error | undefined)?.message ?? lock.lost.reason)})`);
    if (lock.lost.aborted) revoke();
    else lock.lost.addEventListener('abort', revoke, { once: true });
  }

  /**
   * The write at `temporary` may take its place only while the directory is still this worker's;
   * under a lease, its loss is the lease's (LeaseLostError).
   */
  private async stillOurs(temporary: string, lease?: TargetLease): Promise<void> {
    try {
      await this.lock?.verify();
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      if (lease) throw new LeaseLostError(lease.target, `the state directory was taken over by another worker (${(error as Error).message})`);
      throw error;
    }
  }

  private paths(releaseId: string) {
    // Release ids were validated as UUIDs; checked again because they name files.
    if (!releaseIdPattern.test(releaseId)) throw new Error(`not a release id: ${JSON.stringify(releaseId).slice(0, 80)}`);
    const current = join(this.directory, `${releaseId}.json`);
    return { current, previous: join(this.directory, `${releaseId}.prev.json`) };
  }

  private prepare(): Promise<void> {
    this.ready ??= (async () => {
      if (this.options.readOnly) return;
      await mkdir(this.directory, { recursive: true, mode: 0o700 });
      // Temporary files of a write that a killed worker never finished: never renamed, so never a record.
      for (const name of await readdir(this.directory)) {
        if (name.includes('.tmp-')) await unlink(join(this.directory, name)).catch(() => undefined);
      }
    })();
    return this.ready;
  }

  private serialised<T>(releaseId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(releaseId) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.queues.set(releaseId, settled);
    void settled.then(() => {
      if (this.queues.get(releaseId) === settled) this.queues.delete(releaseId);
    });
    return next;
  }

  private damage(report: DamageReport, text: string): void {
    const key = `${report.where}:${createHash('sha256').update(text).digest('hex')}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.options.onDamage?.(report);
  }

  /** The record of a release: its current file, or its previous copy when the current one is damaged. */
  private async read(releaseId: string): Promise<ReleaseRecord | undefined> {
    const { current, previous } = this.paths(releaseId);
    const text = await readIfThere(current);
    if (text === undefined) return undefined;
    const decoded = decode(text);
    if (decoded.ok) return decoded.record;
    const previousText = await readIfThere(previous);
    const fallback = previousText === undefined ? undefined : decode(previousText);
    if (fallback?.ok) {
      this.damage({ releaseId, where: current, problem: decoded.problem, recovered: 'previous-copy' }, text);
      return { ...fallback.record, damaged: `the current record was damaged (${decoded.problem}); the previous copy was used: its last recorded step may be missing` };
    }
    this.damage({ releaseId, where: current, problem: decoded.problem, recovered: 'nothing' }, text);
    throw new DamagedRecordError(releaseId, current, decoded.problem);
  }

  async claim(record: ReleaseRecord): Promise<ClaimResult> {
    await this.prepare();
    return this.serialised(record.releaseId, async () => {
      const { current } = this.paths(record.releaseId);
      const existing = await this.read(record.releaseId);
      if (existing) return { claimed: false, record: existing };
      const stored: ReleaseRecord = { ...record, revision: 1 };
      const temporary = `${current}.tmp-${process.pid}-${++this.tmpCounter}`;
      await writeDurably(temporary, encode(stored));
      await this.stillOurs(temporary);
      try {
        // link() creates the name only if it is free: two claims of one id cannot both win.
        await link(temporary, current);
      } finally {
        await unlink(temporary);
      }
      await syncDirectory(this.directory);
      return { claimed: true, record: stored };
    }).then(async (result) => {
      if (result.claimed && isFinal(result.record.status)) await this.noteFinal(result.record);
      return result;
    });
  }

  async get(releaseId: string): Promise<ReleaseRecord | undefined> {
    await this.prepare();
    return this.read(releaseId);
  }

  async save(record: ReleaseRecord, lease?: TargetLease): Promise<ReleaseRecord> {
    await this.prepare();
    return this.serialised(record.releaseId, async () => {
      if (lease) this.leases.check(lease);
      this.lock?.lost.throwIfAborted();
      const { current, previous } = this.paths(record.releaseId);
      const stored = await this.read(record.releaseId);
      if (!stored || stored.revision !== record.revision) throw new StaleRecordError(record.releaseId, record.revision, stored?.revision);
      const next: ReleaseRecord = { ...record, revision: record.revision + 1 };
      delete next.damaged;
      const temporary = `${current}.tmp-${process.pid}-${++this.tmpCounter}`;
      await writeDurably(temporary, encode(next));
      await this.stillOurs(temporary, lease);
      // Keep the copy being replaced, so a later damaged current file still has a fallback.
      await unlink(previous).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      await link(current, previous).catch(() => undefined);
      await rename(temporary, current);
      await syncDirectory(this.directory);
      return next;
    }).then(async (next) => {
      if (isFinal(next.status)) await this.noteFinal(next);
      return next;
    });
  }

  private noteFinal(record: ReleaseRecord): Promise<void> {
    return this.summaries.note(record);
  }

  targetSummaries(): Promise<TargetSummary[]> {
    return this.summaries.all();
  }

  openReleases(): Promise<ReleaseRecord[]> {
    return this.unfinished();
  }

  async recent(target: string, limit: number): Promise<ReleaseRecord[]> {
    const mine = (await this.all())
      .filter((r) => r.target === target)
      .map((r) => ({ releaseId: r.releaseId, createdAt: 'finished' in r ? r.createdAt : r.request.createdAt }))
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.releaseId.localeCompare(a.releaseId))
      .slice(0, limit);
    const records = await Promise.all(mine.map((r) => this.get(r.releaseId).catch(() => undefined)));
    return records.filter((record): record is ReleaseRecord => record !== undefined);
  }

  /**
   * Every record that can be read (a damaged one is reported by read() and left out). A finished
   * record never changes again: it is read once, and from then on only its summary is kept.
   */
  private async all(): Promise<Array<ReleaseRecord | FinishedSummary>> {
    await this.prepare();
    const records: Array<ReleaseRecord | FinishedSummary> = [];
    for (const name of await this.releaseFiles()) {
      const match = /^(.+)\.json$/.exec(name);
      if (!match || name.endsWith('.prev.json') || !releaseIdPattern.test(match[1]!)) continue;
      const finished = this.finished.get(match[1]!);
      if (finished) {
        records.push(finished);
        continue;
      }
      const record = await this.read(match[1]!).catch((error: unknown) => {
        if (error instanceof DamagedRecordError) return undefined;
        throw error;
      });
      if (!record) continue;
      if (isFinal(record.status)) this.finished.set(record.releaseId, { finished: true, releaseId: record.releaseId, target: record.target, createdAt: record.request.createdAt, status: record.status });
      records.push(record);
    }
    return records;
  }

  /** The names in the releases directory; none when a read-only store finds no directory yet. */
  private async releaseFiles(): Promise<string[]> {
    try {
      return await readdir(this.directory);
    } catch (error) {
      if (this.options.readOnly && (error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  async unfinished(): Promise<ReleaseRecord[]> {
    return (await this.all())
      .filter((record): record is ReleaseRecord => !('finished' in record) && !isFinal(record.status))
      .sort((a, b) => a.acceptedAt.localeCompare(b.acceptedAt));
  }

  async releasesOf(target: string): Promise<TargetRelease[]> {
    return (await this.all())
      .filter((r) => r.target === target)
      .map((r) => ('finished' in r ? { releaseId: r.releaseId, createdAt: r.createdAt, status: r.status } : { releaseId: r.releaseId, createdAt: r.request.createdAt, status: r.status }));
  }

  async acquireLease(target: string, owner: string, ttlMs: number) {
    return this.leases.acquire(target, owner, ttlMs);
  }

  async renewLease(lease: TargetLease, ttlMs: number) {
    return this.leases.renew(lease, ttlMs);
  }

  async releaseLease(lease: TargetLease) {
    this.leases.release(lease);
  }

  control(target: string): Promise<TargetControl> {
    return this.controls.read(target);
  }

  /** Not guarded by the directory lock: the ops commands write it while the worker holds the directory. */
  updateControl(target: string, change: ControlChange): Promise<TargetControl> {
    return this.controls.update(target, change);
  }
}
