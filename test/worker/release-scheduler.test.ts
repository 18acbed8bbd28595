import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { newReleaseRecord, type ReleaseStatus } from '../../src/state/release-record.js';
import { ReleaseScheduler } from '../../src/worker/release-scheduler.js';
import { RecordingRollout } from '../support/recording-rollout.js';
import { validRequest } from '../support/requests.js';
import { capturingLogger, REGISTRY, workerConfig } from '../support/worker-fixtures.js';

// The scheduler's rules where a crash leaves them something to decide: a newer request never starts
// on top of an older release that is still half-way, and an older release paused at a safe point
// gives way to a newer one.

const releases = workerConfig('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }).releases;

async function recorded(store: MemoryReleaseStore, tag: string, createdAt: Date, status: ReleaseStatus) {
  const request = validRequest({ releaseId: randomUUID(), image: `${REGISTRY}/data/ingest:${tag}`, createdAt: createdAt.toISOString() }) as unknown as ReleaseRequest;
  const { record } = await store.claim(newReleaseRecord({ request, keyId: 'ci-test', target: 'data/ingest/staging', deployment: 'staging', now: createdAt, worker: 'dead-worker' }));
  if (status !== 'accepted') await store.save({ ...record, status, attempts: 1 });
  return record.releaseId;
}

function scheduler(store: MemoryReleaseStore, rollout: RecordingRollout) {
  return new ReleaseScheduler({ store, rollout, releases, logger: capturingLogger().logger, workerId: 'w', leaseMs: 30_000, parallel: 4, stopRequested: new AbortController().signal });
}

describe('the release scheduler after a crash', () => {
  it('keeps a newer request waiting while an older release of its target is still half-way, then runs the older to its end, then the newer', async () => {
    const store = new MemoryReleaseStore();
    const rollout = new RecordingRollout();
    const older = await recorded(store, 'v1', new Date(Date.now() - 60_000), 'running');
    const newer = await recorded(store, 'v2', new Date(), 'accepted');
    const scheduling = scheduler(store, rollout);
    const { logger } = capturingLogger();

    const first = await scheduling.take(newer, logger, 'takeover');
    assert.equal(first.status, 'busy');
    assert.match((first as { reason: string }).reason, new RegExp(`release ${older} of data/ingest/staging is still running: it goes first`));
    assert.equal(rollout.releases.length, 0, 'the newer one did not start on top of the older');

    assert.equal((await scheduling.take(older, logger, 'takeover')).status, 'ended');
    assert.equal((await scheduling.take(newer, logger, 'takeover')).status, 'ended');
    assert.deepEqual(rollout.releases.map((r) => r.request.image.split(':').pop()), ['v1', 'v2'], 'the older first, the newer last: the target ends on the newer');
  });

  it('supersedes an older release paused at a safe point when a newer one of its target waits', async () => {
    const store = new MemoryReleaseStore();
    const rollout = new RecordingRollout();
    const older = await recorded(store, 'v1', new Date(Date.now() - 60_000), 'interrupted');
    const newer = await recorded(store, 'v2', new Date(), 'accepted');
    const scheduling = scheduler(store, rollout);
    const { logger } = capturingLogger();
    const taken = await scheduling.take(older, logger, 'repair');
    assert.deepEqual(taken.status === 'ended' && taken.outcome.status, 'superseded');
    assert.equal((await store.get(older))?.status, 'superseded');
    assert.equal((await scheduling.take(newer, logger, 'repair')).status, 'ended');
    assert.deepEqual(rollout.releases.map((r) => r.request.image.split(':').pop()), ['v2']);
  });
});
