import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ChatMessage } from '../../src/chat/chat.js';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import type { Rollout, RolloutOutcome } from '../../src/rollout/rollout.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import type { RecordedRelease } from '../../src/state/recorded-release.js';
import { newReleaseRecord, type HostRecord, type ReleaseRecord } from '../../src/state/release-record.js';
import { ReleaseScheduler } from '../../src/worker/release-scheduler.js';
import { validRequest } from '../support/requests.js';
import { capturingLogger, REGISTRY, workerConfig } from '../support/worker-fixtures.js';
import { signedRecord, vouchWithTestKey } from '../support/signed-records.js';

// A newer release that would supersede a half-done one (stopped at a safe point with hosts already on
// its image) owns the target only once it has passed preflight: refused, it leaves the half-done one
// to resume, so the target never ends on two images with nothing pending; and chat never says that a
// release which changed hosts "changed nothing".

const releases = workerConfig('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }).releases;
const TARGET = 'data/ingest/staging';

const host = (i: number, progress: HostRecord['progress']): HostRecord => ({ instanceId: `i-${i}`, address: `10.0.0.${i}`, name: `h${i}`, before: { registeredIn: [], live: null }, progress });

/** A release stopped at a safe point with h1 on its image and h2 still to go. */
async function halfDone(store: MemoryReleaseStore): Promise<string> {
  const request = validRequest({ releaseId: randomUUID(), image: `${REGISTRY}/data/ingest:v2`, createdAt: new Date(Date.now() - 60_000).toISOString() }) as unknown as ReleaseRequest;
  const { record } = await store.claim(signedRecord({ request, target: TARGET, deployment: 'staging', now: new Date(Date.now() - 60_000), worker: 'w' }));
  await store.save({ ...record, status: 'interrupted', attempts: 1, hosts: { 'i-1': host(1, 'released'), 'i-2': host(2, 'pending') } });
  return record.releaseId;
}

async function newer(store: MemoryReleaseStore, tag: string): Promise<string> {
  const request = validRequest({ releaseId: randomUUID(), image: `${REGISTRY}/data/ingest:${tag}`, createdAt: new Date().toISOString() }) as unknown as ReleaseRequest;
  const { record } = await store.claim(signedRecord({ request, target: TARGET, deployment: 'staging', now: new Date(), worker: 'w' }));
  return record.releaseId;
}

/** v3 fails its preflight (refused, nothing changed); every other release runs to its end. */
class PreflightRollout implements Rollout {
  readonly ran: string[] = [];
  async run(release: RecordedRelease): Promise<RolloutOutcome> {
    const tag = release.record.request.image.split(':').pop()!;
    this.ran.push(tag);
    const end = (status: ReleaseRecord['status'], reason?: string) =>
      release.update((draft) => {
        draft.status = status;
        draft.finishedAt = new Date().toISOString();
        if (reason) draft.reason = reason;
      });
    if (tag === 'v3') {
      await end('refused', 'preflight failed, nothing was changed: h2: pull: manifest unknown');
      return { status: 'refused', reason: 'preflight failed, nothing was changed: h2: pull: manifest unknown' };
    }
    await release.update((draft) => void (draft.status = 'running'));
    await end('succeeded');
    return { status: 'succeeded', hosts: 2 };
  }
}

/** Takes up every unfinished release, as the worker's sweeps do, until nothing is left or nothing moves. */
async function sweepUntilSettled(scheduler: ReleaseScheduler, store: MemoryReleaseStore): Promise<void> {
  for (let round = 0; round < 6; round += 1) {
    const unfinished = await store.unfinished();
    if (unfinished.length === 0) return;
    for (const record of unfinished) await scheduler.take(record.releaseId, capturingLogger().logger, 'takeover');
  }
}

function setUp() {
  const store = new MemoryReleaseStore();
  const rollout = new PreflightRollout();
  const posted: ChatMessage[] = [];
  const scheduler = new ReleaseScheduler({ store, rollout, vouch: vouchWithTestKey(releases, (id) => store.get(id)), logger: capturingLogger().logger, workerId: 'w', leaseMs: 30_000, parallel: 4, stopRequested: new AbortController().signal, chat: { post: (m) => void posted.push(m), flush: async () => undefined } });
  return { store, rollout, posted, scheduler };
}

describe('a newer release and a half-done one of its target', () => {
  it('resumes the half-done release when the newer one is refused at preflight: the target ends on one image', async () => {
    const { store, rollout, posted, scheduler } = setUp();
    const interrupted = await halfDone(store);
    const refused = await newer(store, 'v3');
    await sweepUntilSettled(scheduler, store);
    assert.equal((await store.get(refused))?.status, 'refused');
    assert.equal((await store.get(interrupted))?.status, 'succeeded', 'the half-done release was carried to its end');
    assert.deepEqual(rollout.ran, ['v3', 'v2'], 'the newer was tried first, then the half-done one resumed');
    assert.ok(!posted.some((m) => /changed nothing/.test(m.text)), posted.map((m) => m.text).join('\n'));
  });

  it('supersedes the half-done release once the newer one has passed preflight, and says which of its hosts it had changed', async () => {
    const { store, rollout, posted, scheduler } = setUp();
    const interrupted = await halfDone(store);
    const started = await newer(store, 'v4');
    await sweepUntilSettled(scheduler, store);
    assert.equal((await store.get(started))?.status, 'succeeded');
    assert.equal((await store.get(interrupted))?.status, 'superseded');
    assert.deepEqual(rollout.ran, ['v4'], 'the half-done release never ran after the newer one');
    const said = posted.find((m) => /superseded/.test(m.text));
    assert.ok(said, posted.map((m) => m.text).join('\n'));
    assert.doesNotMatch(said.text, /changed nothing/);
    assert.match(said.text, /h1/);
  });
});
