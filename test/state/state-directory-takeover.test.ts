import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Rollout, RolloutContext, RolloutOutcome } from '../../src/rollout/rollout.js';
import { FileReleaseStore } from '../../src/state/file-release-store.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import type { RecordedRelease } from '../../src/state/recorded-release.js';
import { LeaseLostError } from '../../src/state/release-store.js';
import { lockStateDirectory, StateDirectoryLostError } from '../../src/state/state-directory-lock.js';
import { ReleaseScheduler } from '../../src/worker/release-scheduler.js';
import { capturingLogger, workerConfig } from '../support/worker-fixtures.js';
import { recordFor } from './release-store-contract.js';
import { vouchWithTestKey } from '../support/signed-records.js';

// A worker whose state directory another worker took over stops at once: its file store writes
// nothing more (it reads the lock back before each write takes its place, not only at the next
// heartbeat), and every lease it holds is lost, so its releases stop acting.

const directory = () => mkdtempSync(join(tmpdir(), 'harbormaster-takeover-'));

/** What another worker taking the lock over leaves: the lock file, replaced whole, naming it. */
function takeOver(dir: string): void {
  const draft = join(dir, 'worker.lock.other');
  writeFileSync(draft, `${JSON.stringify({ pid: 4_000_000, bootId: 'another-machine' })}\n`);
  renameSync(draft, join(dir, 'worker.lock'));
}

describe('a state directory taken over by another worker', () => {
  it('makes the old holder\'s file store refuse every write at once, before its heartbeat notices', async () => {
    const dir = directory();
    const lock = await lockStateDirectory(dir, { heartbeatMs: 600_000 });
    const store = new FileReleaseStore(dir);
    store.guardWith(lock);
    const { record } = await store.claim(recordFor({ target: 'data/ingest/staging' }));
    const lease = (await store.acquireLease(record.target, 'worker-a', 60_000))!;
    assert.equal((await store.save({ ...record, reason: 'before' }, lease)).revision, 2);
    const saved = (await store.get(record.releaseId))!;

    takeOver(dir);
    await assert.rejects(store.save({ ...saved, status: 'running' }, lease), LeaseLostError);
    assert.ok(lock.lost.aborted, 'the lock knows it is lost');
    await assert.rejects(store.save({ ...saved, status: 'running' }), StateDirectoryLostError);
    await assert.rejects(store.claim(recordFor()), StateDirectoryLostError);
    assert.equal(await store.acquireLease('data/ingest/production', 'worker-a', 60_000), undefined, 'no lease is given out any more');
    await assert.rejects(store.renewLease(lease, 60_000), LeaseLostError);
    const after = (await store.get(record.releaseId))!;
    assert.deepEqual({ revision: after.revision, status: after.status }, { revision: 2, status: 'accepted' }, 'nothing more was written');
    await lock.release();
  });

  it('ends the old holder\'s leases at once: a release in hand sees its lease lost, and its AWS calls\' signal aborted', async () => {
    const store = new MemoryReleaseStore();
    const { record } = await store.claim(recordFor({ target: 'data/ingest/staging' }));
    const storeLost = new AbortController();
    let seen: { leaseLost: boolean; calls: boolean } | undefined;
    const rollout: Rollout = {
      async run(_release: RecordedRelease, context: RolloutContext): Promise<RolloutOutcome> {
        // Lost while the release is under way: the directory is taken over now.
        storeLost.abort(new Error('the state directory lock was taken over'));
        // Waits for the lease to be lost (or gives up after a while, as a release that went on would).
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 10_000);
          context.leaseLost?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
          if (context.leaseLost?.aborted) (clearTimeout(timer), resolve());
        });
        seen = { leaseLost: context.leaseLost?.aborted === true, calls: context.leaseCalls?.signal.aborted === true };
        context.leaseLost?.throwIfAborted();
        return { status: 'succeeded', hosts: 1 };
      },
    };
    const releases = workerConfig('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }).releases;
    // A long lease, renewed without fail: only the store's loss can end it.
    const scheduler = new ReleaseScheduler({ store, rollout, vouch: vouchWithTestKey(releases, (id) => store.get(id)), logger: capturingLogger().logger, workerId: 'w', leaseMs: 600_000, parallel: 1, stopRequested: new AbortController().signal, storeLost: storeLost.signal });
    const result = await scheduler.take(record.releaseId, capturingLogger().logger, 'new');
    assert.deepEqual(seen, { leaseLost: true, calls: true });
    assert.deepEqual(result, { status: 'unfinished', reason: 'the lease was lost' });
    assert.equal((await store.get(record.releaseId))?.status, 'accepted', 'the release was not recorded as ended');
    assert.deepEqual(await scheduler.take(record.releaseId, capturingLogger().logger, 'new'), { status: 'busy', reason: 'this worker is stopping' });
  });
});
