import { emptyControl, type ControlChange, type TargetControl } from './control.js';
import { isFinal, type ReleaseRecord } from './release-record.js';
import { LocalLeases } from './local-leases.js';
import { foldTargetSummary, type ReleaseHistory, type TargetSummary } from './target-summary.js';
import { StaleRecordError, type ClaimResult, type ReleaseStore, type TargetLease, type TargetRelease } from './release-store.js';

// A store in this process's memory: for tests of the logic around a store, and for commands that
// must not leave anything behind. It keeps copies, so callers cannot change what is stored by accident.

export class MemoryReleaseStore implements ReleaseStore, ReleaseHistory {
  readonly description = 'memory (nothing survives this process)';
  private readonly records = new Map<string, ReleaseRecord>();
  private readonly summaries = new Map<string, TargetSummary>();
  private readonly leases = new LocalLeases();
  private readonly controls = new Map<string, TargetControl>();

  async claim(record: ReleaseRecord): Promise<ClaimResult> {
    const existing = this.records.get(record.releaseId);
    if (existing) return { claimed: false, record: structuredClone(existing) };
    const stored = { ...structuredClone(record), revision: 1 };
    this.records.set(record.releaseId, stored);
    this.summarise(stored);
    return { claimed: true, record: structuredClone(stored) };
  }

  async get(releaseId: string): Promise<ReleaseRecord | undefined> {
    const record = this.records.get(releaseId);
    return record && structuredClone(record);
  }

  async save(record: ReleaseRecord, lease?: TargetLease): Promise<ReleaseRecord> {
    if (lease) this.leases.check(lease);
    const stored = this.records.get(record.releaseId);
    if (!stored || stored.revision !== record.revision) throw new StaleRecordError(record.releaseId, record.revision, stored?.revision);
    const next = { ...structuredClone(record), revision: record.revision + 1 };
    delete next.damaged;
    this.records.set(record.releaseId, next);
    this.summarise(next);
    return structuredClone(next);
  }

  private summarise(record: ReleaseRecord): void {
    if (isFinal(record.status)) this.summaries.set(record.target, foldTargetSummary(this.summaries.get(record.target), record, new Date()));
  }

  async targetSummaries(): Promise<TargetSummary[]> {
    return [...this.summaries.values()].map((summary) => structuredClone(summary));
  }

  openReleases(): Promise<ReleaseRecord[]> {
    return this.unfinished();
  }

  async recent(target: string, limit: number): Promise<ReleaseRecord[]> {
    return [...this.records.values()]
      .filter((r) => r.target === target)
      .sort((a, b) => b.request.createdAt.localeCompare(a.request.createdAt) || b.releaseId.localeCompare(a.releaseId))
      .slice(0, limit)
      .map((r) => structuredClone(r));
  }

  async unfinished(): Promise<ReleaseRecord[]> {
    return [...this.records.values()]
      .filter((record) => !isFinal(record.status))
      .sort((a, b) => a.acceptedAt.localeCompare(b.acceptedAt))
      .map((record) => structuredClone(record));
  }

  async releasesOf(target: string): Promise<TargetRelease[]> {
    return [...this.records.values()].filter((r) => r.target === target).map((r) => ({ releaseId: r.releaseId, createdAt: r.request.createdAt, status: r.status }));
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

  async control(target: string): Promise<TargetControl> {
    return structuredClone(this.controls.get(target) ?? emptyControl(target));
  }

  async updateControl(target: string, change: ControlChange): Promise<TargetControl> {
    // Read, change and set with no await between: one process, so no other write can come in between.
    const current = structuredClone(this.controls.get(target) ?? emptyControl(target));
    const next = change(current);
    if (next === undefined) return current;
    const stored: TargetControl = { ...structuredClone(next), target, revision: current.revision + 1 };
    this.controls.set(target, stored);
    return structuredClone(stored);
  }
}
