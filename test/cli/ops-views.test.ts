import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostsView, matchOf, type HostFacts } from '../../src/cli/ops/hosts-view.js';
import { historyEntry, steeredBy } from '../../src/cli/ops/history-view.js';
import { restoresOf, statusStillMoving, statusView } from '../../src/cli/ops/status-view.js';
import { renderTable, shortImage, useColour } from '../../src/cli/ops/table.js';
import { checkTargets, knownTargets, servedTargets } from '../../src/cli/ops/targets.js';
import { UsageError } from '../../src/cli/usage-error.js';
import type { ReleaseRecord } from '../../src/state/release-record.js';
import { foldTargetSummary, releaseSummary } from '../../src/state/target-summary.js';
import { busyRecord, recordFor } from '../state/release-store-contract.js';

// The ops commands' decisions, as tables: records and facts in, the view out. No store, no AWS, no host.

const NOW = new Date('2026-11-29T12:00:00.000Z');
const at = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000);
const record = (status: ReleaseRecord['status'], minutesAgo: number, extra: Partial<ReleaseRecord> = {}): ReleaseRecord => ({
  ...recordFor({ acceptedAt: at(minutesAgo), createdAt: at(minutesAgo) }),
  status,
  ...extra,
});

describe('status view', () => {
  const running = busyRecord(record('running', 10, { startedAt: at(9).toISOString() }));
  const cases: Array<{ name: string; unfinished: ReleaseRecord[]; expect: (view: ReturnType<typeof statusView>['targets'][number]) => void }> = [
    {
      name: 'a running release is in progress: hosts done of all, the host at its step, the worker, since its start',
      unfinished: [running],
      expect: (t) => assert.deepEqual(t.inProgress, { releaseId: running.releaseId, image: running.request.image, requestedBy: running.request.requestedBy, direction: 'forward', hostsDone: 1, hostsTotal: 2, steps: ['10.0.0.2 at stop-old'], worker: 'worker-a', since: running.startedAt }),
    },
    {
      name: 'a release accepted while another runs waits because the target is busy',
      unfinished: [running, record('accepted', 5)],
      expect: (t) => assert.deepEqual(t.waiting.map((w) => w.why), [`target busy: release ${running.releaseId} is running`]),
    },
    {
      name: 'an interrupted release waits for a worker to carry it on',
      unfinished: [record('interrupted', 5, { reason: 'the worker was asked to stop' })],
      expect: (t) => assert.deepEqual(t.waiting.map((w) => w.why), ['interrupted at a safe point (the worker was asked to stop): a worker carries it on when it takes it up']),
    },
    {
      name: 'an accepted release behind an interrupted one waits for it',
      unfinished: [record('interrupted', 9), record('accepted', 5)],
      expect: (t) => assert.match(t.waiting[1]!.why, /^release [0-9a-f-]{36} is interrupted and goes first$/),
    },
    {
      name: 'an accepted release alone waits for a worker',
      unfinished: [record('accepted', 5)],
      expect: (t) => assert.deepEqual([t.inProgress, t.waiting.map((w) => w.why)], [null, ['accepted: waiting for a worker to take it up']]),
    },
    {
      name: 'what a release still has to put back is listed with its release',
      unfinished: [running],
      expect: (t) => assert.deepEqual(t.restoresPending, restoresOf(running).map((line) => `${line} [release ${running.releaseId}]`)),
    },
    {
      name: 'a target with nothing recorded has nothing to show',
      unfinished: [],
      expect: (t) => assert.deepEqual(t, { target: 'data/ingest/staging', current: null, inProgress: null, waiting: [], restoresPending: [], lastFailure: null, lock: null, rollbackRequested: null, rollbackRefused: null }),
    },
  ];
  const lock = { by: 'alice', at: at(30).toISOString(), reason: 'incident 42', until: new Date(NOW.getTime() + 3_600_000).toISOString() };
  const waiting = record('accepted', 5);
  const locked = { target: 'data/ingest/staging', revision: 1, lock };
  it('a locked target shows its lock, and a release that has not started waits for it, naming who and why', () => {
    const t = statusView({ targets: ['data/ingest/staging'], summaries: [], unfinished: [waiting], controls: new Map([['data/ingest/staging', locked]]), now: NOW }).targets[0]!;
    assert.deepEqual(t.lock, lock);
    assert.deepEqual(t.waiting.map((w) => w.why), [`target locked by alice until ${lock.until}: incident 42`]);
  });
  it('a lock that has ended, or that admits the release, holds nothing', () => {
    const ended = { ...locked, lock: { ...lock, until: at(1).toISOString() } };
    const endedView = statusView({ targets: ['data/ingest/staging'], summaries: [], unfinished: [waiting], controls: new Map([['data/ingest/staging', ended]]), now: NOW }).targets[0]!;
    assert.deepEqual([endedView.lock, endedView.waiting.map((w) => w.why)], [null, ['accepted: waiting for a worker to take it up']]);
    const admits = { ...locked, lock: { ...lock, admits: waiting.releaseId } };
    const admitted = statusView({ targets: ['data/ingest/staging'], summaries: [], unfinished: [waiting], controls: new Map([['data/ingest/staging', admits]]), now: NOW }).targets[0]!;
    assert.deepEqual(admitted.waiting.map((w) => w.why), ['accepted: waiting for a worker to take it up']);
  });
  it('a rollback asked for and not yet taken by the worker is shown, and so is one it refused in the last day', () => {
    const rollback = { releaseId: '00000000-0000-4000-8000-00000000000a', to: waiting.releaseId, by: 'carol', at: at(2).toISOString() };
    const refused = { releaseId: '00000000-0000-4000-8000-00000000000b', reason: 'the release named has not ended', at: at(60).toISOString() };
    const control = { target: 'data/ingest/staging', revision: 2, rollback, refusedRollback: refused };
    const t = statusView({ targets: ['data/ingest/staging'], summaries: [], unfinished: [], controls: new Map([['data/ingest/staging', control]]), now: NOW }).targets[0]!;
    assert.deepEqual([t.rollbackRequested, t.rollbackRefused], [rollback, refused]);
    const old = { ...control, refusedRollback: { ...refused, at: new Date(NOW.getTime() - 2 * 86_400_000).toISOString() } };
    assert.equal(statusView({ targets: ['data/ingest/staging'], summaries: [], unfinished: [], controls: new Map([['data/ingest/staging', old]]), now: NOW }).targets[0]!.rollbackRefused, null, 'a refusal older than a day is not news');
  });
  for (const c of cases) {
    it(c.name, () => {
      const view = statusView({ targets: ['data/ingest/staging'], summaries: [], unfinished: c.unfinished, now: NOW });
      c.expect(view.targets[0]!);
    });
  }

  it('restoresOf names the suspended processes, the muted alarms and the unconfirmed restores', () => {
    assert.deepEqual(restoresOf(running), [
      'Auto Scaling data-ingest-staging: HealthCheck, Terminate suspended (suspended)',
      'alarms a-5xx, a-latency muted until 2026-11-29T10:10:00.000Z (muted)',
      'not yet confirmed: resume data-ingest-staging',
    ]);
    assert.deepEqual(restoresOf({ ...running, scaling: { g: { before: [], suspend: ['Launch'], phase: 'resumed' } }, alarms: { ...running.alarms!, phase: 'unmuted' }, pending: [] }), []);
  });

  it('takes the current release and the last failure from the target summary, and watching goes on while anything moves', () => {
    const good = { ...record('succeeded', 60), finishedAt: at(50).toISOString() };
    const bad = { ...record('rolled-back', 40), finishedAt: at(30).toISOString(), reason: 'unhealthy' };
    const summary = foldTargetSummary(foldTargetSummary(undefined, good, NOW), bad, NOW);
    const view = statusView({ targets: ['data/ingest/staging'], summaries: [summary], unfinished: [], now: NOW });
    assert.deepEqual([view.targets[0]!.current, view.targets[0]!.lastFailure], [releaseSummary(good), releaseSummary(bad)]);
    assert.equal(statusStillMoving(view), false);
    assert.equal(statusStillMoving(statusView({ targets: ['data/ingest/staging'], summaries: [summary], unfinished: [record('accepted', 1)], now: NOW })), true);
  });
});

