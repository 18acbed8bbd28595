import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { newReleaseRecord, type ReleaseRecord } from '../../src/state/release-record.js';
import { LeaseLostError, StaleRecordError, type ReleaseStore } from '../../src/state/release-store.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import { validRequest } from '../support/requests.js';
import { signedRecord } from '../support/signed-records.js';

// What every release store promises, run against each store (files, memory, DynamoDB in moto):
// claims are exclusive, writes are conditional on the revision, and records come back as written.

export function recordFor(overrides: { acceptedAt?: Date; releaseId?: string; target?: string; createdAt?: Date } = {}): ReleaseRecord {
  const request = validRequest({ releaseId: overrides.releaseId ?? randomUUID(), ...(overrides.createdAt ? { createdAt: overrides.createdAt.toISOString() } : {}) }) as unknown as ReleaseRequest;
  return signedRecord({ request, target: overrides.target ?? 'data/ingest/staging', deployment: 'staging', now: overrides.acceptedAt ?? new Date(), worker: 'worker-a' });
}

const uniqueTarget = () => `data/ingest/t-${randomUUID().slice(0, 8)}`;

/** A record as a release in full swing writes it: plan, groups, alarms, hosts with intents. */
export function busyRecord(base: ReleaseRecord): ReleaseRecord {
  return {
    ...base,
    status: 'running',
    attempts: 1,
    scaling: { 'data-ingest-staging': { before: ['Launch'], suspend: ['HealthCheck', 'Terminate'], phase: 'suspended' } },
    alarms: { mode: 'mute-rule', names: ['a-5xx', 'a-latency'], disable: [], rule: { name: `harbormaster-${base.releaseId}`, start: '2026-11-29T10:00:00.000Z', until: '2026-11-29T10:10:00.000Z' }, phase: 'muted' },
    hosts: {
      'i-1': { instanceId: 'i-1', address: '10.0.0.1', name: 'h1', before: { registeredIn: ['classic:web', 'target-group:arn:tg'], live: { id: 'c0ffee', name: 'ingest', image: 'reg/app:v1' } }, progress: 'released', started: 'beef' },
      'i-2': { instanceId: 'i-2', address: '10.0.0.2', before: { registeredIn: [], live: null }, progress: 'in-progress', intent: { action: 'stop-old', at: '2026-11-29T10:01:00.000Z' }, deregisteredAt: '2026-11-29T10:00:59.000Z' },
    },
    pending: ['resume data-ingest-staging'],
  };
}

const withoutVolatile = (record: ReleaseRecord) => ({ ...record, revision: 0, updatedAt: '' });

