import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { newReleaseRecord, type ReleaseStatus } from '../../src/state/release-record.js';
import type { Rollout, RolloutOutcome } from '../../src/rollout/rollout.js';
import type { RecordedRelease } from '../../src/state/recorded-release.js';
import { ReleaseScheduler } from '../../src/worker/release-scheduler.js';
import { repairUnfinished } from '../../src/worker/repair.js';
import { RecordingRollout } from '../support/recording-rollout.js';
import { validRequest } from '../support/requests.js';
import { capturingLogger, REGISTRY, workerConfig } from '../support/worker-fixtures.js';
import { signedRecord, vouchWithTestKey } from '../support/signed-records.js';

// The scheduler's rules where a crash leaves them something to decide: a newer request never starts
// on top of an older release that is still half-way, and an older release paused at a safe point
// gives way to a newer one.

const releases = workerConfig('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }).releases;

async function recorded(store: MemoryReleaseStore, tag: string, createdAt: Date, status: ReleaseStatus, deployment = 'staging') {
  const request = validRequest({ releaseId: randomUUID(), target: { stack: 'data', release: 'ingest', deployment }, image: `${REGISTRY}/data/ingest:${tag}`, createdAt: createdAt.toISOString() }) as unknown as ReleaseRequest;
  const { record } = await store.claim(signedRecord({ request, target: `data/ingest/${deployment}`, deployment, now: createdAt, worker: 'dead-worker' }));
  // A running one is under way: its Auto Scaling suspension is recorded.
  const underWay = status === 'running' ? { scaling: { [`asg-${deployment}`]: { before: [], suspend: ['Launch'], phase: 'suspended' as const } } } : {};
  if (status !== 'accepted') await store.save({ ...record, status, attempts: 1, ...underWay });
  return record.releaseId;
}

function scheduler(store: MemoryReleaseStore, rollout: Rollout, onTargetFree?: (target: string) => void) {
  return new ReleaseScheduler({ store, rollout, vouch: vouchWithTestKey(releases, (id) => store.get(id)), logger: capturingLogger().logger, workerId: 'w', leaseMs: 30_000, parallel: 4, stopRequested: new AbortController().signal, ...(onTargetFree ? { onTargetFree } : {}) });
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

async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let tries = 0; !(await condition()); tries += 1) {
    if (tries > 200) throw new Error('the condition never held');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A rollout whose releases of one deployment run until the test lets them end. */
class GatedRollout implements Rollout {
  readonly started: string[] = [];
  private open!: () => void;
  readonly gate = new Promise<void>((resolve) => (this.open = resolve));
  constructor(private readonly heldDeployment: string) {}
  async run(release: RecordedRelease): Promise<RolloutOutcome> {
    this.started.push(release.record.deployment);
    if (release.record.deployment === this.heldDeployment) await this.gate;
    await release.update((draft) => {
      draft.status = 'succeeded';
      draft.finishedAt = new Date().toISOString();
    });
    return { status: 'succeeded', hosts: 0 };
  }
  letGo() {
    this.open();
  }
}

describe('the release scheduler and the sweeps', () => {
  it('does not say a target is free when another worker holds it, so a busy answer sets off no further sweep', async () => {
    const store = new MemoryReleaseStore();
    const waiting = await recorded(store, 'v2', new Date(), 'accepted');
    assert.ok(await store.acquireLease('data/ingest/staging', 'other-worker', 30_000), 'the other worker holds the target');
    const freed: string[] = [];
    const scheduling = scheduler(store, new RecordingRollout(), (target) => freed.push(target));
    const taken = await scheduling.take(waiting, capturingLogger().logger, 'takeover');
    assert.equal(taken.status, 'busy');
    assert.deepEqual(freed, [], 'nothing freed up on this worker');

    const own = await recorded(store, 'v1', new Date(), 'accepted', 'integration');
    assert.equal((await scheduling.take(own, capturingLogger().logger, 'takeover')).status, 'ended');
    assert.deepEqual(freed, ['data/ingest/integration'], 'a target this worker held and gave up is said free');
  });

  it('a sweep starts a long release and returns at once, so the next sweep takes up a release of another target while the long one runs', async () => {
    const store = new MemoryReleaseStore();
    const rollout = new GatedRollout('integration');
    const scheduling = scheduler(store, rollout);
    const repair = { store, scheduler: scheduling, logger: capturingLogger().logger, started: new Set<Promise<void>>() };
    const long = await recorded(store, 'v1', new Date(), 'accepted', 'integration');

    try {
      await repairUnfinished(repair, 'sweep');
      assert.equal(repair.started.size, 1, 'the sweep returned while the long release runs, and keeps it for the worker to wait on');
      await until(() => rollout.started.includes('integration'));

      const personal = await recorded(store, 'v2', new Date(), 'accepted', 'staging');
      await repairUnfinished(repair, 'sweep');
      await until(() => rollout.started.includes('staging'));
      await until(async () => (await store.get(personal))?.status === 'succeeded');
      assert.notEqual((await store.get(long))?.status, 'succeeded', 'the other target was released while the long one still runs');
    } finally {
      rollout.letGo();
      while (repair.started.size > 0) await Promise.all(repair.started);
    }
    assert.equal((await store.get(long))?.status, 'succeeded');
  });
});