describe('target summary fold', () => {
  const cases: Array<[string, ReleaseRecord[], { current?: number; lastFailure?: number }]> = [
    ['a success is current', [record('succeeded', 10, { finishedAt: at(9).toISOString() })], { current: 0 }],
    ['a later failure leaves the current release', [record('succeeded', 10, { finishedAt: at(9).toISOString() }), record('failed', 5, { finishedAt: at(4).toISOString() })], { current: 0, lastFailure: 1 }],
    ['an older success folded late does not replace a newer one', [record('succeeded', 5, { finishedAt: at(4).toISOString() }), record('succeeded', 10, { finishedAt: at(9).toISOString() })], { current: 0 }],
    ['a superseded or unfinished release changes neither', [record('superseded', 5, { finishedAt: at(4).toISOString() }), record('running', 3)], {}],
    ['a refusal is a failure', [record('refused', 5, { finishedAt: at(5).toISOString() })], { lastFailure: 0 }],
  ];
  for (const [name, records, expected] of cases) {
    it(name, () => {
      const summary = records.reduce<ReturnType<typeof foldTargetSummary> | undefined>((s, r) => foldTargetSummary(s, r, NOW), undefined)!;
      assert.equal(summary.current?.releaseId, expected.current === undefined ? undefined : records[expected.current]!.releaseId);
      assert.equal(summary.lastFailure?.releaseId, expected.lastFailure === undefined ? undefined : records[expected.lastFailure]!.releaseId);
    });
  }
});