export function releaseStoreContract(name: string, makeStore: () => Promise<ReleaseStore> | ReleaseStore): void {
  describe(`release store contract: ${name}`, () => {
    it('claims a new release once: the first claim creates revision 1, a second returns what is stored and changes nothing', async () => {
      const store = await makeStore();
      const record = recordFor();
      const first = await store.claim(record);
      assert.equal(first.claimed, true);
      assert.equal(first.record.revision, 1);
      const again = await store.claim({ ...record, target: 'other/target/x', keyId: 'other' });
      assert.equal(again.claimed, false);
      assert.equal(again.record.target, 'data/ingest/staging');
      assert.equal(again.record.keyId, 'ci-test');
      assert.deepEqual(await store.get(record.releaseId), first.record);
    });

    it('lets exactly one of twenty racing claims of one release id win', async () => {
      const store = await makeStore();
      const record = recordFor();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.claim({ ...record, keyId: `k${i}` })));
      assert.equal(results.filter((r) => r.claimed).length, 1);
      const winner = results.find((r) => r.claimed)!.record.keyId;
      assert.ok(results.every((r) => r.record.keyId === winner), 'every loser sees the winner');
    });

    it('knows nothing of a release it never claimed', async () => {
      const store = await makeStore();
      assert.equal(await store.get(randomUUID()), undefined);
    });

    it('stores a busy record exactly as written, one revision up', async () => {
      const store = await makeStore();
      const { record } = await store.claim(recordFor());
      const written = busyRecord(record);
      const stored = await store.save(written);
      assert.equal(stored.revision, 2);
      assert.deepEqual(withoutVolatile((await store.get(record.releaseId))!), withoutVolatile(written));
    });

    it('refuses a write from a stale revision and keeps what was stored', async () => {
      const store = await makeStore();
      const { record } = await store.claim(recordFor());
      await store.save({ ...record, status: 'running' });
      await assert.rejects(store.save({ ...record, status: 'succeeded' }), (error: unknown) => {
        assert.ok(error instanceof StaleRecordError);
        assert.equal(error.expected, 1);
        assert.equal(error.found, 2);
        return true;
      });
      assert.equal((await store.get(record.releaseId))!.status, 'running');
    });

    it('lets exactly one of two writers working from the same revision win', async () => {
      const store = await makeStore();
      const { record } = await store.claim(recordFor());
      const results = await Promise.allSettled([store.save({ ...record, reason: 'a' }), store.save({ ...record, reason: 'b' })]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      assert.ok(loser.reason instanceof StaleRecordError);
      const winner = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<ReleaseRecord>).value;
      assert.equal((await store.get(record.releaseId))!.reason, winner.reason);
    });

    it('refuses to save a release that was never claimed', async () => {
      const store = await makeStore();
      await assert.rejects(store.save({ ...recordFor(), revision: 1 }), StaleRecordError);
    });

    it('lists unfinished releases oldest first, and no finished one', async () => {
      const store = await makeStore();
      const made = async (minutesAgo: number, status: ReleaseRecord['status']) => {
        const { record } = await store.claim(recordFor({ acceptedAt: new Date(Date.now() - minutesAgo * 60_000) }));
        if (status !== 'accepted') await store.save({ ...record, status });
        return record.releaseId;
      };
      const running = await made(5, 'running');
      const accepted = await made(10, 'accepted');
      const interrupted = await made(1, 'interrupted');
      for (const status of ['succeeded', 'rolled-back', 'failed', 'refused', 'superseded'] as const) await made(3, status);
      const ids = (await store.unfinished()).map((r) => r.releaseId);
      const mine = ids.filter((id) => [running, accepted, interrupted].includes(id));
      assert.deepEqual(mine, [accepted, running, interrupted]);
      assert.equal(ids.length, mine.length, 'finished releases are not listed');
    });

    it('lists the releases of one target with their signed creation time and status, and no other target\'s', async () => {
      const store = await makeStore();
      const target = uniqueTarget();
      const older = await store.claim(recordFor({ target, createdAt: new Date(Date.now() - 60_000) }));
      const newer = await store.claim(recordFor({ target }));
      await store.save({ ...older.record, status: 'succeeded' });
      await store.claim(recordFor({ target: uniqueTarget() }));
      const listed = (await store.releasesOf(target)).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
      assert.deepEqual(listed, [
        { releaseId: older.record.releaseId, createdAt: older.record.request.createdAt, status: 'succeeded' },
        { releaseId: newer.record.releaseId, createdAt: newer.record.request.createdAt, status: 'accepted' },
      ]);
    });

    it('gives a target\'s lease to one owner at a time: others wait, the holder renews with the same token', async () => {
      const store = await makeStore();
      const target = uniqueTarget();
      const a = await store.acquireLease(target, 'worker-a', 5_000);
      assert.ok(a);
      assert.equal(a.owner, 'worker-a');
      assert.ok(a.expiresAt > Date.now());
      assert.equal(await store.acquireLease(target, 'worker-b', 5_000), undefined, 'held by a');
      const again = await store.acquireLease(target, 'worker-a', 5_000);
      assert.equal(again?.token, a.token, 'the holder taking it again keeps its token');
      const renewed = await store.renewLease(a, 10_000);
      assert.equal(renewed.token, a.token);
      assert.ok(renewed.expiresAt >= a.expiresAt);
      assert.ok(await store.acquireLease(uniqueTarget(), 'worker-b', 5_000), 'another target is free');
    });

    it('lets exactly one of ten racing workers take a free lease', async () => {
      const store = await makeStore();
      const target = uniqueTarget();
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.acquireLease(target, `worker-${i}`, 5_000)));
      assert.equal(results.filter(Boolean).length, 1);
    });

    it('hands a lease its holder stopped renewing to another worker with a new token, and fences the old holder out of renewing and writing', async () => {
      const store = await makeStore();
      const target = uniqueTarget();
      const { record } = await store.claim(recordFor({ target }));
      const a = (await store.acquireLease(target, 'worker-a', 300))!;
      const saved = await store.save({ ...record, status: 'running' }, a);
      // Worker b looks while a holds it, then again a lease period later, with nothing renewed meanwhile.
      assert.equal(await store.acquireLease(target, 'worker-b', 5_000), undefined, 'held by a');
      await sleep(450);
      const b = await store.acquireLease(target, 'worker-b', 5_000);
      assert.ok(b, 'the lease nobody renewed is free to take');
      assert.ok(b.token > a.token, 'a new taking bumps the token');
      await assert.rejects(store.renewLease(a, 5_000), LeaseLostError);
      await assert.rejects(store.save({ ...saved, reason: 'from the old holder' }, a), LeaseLostError);
      assert.equal((await store.get(record.releaseId))!.reason, undefined, 'the fenced write changed nothing');
      const byB = await store.save({ ...saved, reason: 'from the new holder' }, b);
      assert.equal(byB.reason, 'from the new holder');
    });

    it('refuses a write under a lease that expired, even when nobody took it yet', async () => {
      const store = await makeStore();
      const target = uniqueTarget();
      const { record } = await store.claim(recordFor({ target }));
      const a = (await store.acquireLease(target, 'worker-a', 200))!;
      await sleep(350);
      await assert.rejects(store.save({ ...record, status: 'running' }, a), LeaseLostError);
    });

    it('frees a released lease at once for the next worker', async () => {
      const store = await makeStore();
      const target = uniqueTarget();
      const a = (await store.acquireLease(target, 'worker-a', 60_000))!;
      await store.releaseLease(a);
      const b = await store.acquireLease(target, 'worker-b', 60_000);
      assert.ok(b);
      assert.ok(b.token > a.token);
      await store.releaseLease(a); // a stale release does not free b's lease
      assert.equal(await store.acquireLease(target, 'worker-c', 60_000), undefined);
    });

    it('fences a released lease: its former holder can neither renew it nor write under it', async () => {
      const store = await makeStore();
      const target = uniqueTarget();
      const { record } = await store.claim(recordFor({ target }));
      const a = (await store.acquireLease(target, 'worker-a', 60_000))!;
      await store.releaseLease(a);
      await assert.rejects(store.renewLease(a, 60_000), LeaseLostError);
      await assert.rejects(store.save({ ...record, status: 'running' }, a), LeaseLostError);
      assert.equal((await store.get(record.releaseId))!.revision, 1, 'the fenced write changed nothing');
    });

    it('gives its own expired lease back to the same owner with a new token, so writes under the old one stay fenced', async () => {
      const store = await makeStore();
      const target = uniqueTarget();
      const { record } = await store.claim(recordFor({ target }));
      const old = (await store.acquireLease(target, 'worker-a', 200))!;
      await sleep(350);
      const again = (await store.acquireLease(target, 'worker-a', 60_000))!;
      assert.ok(again.token > old.token, 'taking an expired lease is a new taking, even by the same owner');
      await assert.rejects(store.save({ ...record, status: 'running' }, old), LeaseLostError);
      await assert.rejects(store.renewLease(old, 60_000), LeaseLostError);
      const saved = await store.save({ ...record, status: 'running' }, again);
      assert.equal(saved.revision, 2);
    });
  });
}

