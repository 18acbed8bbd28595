import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ChatMessage } from '../../src/chat/chat.js';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import type { Rollout, RolloutContext, RolloutOutcome } from '../../src/rollout/rollout.js';
import type { TargetControl } from '../../src/state/control.js';
import { FileReleaseStore } from '../../src/state/file-release-store.js';
import type { RecordedRelease } from '../../src/state/recorded-release.js';
import { newReleaseRecord, whereItStands } from '../../src/state/release-record.js';
import { ReleaseScheduler } from '../../src/worker/release-scheduler.js';
import { repairUnfinished } from '../../src/worker/repair.js';
import { validRequest } from '../support/requests.js';
import { capturingLogger, eventually, REGISTRY, workerConfig } from '../support/worker-fixtures.js';
import { signedRecord, vouchWithTestKey } from '../support/signed-records.js';

// The lock on a target (`harbormaster lock`) as the worker meets it, with the file store an operator's
// command writes beside the worker: a release that has not started waits (never refused, never
// expiring), says once who locked the target and why, and is taken up by a sweep once the lock is lifted.

const releases = workerConfig('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }).releases;
const TARGET = 'data/ingest/staging';

/** A rollout that records what it ran and what it read of the target's control. */
class ControlReadingRollout implements Rollout {
  readonly ran: string[] = [];
  readonly controls: TargetControl[] = [];
  async run(release: RecordedRelease, context: RolloutContext): Promise<RolloutOutcome> {
    this.ran.push(release.releaseId);
    if (context.readControl) this.controls.push(await context.readControl());
    return { status: 'succeeded', hosts: 0 };
  }
}

function setUp() {
  const directory = mkdtempSync(join(tmpdir(), 'harbormaster-lock-'));
  const store = new FileReleaseStore(directory);
  const operator = new FileReleaseStore(directory, { readOnly: true });
  const rollout = new ControlReadingRollout();
  const posted: ChatMessage[] = [];
  const scheduler = new ReleaseScheduler({ store, rollout, vouch: vouchWithTestKey(releases, (id) => store.get(id)), logger: capturingLogger().logger, workerId: 'w', leaseMs: 30_000, parallel: 4, stopRequested: new AbortController().signal, chat: { post: (m) => posted.push(m), flush: async () => {} } });
  return { store, operator, rollout, posted, scheduler };
}

async function accepted(store: FileReleaseStore, releaseId = randomUUID()) {
  const request = validRequest({ releaseId, image: `${REGISTRY}/data/ingest:v2` }) as unknown as ReleaseRequest;
  await store.claim(signedRecord({ request, target: TARGET, deployment: 'staging', now: new Date(), worker: 'w' }));
  return releaseId;
}

const lockFor = (ms: number, admits?: string) => ({ lock: { by: 'alice', at: new Date().toISOString(), reason: 'incident 42', until: new Date(Date.now() + ms).toISOString(), ...(admits ? { admits } : {}) } });

describe('a locked target', () => {
  it('a stop of a release held by the lock ends it at once, stopped, without waiting for the lock to lift', async () => {
    const { store, operator, rollout, posted, scheduler } = setUp();
    const releaseId = await accepted(store);
    await operator.updateControl(TARGET, () => lockFor(3_600_000));
    const { logger } = capturingLogger();
    assert.equal((await scheduler.take(releaseId, logger, 'new')).status, 'busy', 'held by the lock');
    await operator.updateControl(TARGET, (current) => ({ ...current, stops: [{ by: 'bob', at: new Date().toISOString(), releaseId, rollback: false }] }));
    const taken = await scheduler.take(releaseId, logger, 'takeover');
    assert.equal(taken.status === 'ended' && taken.outcome.status, 'stopped');
    const ended = (await store.get(releaseId))!;
    assert.deepEqual([ended.status, ended.stop?.by, ended.held], ['stopped', 'bob', undefined]);
    assert.deepEqual(rollout.ran, [], 'nothing ran');
    assert.ok(posted.some((m) => /stopped/i.test(m.text) && m.text.includes('bob')), 'chat says who stopped it');
  });

  it('holds back a release that has not started, records and says once who locked it and why, and lets a sweep take it up after unlock', async () => {
    const { store, operator, rollout, posted, scheduler } = setUp();
    const releaseId = await accepted(store);
    await operator.updateControl(TARGET, () => lockFor(3_600_000));
    const { logger } = capturingLogger();

    const first = await scheduler.take(releaseId, logger, 'new');
    assert.equal(first.status, 'busy');
    assert.match((first as { reason: string }).reason, /data\/ingest\/staging is locked by alice until .*: incident 42/);
    await scheduler.take(releaseId, logger, 'takeover');
    assert.deepEqual(rollout.ran, [], 'it did not start');
    const waiting = (await store.get(releaseId))!;
    assert.equal(waiting.status, 'accepted', 'still unfinished: never refused');
    assert.equal(waiting.held?.by, 'alice');
    assert.match(whereItStands(waiting), /waiting: data\/ingest\/staging is locked by alice until .* \(incident 42\)/);
    const held = posted.filter((m) => m.event?.kind === 'held');
    assert.equal(held.length, 1, 'chat said it once, not at every take');
    assert.match(held[0]!.text, /locked by alice .*incident 42/);

    await operator.updateControl(TARGET, () => ({}));
    const started = new Set<Promise<void>>();
    await repairUnfinished({ store, scheduler, logger, started }, 'sweep');
    await eventually('the sweep to carry it', async () => (await store.get(releaseId))?.status === 'succeeded', 5_000);
    await Promise.all(started);
    assert.deepEqual(rollout.ran, [releaseId]);
    const done = (await store.get(releaseId))!;
    assert.equal(done.held, undefined, 'no longer said to wait');
  });

  it('lets through the release the lock admits (the rollback that set it)', async () => {
    const { store, operator, rollout, scheduler } = setUp();
    const releaseId = await accepted(store);
    await operator.updateControl(TARGET, () => lockFor(3_600_000, releaseId));
    const taken = await scheduler.take(releaseId, capturingLogger().logger, 'new');
    assert.equal(taken.status, 'ended');
    assert.deepEqual(rollout.ran, [releaseId]);
  });

  it('does not let a newer request the lock holds back supersede the release it admits: that one runs, the newer waits', async () => {
    const { store, operator, rollout, scheduler } = setUp();
    const admitted = await accepted(store);
    const request = validRequest({ releaseId: randomUUID(), image: `${REGISTRY}/data/ingest:v3`, createdAt: new Date(Date.now() + 1_000).toISOString() }) as unknown as ReleaseRequest;
    const newer = (await store.claim(signedRecord({ request, target: TARGET, deployment: 'staging', now: new Date(), worker: 'w' }))).record.releaseId;
    await operator.updateControl(TARGET, () => lockFor(3_600_000, admitted));
    const { logger } = capturingLogger();
    assert.equal((await scheduler.take(newer, logger, 'new')).status, 'busy');
    const taken = await scheduler.take(admitted, logger, 'takeover');
    assert.equal(taken.status === 'ended' && taken.outcome.status, 'succeeded');
    assert.deepEqual(rollout.ran, [admitted]);
  });

  it('holds nothing once the lock has run out', async () => {
    const { store, operator, rollout, scheduler } = setUp();
    const releaseId = await accepted(store);
    await operator.updateControl(TARGET, () => lockFor(-1_000));
    assert.equal((await scheduler.take(releaseId, capturingLogger().logger, 'new')).status, 'ended');
    assert.deepEqual(rollout.ran, [releaseId]);
  });

  it('does not hold a release already under way, and hands the rollout a fresh read of the control', async () => {
    const { store, operator, rollout, scheduler } = setUp();
    const releaseId = await accepted(store);
    const record = (await store.get(releaseId))!;
    // Under way: its Auto Scaling suspension is recorded.
    await store.save({ ...record, status: 'running', attempts: 1, scaling: { 'asg-staging': { before: [], suspend: ['Launch'], phase: 'suspended' } } });
    await operator.updateControl(TARGET, () => lockFor(3_600_000));
    assert.equal((await scheduler.take(releaseId, capturingLogger().logger, 'takeover')).status, 'ended');
    assert.deepEqual(rollout.ran, [releaseId]);
    assert.equal(rollout.controls[0]?.lock?.by, 'alice', 'the rollout read the control the operator wrote');
  });
});