describe('history entry', () => {
  it('takes the release that came first from a superseded release\'s reason, and the duration from start to end', () => {
    const newer = '0b7c2a8e-4b1d-4a8e-9e8f-1f2a3b4c5d6e';
    const superseded = historyEntry(record('superseded', 10, { reason: `a newer release of data/ingest/staging (${newer}, requested at x) came first`, finishedAt: at(9).toISOString() }), NOW);
    assert.deepEqual([superseded.supersededBy, superseded.durationMs], [newer, null]);
    const ran = historyEntry(record('succeeded', 10, { startedAt: at(10).toISOString(), finishedAt: at(7).toISOString() }), NOW);
    assert.deepEqual([ran.supersededBy, ran.durationMs], [null, 180_000]);
    const going = historyEntry(record('running', 10, { startedAt: at(2).toISOString() }), NOW);
    assert.equal(going.durationMs, 120_000);
  });

  it('says who steered a release: a rollback of which release by whom, a stop by whom', () => {
    const of = '0b7c2a8e-4b1d-4a8e-9e8f-1f2a3b4c5d6e';
    const rollback = historyEntry(record('succeeded', 10, { origin: { kind: 'rollback', of, to: 'x', by: 'alice', at: at(10).toISOString() } }), NOW);
    assert.equal(steeredBy(rollback), 'rollback of 0b7c2a8e by alice');
    const stopped = historyEntry(record('rolled-back', 10, { stop: { by: 'bob', at: at(5).toISOString(), rollback: true } }), NOW);
    assert.equal(steeredBy(stopped), `${stopped.requestedBy}; stopped by bob (with rollback)`);
    assert.equal(steeredBy(historyEntry(record('succeeded', 10), NOW)), historyEntry(record('succeeded', 10), NOW).requestedBy);
  });
});

describe('hosts view', () => {
  const current = releaseSummary({ ...record('succeeded', 10), hosts: { 'i-1': busyRecord(record('running', 1)).hosts['i-1']! } });
  const host = (extra: Partial<HostFacts>): HostFacts => ({ instanceId: 'i-1', address: '10.0.0.1', name: 'h1', zone: 'a', balancers: [], unreachable: null, live: { id: 'c1', name: 'ingest', image: current.image, state: 'running', health: 'healthy', releaseId: current.releaseId }, check: { ok: true }, kept: [], ...extra });
  const cases: Array<[string, HostFacts, typeof current | null, ReturnType<typeof matchOf>]> = [
    ['runs the current release', host({}), current, 'current'],
    ['runs the current image from an earlier release', host({ live: { ...host({}).live!, releaseId: null } }), current, 'current'],
    ['was released and runs another image now', host({ live: { ...host({}).live!, image: 'reg/x:v9', releaseId: null } }), current, 'drifted'],
    ['joined after the current release and runs another image', host({ instanceId: 'i-9', live: { ...host({}).live!, image: 'reg/x:v1', releaseId: null } }), current, 'never-released'],
    ['has no container under the configured name', host({ live: null }), current, 'no-live-container'],
    ['has its container stopped', host({ live: { ...host({}).live!, state: 'exited' } }), current, 'no-live-container'],
    ['cannot be read over SSH', host({ unreachable: 'connect ECONNREFUSED', live: null }), current, 'unknown'],
    ['belongs to a target with no succeeded release', host({}), null, 'no-current-release'],
  ];
  for (const [name, facts, cur, expected] of cases) {
    it(`marks a host that ${name}: ${expected}`, () => {
      assert.equal(matchOf(facts, cur), expected);
      assert.equal(hostsView('data/ingest/staging', cur, [facts], NOW).hosts[0]!.matches, expected);
    });
  }
});

describe('text and targets', () => {
  it('aligns columns to the widest cell and colours only when asked', () => {
    const plain = renderTable(['A', 'BB'], [['xyz', { text: 'ok', tone: 'good' }], ['x', '']], false);
    assert.deepEqual(plain, ['A    BB', 'xyz  ok', 'x']);
    assert.match(renderTable(['A'], [[{ text: 'ok', tone: 'good' }]], true)[1]!, /^\x1b\[32mok\x1b\[0m$/);
  });

  it('uses colour on a terminal only, and never with NO_COLOR', () => {
    assert.deepEqual([useColour({ isTTY: true }, {}), useColour({ isTTY: false }, {}), useColour({ isTTY: true }, { NO_COLOR: '1' })], [true, false, false]);
  });

  it('shortens images to their last segment and a short digest', () => {
    assert.deepEqual([shortImage('reg:5000/data/ingest:v2'), shortImage(`reg/a@sha256:${'ab'.repeat(32)}`)], ['ingest:v2', 'a@sha256:abababab']);
  });

  it('knows the configured targets, personal deployments with releases, and names them when a target is unknown', () => {
    const served = servedTargets({ releases: [{ stack: 'data', release: 'ingest', deployments: ['staging'], personal: { users: ['alice'], deployment: 'personal-{user}' } }] as never });
    const known = knownTargets(served, ['data/ingest/personal-alice', 'data/ingest/personal-bob', 'other/app/prod', 'data/ingest/staging']);
    assert.deepEqual(known, ['data/ingest/staging', 'data/ingest/personal-alice']);
    assert.throws(() => checkTargets(['data/ingest/prod'], known), (error: unknown) => error instanceof UsageError && error.message === 'unknown target data/ingest/prod; known: data/ingest/staging, data/ingest/personal-alice');
    assert.doesNotThrow(() => checkTargets(['data/ingest/staging'], known));
  });
});
