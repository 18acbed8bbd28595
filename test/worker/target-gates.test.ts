import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import type { TargetControl } from '../../src/state/control.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import type { HostRecord, ReleaseRecord, ReleaseStatus } from '../../src/state/release-record.js';
import { newHostsRecord } from '../../src/worker/new-hosts.js';
import { ReleaseScheduler } from '../../src/worker/release-scheduler.js';
import { gateRelease, type GateInput, type OtherRelease } from '../../src/worker/target-gates.js';
import { RecordingRollout } from '../support/recording-rollout.js';
import { validRequest } from '../support/requests.js';
import { signedRecord, vouchWithTestKey } from '../support/signed-records.js';
import { capturingLogger, REGISTRY, workerConfig } from '../support/worker-fixtures.js';

// The gate before a release starts, one row per entry of its precedence (target-gates.ts).

const TARGET = 'data/ingest/staging';
const NOW = new Date('2026-12-08T12:00:00Z');
const at = (minutes: number) => new Date(NOW.getTime() + minutes * 60_000).toISOString();

function record(status: ReleaseStatus, createdAt: string, changed = false): ReleaseRecord {
  const request = validRequest({ createdAt }) as unknown as ReleaseRequest;
  const base = signedRecord({ request, target: TARGET, deployment: 'staging', now: new Date(createdAt), worker: 'w' });
  const host: HostRecord = { instanceId: 'i-1', address: '10.0.0.1', before: { registeredIn: [], live: null }, progress: changed ? 'released' : 'pending' };
  return { ...base, status, hosts: { 'i-1': host } };
}
const other = (status: ReleaseStatus, createdAt: string, newHosts = false): OtherRelease => ({ releaseId: randomUUID(), createdAt, status, ...(newHosts ? { newHosts } : {}) });
const control = (mine: ReleaseRecord, parts: { stop?: boolean; lock?: boolean; admits?: boolean }): TargetControl => ({
  target: TARGET,
  revision: 1,
  ...(parts.stop ? { stops: [{ by: 'bob', at: at(0), releaseId: mine.releaseId, rollback: false }] } : {}),
  ...(parts.lock ? { lock: { by: 'carol', at: at(0), reason: 'incident', until: at(60), ...(parts.admits ? { admits: mine.releaseId } : {}) } } : {}),
});