/**
 * What every store promises of a target's control (control.ts), given two store instances on the
 * same state (two processes: the ops command and the worker; or two workers on one table).
 */
export function controlContract(name: string, makePair: () => Promise<[ReleaseStore, ReleaseStore]>): void {
  describe(`target control contract: ${name}`, () => {
    const lock = { by: 'alice', at: '2026-12-01T10:00:00.000Z', reason: 'incident 42', until: '2026-12-01T14:00:00.000Z' };

    it('reads revision 0 and nothing asked for a target never written', async () => {
      const [store] = await makePair();
      const target = uniqueTarget();
      assert.deepEqual(await store.control(target), { target, revision: 0 });
    });

    it('writes a change as the next revision, which the other instance reads back', async () => {
      const [a, b] = await makePair();
      const target = uniqueTarget();
      const written = await a.updateControl(target, () => ({ lock }));
      assert.deepEqual(written, { target, revision: 1, lock });
      assert.deepEqual(await b.control(target), written);
      const stop = { by: 'bob', at: '2026-12-01T10:01:00.000Z', releaseId: randomUUID(), rollback: true };
      const second = await b.updateControl(target, (current) => ({ ...current, stops: [stop] }));
      assert.deepEqual(await a.control(target), { target, revision: 2, lock, stops: [stop] });
      assert.equal(second.revision, 2);
    });

    it('writes nothing when the change says there is nothing to change', async () => {
      const [a] = await makePair();
      const target = uniqueTarget();
      await a.updateControl(target, () => ({ lock }));
      const same = await a.updateControl(target, () => undefined);
      assert.equal(same.revision, 1);
      assert.equal((await a.control(target)).revision, 1);
    });

    it('loses no update when two instances change the same target at once: each change is applied to what the other wrote', async () => {
      const [a, b] = await makePair();
      const target = uniqueTarget();
      const ids = Array.from({ length: 8 }, () => randomUUID());
      await Promise.all(
        ids.map((releaseId, i) => (i % 2 === 0 ? a : b).updateControl(target, (current) => ({ ...current, promotions: [...(current.promotions ?? []), { by: `op${i}`, at: lock.at, releaseId }] }))),
      );
      const stored = await a.control(target);
      assert.equal(stored.revision, ids.length);
      assert.deepEqual(new Set(stored.promotions?.map((p) => p.releaseId)), new Set(ids));
    });

    it('is not fenced by a lease: an operator writes while a worker holds the target', async () => {
      const [a, b] = await makePair();
      const target = uniqueTarget();
      assert.ok(await a.acquireLease(target, 'worker-a', 60_000));
      const written = await b.updateControl(target, () => ({ lock }));
      assert.equal(written.revision, 1);
    });

    it('keeps the control of one target apart from another\'s', async () => {
      const [a] = await makePair();
      const one = uniqueTarget();
      const other = uniqueTarget();
      await a.updateControl(one, () => ({ lock }));
      assert.deepEqual(await a.control(other), { target: other, revision: 0 });
    });
  });
}
