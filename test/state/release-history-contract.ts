import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ReleaseRecord } from '../../src/state/release-record.js';
import type { ReleaseStore } from '../../src/state/release-store.js';
import type { ReleaseHistory } from '../../src/state/target-summary.js';
import { recordFor } from './release-store-contract.js';

// What every store promises the ops commands (run against memory, files and DynamoDB in moto): each
// final record updates its target's summary (current release, last failure), and a target's releases
// come back newest first.

export type HistoryStore = ReleaseStore & ReleaseHistory;

const uniqueTarget = () => `data/ingest/t-${randomUUID().slice(0, 8)}`;

/** Claims a release of `target` and saves it with `status` (under a lease), as a worker would. */
export async function finish(store: HistoryStore, target: string, status: ReleaseRecord['status'], createdAt: Date, image = 'reg/app:v2'): Promise<ReleaseRecord> {
  const base = recordFor({ target, createdAt });
  const { record } = await store.claim({ ...base, request: { ...base.request, image } });
  const lease = await store.acquireLease(target, 'worker-a', 30_000);
  const saved = await store.save({ ...record, status, startedAt: createdAt.toISOString(), finishedAt: new Date(createdAt.getTime() + 60_000).toISOString(), ...(status === 'succeeded' ? {} : { reason: `it ${status}` }) }, lease);
  await store.releaseLease(lease!);
  return saved;
}

export function releaseHistoryContract(name: string, makeStore: () => Promise<HistoryStore> | HistoryStore): void {
  describe(`release history contract: ${name}`, () => {
    it('makes a release that succeeds the current one of its target, and keeps it when a later one fails', async () => {
      const store = await makeStore();
      const target = uniqueTarget();
      const good = await finish(store, target, 'succeeded', new Date('2026-11-01T10:00:00Z'), 'reg/app:v2');
      const bad = await finish(store, target, 'rolled-back', new Date('2026-11-02T10:00:00Z'), 'reg/app:v3');
      const summary = (await store.targetSummaries()).find((s) => s.target === target);
      assert.equal(summary?.current?.releaseId, good.releaseId);
      assert.equal(summary?.current?.image, 'reg/app:v2');
      assert.equal(summary?.current?.requestedBy, good.request.requestedBy);
      assert.equal(summary?.lastFailure?.releaseId, bad.releaseId);
      assert.equal(summary?.lastFailure?.reason, 'it rolled-back');
    });

    it('records a refusal claimed in one write as the last failure, and no current release', async () => {
      const store = await makeStore();
      const target = uniqueTarget();
      const base = recordFor({ target });
      await store.claim({ ...base, status: 'refused', reason: 'not allowed', finishedAt: base.acceptedAt });
      const summary = (await store.targetSummaries()).find((s) => s.target === target);
      assert.equal(summary?.lastFailure?.releaseId, base.releaseId);
      assert.equal(summary?.lastFailure?.status, 'refused');
      assert.equal(summary?.current, undefined);
    });

    it('leaves a target whose releases are all unfinished out of the summaries', async () => {
      const store = await makeStore();
      const target = uniqueTarget();
      await store.claim(recordFor({ target }));
      assert.equal((await store.targetSummaries()).some((s) => s.target === target), false);
    });

    it('shows a claimed release as open until its final write, and lists its target from the claim on', async () => {
      const store = await makeStore();
      const target = uniqueTarget();
      const { record } = await store.claim(recordFor({ target }));
      assert.deepEqual((await store.openReleases()).filter((r) => r.target === target).map((r) => r.releaseId), [record.releaseId]);
      const lease = await store.acquireLease(target, 'worker-a', 30_000);
      const running = await store.save({ ...record, status: 'running' }, lease);
      assert.deepEqual((await store.openReleases()).filter((r) => r.target === target).map((r) => r.status), ['running']);
      await store.save({ ...running, status: 'succeeded', finishedAt: new Date().toISOString() }, lease);
      assert.deepEqual((await store.openReleases()).filter((r) => r.target === target), []);
      assert.equal((await store.targetSummaries()).find((s) => s.target === target)?.current?.releaseId, record.releaseId);
    });

    it('lists a target\'s releases newest request first, at most the limit, and no other target\'s', async () => {
      const store = await makeStore();
      const target = uniqueTarget();
      const made: ReleaseRecord[] = [];
      for (let day = 1; day <= 5; day += 1) made.push(await finish(store, target, day % 2 ? 'succeeded' : 'failed', new Date(`2026-11-0${day}T10:00:00Z`)));
      await finish(store, uniqueTarget(), 'succeeded', new Date('2026-11-09T10:00:00Z'));
      const recent = await store.recent(target, 3);
      assert.deepEqual(recent.map((r) => r.releaseId), made.slice(2).reverse().map((r) => r.releaseId));
      assert.deepEqual((await store.recent(target, 10)).length, 5);
    });
  });
}