type Row = [string, () => GateInput, string];
const rows: Row[] = [
  ['a running release that changed hosts goes (the rollout reads stops and locks itself)', () => ({ record: record('running', at(-5), true), others: [other('accepted', at(1))], control: undefined, now: NOW }), 'go'],
  ['a running record that changed nothing (or was set back to running by hand) is gated as not started: a newer one supersedes it', () => ({ record: record('running', at(-5)), others: [other('succeeded', at(1))], control: undefined, now: NOW }), 'supersede'],
  ['a running record that changed nothing waits for a lock', () => {
    const mine = record('running', at(-5));
    return { record: mine, others: [], control: control(mine, { lock: true }), now: NOW };
  }, 'hold'],
  ['a running record whose Auto Scaling suspension was recorded has started: it goes', () => ({ record: { ...record('running', at(-5)), scaling: { asg: { before: [], suspend: ['Launch'], phase: 'suspending' } } }, others: [other('succeeded', at(1))], control: undefined, now: NOW }), 'go'],
  ['1. an operator stopped a release that changed nothing: stop', () => {
    const mine = record('accepted', at(-5));
    return { record: mine, others: [], control: control(mine, { stop: true }), now: NOW };
  }, 'stop'],
  ['1. stop a release held by a lock: stop, not hold', () => {
    const mine = record('accepted', at(-5));
    return { record: mine, others: [], control: control(mine, { stop: true, lock: true }), now: NOW };
  }, 'stop'],
  ['1. stop a release that a newer one would supersede: stop (it ends as the operator asked)', () => {
    const mine = record('accepted', at(-5));
    return { record: mine, others: [other('accepted', at(1))], control: control(mine, { stop: true }), now: NOW };
  }, 'stop'],
  ['1. a stopped release that changed hosts at a safe point is left to the rollout (it puts them as asked)', () => {
    const mine = record('interrupted', at(-5), true);
    return { record: mine, others: [], control: control(mine, { stop: true }), now: NOW };
  }, 'go'],
  ['2. a newer release waits: supersede', () => ({ record: record('accepted', at(-5)), others: [other('accepted', at(1))], control: undefined, now: NOW }), 'supersede'],
  ['2. a newer release done: supersede', () => ({ record: record('accepted', at(-5)), others: [other('succeeded', at(1))], control: undefined, now: NOW }), 'supersede'],
  ['2. the newest that started, as the lease names it: supersede', () => ({ record: record('accepted', at(-5)), others: [], newestStarted: other('running', at(1)), control: undefined, now: NOW }), 'supersede'],
  ['2. a newer one refused or superseded does not count', () => ({ record: record('accepted', at(-5)), others: [other('refused', at(1)), other('superseded', at(2))], control: undefined, now: NOW }), 'go'],
  ['2. a release for new hosts never supersedes a request', () => ({ record: record('accepted', at(-5)), others: [other('accepted', at(1), true)], newestStarted: other('running', at(2), true), control: undefined, now: NOW }), 'go'],
  ['2. a release for new hosts is judged by the release it repeats: a later request that succeeded supersedes it', () => ({ record: { ...record('accepted', at(5)), newHosts: { of: randomUUID(), instances: ['i-9'] } }, others: [other('succeeded', at(1))], control: undefined, now: NOW, repeats: { createdAt: at(-5), releaseId: randomUUID() } }), 'supersede'],
  ['2. a release for new hosts goes after a later release that rolled back (the current image is still current)', () => ({ record: { ...record('accepted', at(5)), newHosts: { of: randomUUID(), instances: ['i-9'] } }, others: [other('rolled-back', at(1))], control: undefined, now: NOW, repeats: { createdAt: at(-5), releaseId: randomUUID() } }), 'go'],
  ['2. a release for new hosts is not superseded by the release it repeats', () => {
    const repeated = { ...other('succeeded', at(-5)), releaseId: 'ffffffff-ffff-4fff-bfff-ffffffffffff' };
    return { record: { ...record('accepted', at(5)), newHosts: { of: repeated.releaseId, instances: ['i-9'] } }, others: [repeated], control: undefined, now: NOW, repeats: { createdAt: repeated.createdAt, releaseId: repeated.releaseId } };
  }, 'go'],
  ['2. stopped at a safe point with hosts changed, a newer one not started: wait for it', () => ({ record: record('interrupted', at(-5), true), others: [other('accepted', at(1))], control: undefined, now: NOW }), 'wait'],
  ['2. the rollback a lock admits gives way to no newer waiting request', () => {
    const mine = record('accepted', at(-5));
    return { record: mine, others: [other('accepted', at(1))], control: control(mine, { lock: true, admits: true }), now: NOW };
  }, 'go'],
  ['3. another release of the target half-way: wait', () => ({ record: record('accepted', at(-5)), others: [other('running', at(-10))], control: undefined, now: NOW }), 'wait'],
  ['3. one stopped at a safe point does not hold a new one back', () => ({ record: record('accepted', at(-5)), others: [other('interrupted', at(-10))], control: undefined, now: NOW }), 'go'],
  ['4. a lock in force that does not admit it: hold', () => {
    const mine = record('accepted', at(-5));
    return { record: mine, others: [], control: control(mine, { lock: true }), now: NOW };
  }, 'hold'],
  ['4. a lock that has run out holds nothing', () => {
    const mine = record('accepted', at(-5));
    return { record: mine, others: [], control: control(mine, { lock: true }), now: new Date(at(61)) };
  }, 'go'],
  ['4. a lock does not hold a release that already changed hosts', () => {
    const mine = record('interrupted', at(-5), true);
    return { record: mine, others: [], control: control(mine, { lock: true }), now: NOW };
  }, 'go'],
  ['5. nothing in the way: go', () => ({ record: record('accepted', at(-5)), others: [other('succeeded', at(-10))], control: undefined, now: NOW }), 'go'],
];

describe('the gate before a release starts', () => {
  for (const [name, input, kind] of rows) {
    it(name, () => assert.equal(gateRelease(input()).kind, kind));
  }
});

describe('a release for new hosts and a newer request', () => {
  const releases = workerConfig('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }).releases;

  it('a request signed before the new-hosts release was claimed, still in the queue then, is released, not superseded; the new-hosts release gives way to it', async () => {
    const store = new MemoryReleaseStore();
    const current = record('accepted', new Date(Date.now() - 3_600_000).toISOString());
    await store.claim({ ...current, status: 'succeeded', hosts: {} });
    const queued = validRequest({ image: `${REGISTRY}/data/ingest:v3`, createdAt: new Date(Date.now() - 30_000).toISOString() }) as unknown as ReleaseRequest;
    // The new-hosts release is claimed now, while the newer request still waits in the queue.
    const newHosts = newHostsRecord((await store.get(current.releaseId))!, ['i-9'], new Date(), 'w');
    await store.claim(newHosts);
    const request = (await store.claim(signedRecord({ request: queued, target: TARGET, deployment: 'staging', now: new Date(), worker: 'w' }))).record;
    const rollout = new RecordingRollout();
    const scheduler = new ReleaseScheduler({ store, rollout, vouch: vouchWithTestKey(releases, (id) => store.get(id)), logger: capturingLogger().logger, workerId: 'w', leaseMs: 30_000, parallel: 4, stopRequested: new AbortController().signal });
    const taken = await scheduler.take(request.releaseId, capturingLogger().logger, 'new');
    assert.equal(taken.status === 'ended' && taken.outcome.status, 'succeeded', 'the request CI signed is released');
    const repeat = await scheduler.take(newHosts.releaseId, capturingLogger().logger, 'takeover');
    assert.equal(repeat.status === 'ended' && repeat.outcome.status, 'superseded', 'the new-hosts release gives way to the newer request');
    assert.deepEqual(rollout.releases.map((r) => r.request.image.split(':').pop()), ['v3']);
  });
});
