import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { AlarmActions, AlarmState } from '../../src/alarms/alarm-actions.js';
import type { AlarmMuteRules, MuteRule } from '../../src/alarms/alarm-mute-rules.js';
import type { AutoScaling } from '../../src/autoscaling/process-suspension.js';
import type { Chat, ChatMessage } from '../../src/chat/chat.js';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import { holdPointJournal } from '../support/hold-point.js';
import { ReleaseRunner } from '../../src/rollout/release-runner.js';
import type { StepJournal } from '../../src/rollout/step-runner.js';
import { HostUnreachableError } from '../../src/host/host-errors.js';
import type { RolloutOutcome } from '../../src/rollout/rollout.js';
import type { Membership } from '../../src/loadbalancer/load-balancers.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { RecordedRelease } from '../../src/state/recorded-release.js';
import { newReleaseRecord, whereItStands, type ReleaseRecord } from '../../src/state/release-record.js';
import { validRequest } from '../support/requests.js';
import { SimulatedConnector, SimulatedHost, SimulatedLoadBalancers, simulatedProbe } from '../support/simulated-fleet.js';
import { capturingLogger, eventually, workerConfigObject } from '../support/worker-fixtures.js';

// The executor's promises where a real server cannot be made to misbehave on cue: Auto Scaling that
// refuses, a restore that AWS refuses for a while, a mute rule that must be kept ahead of now, load
// balancers that drain or report in service slowly, a stop request between batches. Hosts and load
// balancers are simulated (test/support/simulated-fleet.ts); the effects themselves are tested on
// the local fleet.

interface HarnessOptions {
  readonly releaseTimeoutMs?: number;
  readonly hosts?: number;
  readonly rollout?: Record<string, unknown>;
  readonly groups?: Record<string, string[]>;
  readonly enabledAlarms?: Record<string, boolean>;
  readonly journal?: StepJournal;
}

function harness(options: HarnessOptions = {}) {
  const object = workerConfigObject('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }) as Record<string, any>;
  object.ssh = { user: 'root', privateKey: { env: 'K' }, knownHostsFile: '/dev/null' };
  object.releases[0].rollout = {
    container: { name: 'ingest', ports: ['8080:8080'] },
    health: { port: 8080, intervalMs: 50, timeoutSeconds: 2 },
    loadBalancers: { classic: ['web'], drainTimeoutSeconds: 0, inServiceTimeoutSeconds: 2 },
    autoScaling: { groups: Object.keys(options.groups ?? { 'asg-a': [] }), discover: false },
    alarms: Object.keys(options.enabledAlarms ?? { errors: true }),
    policy: { startCheckSeconds: 0 },
    ...options.rollout,
  };
  const config = parseWorkerConfig(stringify(object));
  const releaseConfig = config.releases[0]!;

  const hosts = new Map<string, SimulatedHost>();
  for (let i = 1; i <= (options.hosts ?? 2); i += 1) {
    hosts.set(`10.0.0.${i}`, new SimulatedHost(`10.0.0.${i}`, { image: '127.0.0.1:5000/data/ingest:v1', name: 'ingest', labels: { 'harbormaster.target': 'data/ingest/staging' } }));
  }
  const lbs = new SimulatedLoadBalancers([...hosts.keys()].map((address) => `i-${address.split('.').pop()}`));

  const calls: string[] = [];
  const suspended: Record<string, string[]> = structuredClone(options.groups ?? { 'asg-a': [] });
  let refuseResumes = 0;
  // What AWS answers a refused resume: by default throttling (it clears); a test may give a ValidationError (it does not).
  let resumeRefusal: () => Error = () => Object.assign(new Error('Rate exceeded'), { name: 'Throttling', $fault: 'client', $metadata: { httpStatusCode: 400 } });
  let refuseSuspendOn: string | undefined;
  const autoScaling: AutoScaling = {
    async describe(group) {
      return { name: group, suspended: [...suspended[group]!], loadBalancerNames: [], targetGroupArns: [] };
    },
    async suspend(group, processes) {
      calls.push(`suspend ${group} ${processes.join(',')}`);
      if (group === refuseSuspendOn) throw new Error('AccessDenied: not allowed to suspend');
      suspended[group]!.push(...processes.filter((p) => !suspended[group]!.includes(p)));
    },
    async resume(group, processes) {
      calls.push(`resume ${group} ${processes.join(',')}`);
      if (refuseResumes > 0) {
        refuseResumes -= 1;
        throw resumeRefusal();
      }
      suspended[group] = suspended[group]!.filter((p) => !processes.includes(p));
    },
    async groupsOf() {
      return [];
    },
  };
  const enabled = new Map(Object.entries(options.enabledAlarms ?? { errors: true }));
  const alarms: AlarmActions = {
    async actionsEnabled(names) {
      return new Map(names.map((n) => [n, enabled.get(n)!]));
    },
    async disable(names) {
      calls.push(`disable ${names.join(',')}`);
      names.forEach((n) => enabled.set(n, false));
    },
    async enable(names) {
      calls.push(`enable ${names.join(',')}`);
      names.forEach((n) => enabled.set(n, true));
    },
    async states(names) {
      if (alarmStatesUnreadable) throw Object.assign(new Error('Rate exceeded'), { name: 'Throttling' });
      return new Map(names.map((n) => [n, alarmStates.get(n) ?? { state: 'OK' as const, reason: 'Threshold Crossed: no datapoints were received' }]));
    },
  };
  /** What CloudWatch says of each alarm's state; tests set an alarm to ALARM, or make the states unreadable. */
  const alarmStates = new Map<string, AlarmState>();
  let alarmStatesUnreadable = false;
  const rules = new Map<string, MuteRule>();
  const mutes: MuteRule[] = [];
  const muteRules: AlarmMuteRules = {
    async mute(rule) {
      mutes.push(rule);
      rules.set(rule.name, rule);
    },
    async unmute(name) {
      calls.push(`unmute ${name}`);
      rules.delete(name);
    },
    async read(name) {
      const rule = rules.get(name);
      return rule && { alarms: [...rule.alarms], start: rule.start, expiresAt: rule.until };
    },
  };
  const posted: ChatMessage[] = [];
  const chat: Chat = { post: (m) => void posted.push(m), flush: async () => undefined };
  const store = new MemoryReleaseStore();
  const { logger, lines } = capturingLogger();
  // The target's running instances, as EC2 would list them now; tests add and remove hosts.
  const running = new Set(hosts.keys());
  const connector = new SimulatedConnector(hosts);
  const runner = new ReleaseRunner({
    instances: { find: async () => [...hosts.keys()].filter((a) => running.has(a)).map((address) => ({ instanceId: `i-${address.split('.').pop()}`, address, name: `h${address.split('.').pop()}` })) },
    loadBalancers: lbs,
    autoScaling,
    alarms,
    muteRules,
    connector,
    reconnectBackoffMs: 20,
    chat,
    registryAuth: () => undefined,
    probe: simulatedProbe(hosts),
    pollMs: 20,
    rollbackRetryMs: 500,
    restoreBackoff: { minMs: 50, maxMs: 200 },
    muteWindowMs: 60_000,
    watchIntervalMs: 50,
    ...(options.releaseTimeoutMs !== undefined ? { releaseTimeoutMs: options.releaseTimeoutMs } : {}),
    ...(options.journal ? { journal: options.journal } : {}),
  });

  async function release(tag: string, options: { stopRequested?: AbortSignal; leaseLost?: AbortSignal; runner?: ReleaseRunner; record?: RecordedRelease } = {}): Promise<{ outcome: RolloutOutcome; recorded: RecordedRelease }> {
    let recorded = options.record;
    if (!recorded) {
      const request = validRequest({ image: `127.0.0.1:5000/data/ingest:${tag}` }) as unknown as ReleaseRequest;
      const { record } = await store.claim(newReleaseRecord({ request, keyId: 'ci-test', target: 'data/ingest/staging', deployment: 'staging', now: new Date(), worker: 'test' }));
      recorded = new RecordedRelease(store, record);
    }
    const outcome = await (options.runner ?? runner).run(recorded, { logger, stopRequested: options.stopRequested ?? new AbortController().signal, releaseConfig, occasion: 'new', ...(options.leaseLost ? { leaseLost: options.leaseLost } : {}), readControl: () => store.control('data/ingest/staging') });
    return { outcome, recorded };
  }

  /**
   * Runs a release until `dies` says the worker is gone (its lease lost: it stops acting at once, as a
   * killed worker would), and returns its record as it was left, for a later run to take up.
   */
  async function releaseUntilDeath(tag: string, dies: (died: AbortController) => void): Promise<RecordedRelease> {
    const died = new AbortController();
    dies(died);
    await assert.rejects(release(tag, { leaseLost: died.signal }));
    const [left] = await store.unfinished();
    assert.ok(left, 'the release is left unfinished');
    return new RecordedRelease(store, left);
  }

  /** The worker dies (its lease lost) right after host `i`'s old container is stopped, mid-swap. */
  function dieAfterStopOn(i: number, died: AbortController) {
    const host = hosts.get(`10.0.0.${i}`)!;
    const stop = host.stop.bind(host);
    host.stop = async (key: string) => {
      await stop(key);
      died.abort(new Error('the worker was killed'));
    };
  }

  /** Host `i`'s new container exits, and its previous one is removed from under the release: nothing to go back to. */
  function failWithNothingToGoBackTo(i: number) {
    const host = hosts.get(`10.0.0.${i}`)!;
    host.behaviour = (image) => (image.endsWith(':v2') ? 'exits' : 'healthy');
    const remove = host.remove.bind(host);
    host.remove = async (key: string) => {
      await remove(key);
      for (const c of await host.list({})) if (c.name.startsWith('ingest-previous-')) await remove(c.id);
    };
  }

  return {
    hosts,
    running,
    connector,
    releaseUntilDeath,
    dieAfterStopOn,
    failWithNothingToGoBackTo,
    /** A host that joins the target (Auto Scaling launched it, say). */
    addHost(i: number) {
      const address = `10.0.0.${i}`;
      hosts.set(address, new SimulatedHost(address, { image: '127.0.0.1:5000/data/ingest:v1', name: 'ingest', labels: { 'harbormaster.target': 'data/ingest/staging' } }));
      running.add(address);
    },
    host: (i: number) => hosts.get(`10.0.0.${i}`)!,
    lbs,
    calls,
    suspended,
    enabled,
    rules,
    mutes,
    posted,
    lines,
    store,
    runner,
    release,
    refuseResumes: (n: number, refusal?: () => Error) => {
      refuseResumes = n;
      if (refusal) resumeRefusal = refusal;
    },
    refuseSuspendOn: (group: string) => void (refuseSuspendOn = group),
    alarmStates,
    alarmStatesUnreadable: (unreadable: boolean) => void (alarmStatesUnreadable = unreadable),
  };
}

const effectCalls = (host: SimulatedHost) => host.calls.filter((c) => !c.startsWith('pull '));

describe('the release runner', () => {
  it('releases every host through the reconciler, mutes with a rule, and restores exactly', async () => {
    const h = harness({ groups: { 'asg-a': ['Launch'] } });
    const { outcome, recorded } = await h.release('v2');
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 2 });
    assert.deepEqual(h.host(1).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
    assert.deepEqual(h.host(2).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
    const kept = 'ingest-previous-' + recorded.releaseId.slice(0, 8);
    const next = 'ingest-next-' + recorded.releaseId.slice(0, 8);
    assert.deepEqual(effectCalls(h.host(1)), [
      // Created while h1 still serves; started under the name once the old one has given it up.
      `create ${next} 127.0.0.1:5000/data/ingest:v2`,
      `rename ingest ${kept}`,
      `update ${kept} restart=no`,
      `stop ${kept}`,
      `rename ${next} ingest`,
      'update ingest restart=unless-stopped',
      'start ingest',
    ]);
    assert.deepEqual(h.suspended, { 'asg-a': ['Launch'] }, 'Launch, suspended before, stays; the rest is resumed');
    assert.deepEqual([...h.rules.keys()], [], 'the mute rule is gone');
    assert.equal(h.mutes[0]!.name, `harbormaster-${recorded.releaseId}`);
    assert.deepEqual(h.mutes[0]!.alarms, ['errors']);
    assert.equal(recorded.record.status, 'succeeded');
    assert.deepEqual(Object.values(recorded.record.hosts).map((x) => x.progress), ['released', 'released']);
  });

  it('resumes exactly the processes it suspended or tried to, when suspending a second group fails, and touches no host', async () => {
    const h = harness({ groups: { 'asg-a': ['Launch'], 'asg-b': [] }, rollout: { alarmMuting: { mode: 'disable-actions' } }, enabledAlarms: { errors: true, latency: false } });
    h.refuseSuspendOn('asg-b');
    const { outcome, recorded } = await h.release('v2');

    assert.equal(outcome.status, 'rolled-back');
    const wanted = 'AZRebalance,HealthCheck,ReplaceUnhealthy,ScheduledActions,Terminate';
    // asg-b's failed call is resumed too: a call that fails may still have been applied by AWS.
    assert.deepEqual(h.calls, [`suspend asg-a ${wanted}`, `suspend asg-b ${wanted}`, `resume asg-a ${wanted}`, `resume asg-b ${wanted}`]);
    assert.deepEqual(h.suspended, { 'asg-a': ['Launch'], 'asg-b': [] }, 'Launch, suspended before, stays suspended');
    assert.deepEqual([...h.hosts.values()].flatMap(effectCalls), [], 'no host was touched');
    assert.deepEqual(h.lbs.calls, [], 'no host left service');
    assert.match(h.posted.at(-1)!.text, /failed at prepare: suspend-auto-scaling: AccessDenied/);
    assert.equal(recorded.record.status, 'rolled-back');
  });

  it('keeps a restore that AWS refuses pending, tries it again until it succeeds, and never reports it done before', async () => {
    const h = harness();
    h.refuseResumes(3);
    const statusWhileRefused: string[] = [];
    const { outcome, recorded } = await (async () => {
      const running = h.release('v2');
      // Sampled while the resumes are refused: the release must not read as finished.
      const sampler = setInterval(async () => {
        const [record] = await h.store.unfinished();
        if (record?.pending) statusWhileRefused.push(record.status);
      }, 10);
      try {
        return await running;
      } finally {
        clearInterval(sampler);
      }
    })();
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 2 });
    assert.equal(h.calls.filter((c) => c.startsWith('resume ')).length, 4, 'three refusals, then the resume that took');
    assert.deepEqual(h.suspended, { 'asg-a': [] });
    assert.ok(statusWhileRefused.length > 0 && statusWhileRefused.every((s) => s === 'running'), `status while pending: ${statusWhileRefused.join(',')}`);
    const texts = h.posted.map((m) => m.text);
    const pending = texts.findIndex((t) => /^Needs attention on data\/ingest\/staging: Auto Scaling or alarms are not yet back as they were .*Rate exceeded.*until it succeeds/.test(t));
    const confirmed = texts.findIndex((t) => /are back as they were before the release \(after 4 attempts\)/.test(t));
    const released = texts.findIndex((t) => t.startsWith('Released '));
    assert.ok(pending >= 0 && pending < confirmed && confirmed < released, texts.join('\n'));
    assert.equal(recorded.record.pending, undefined);
    assert.ok(h.lines.some((l) => l.msg === 'restoring Auto Scaling or alarms failed: still pending, trying again' && l.attempt === 1));
  });

  it("keeps the mute rule's expiry ahead of now while the release runs, then deletes it", async () => {
    const h = harness({ hosts: 1 });
    // The new image takes its time to get healthy, so the release outlives a few renewals.
    let readyAt = 0;
    h.host(1).behaviour = (image) => (image.endsWith(':v2') && Date.now() < readyAt ? 'never-ready' : 'healthy');
    const runner = new ReleaseRunner({ ...(h.runner as unknown as { effects: ConstructorParameters<typeof ReleaseRunner>[0] }).effects, muteWindowMs: 3_000 });
    readyAt = Date.now() + 1_800;
    const { outcome } = await h.release('v2', { runner });
    assert.equal(outcome.status, 'succeeded');
    assert.ok(h.mutes.length >= 2, `renewed ${h.mutes.length - 1} time(s)`);
    const untils = h.mutes.map((m) => m.until.getTime());
    assert.ok(untils.every((u, i) => i === 0 || u > untils[i - 1]!), 'each renewal reaches further');
    assert.ok(h.mutes.every((m) => m.start.getTime() === h.mutes[0]!.start.getTime()), 'one window, moved forward');
    assert.deepEqual([...h.rules.keys()], []);
  });

  it('keeps the old container serving while a classic ELB still reads InService during draining', async () => {
    const h = harness({ hosts: 1, rollout: { loadBalancers: { classic: ['web'], drainTimeoutSeconds: 10, inServiceTimeoutSeconds: 2 } } });
    let readings = 0;
    h.lbs.afterDeregister = () => ['draining', 'draining', 'draining', 'out'];
    const membership = h.lbs.membership.bind(h.lbs);
    const stoppedAfter: number[] = [];
    h.lbs.membership = async (lb, id) => ((readings += 1), membership(lb, id));
    const stop = h.host(1).stop.bind(h.host(1));
    h.host(1).stop = async (key: string) => {
      stoppedAfter.push(readings);
      return stop(key);
    };
    const { outcome } = await h.release('v2');
    assert.equal(outcome.status, 'succeeded');
    // Readings: 2 before (record, first turn), 1 after deregistering per turn: out on the fourth.
    assert.ok(stoppedAfter[0]! >= 6, `stopped after ${stoppedAfter[0]} readings, before the load balancer read out`);
    assert.ok(h.lines.some((l) => l.msg === 'step done' && l.step === 'drain'));
    assert.ok(!h.lines.some((l) => /draining did not end/.test(String(l.msg))));
  });

  it("continues after the load balancers' draining timeout, when they have cut connections themselves, and says so", async () => {
    const h = harness({ hosts: 1 });
    h.lbs.afterDeregister = () => ['draining'];
    // What the load balancer last said before the old container was stopped.
    const readings: string[] = [];
    const membership = h.lbs.membership.bind(h.lbs);
    h.lbs.membership = async (lb, id) => {
      const reading = await membership(lb, id);
      readings.push(reading);
      return reading;
    };
    const readBeforeStop: string[] = [];
    const stop = h.host(1).stop.bind(h.host(1));
    h.host(1).stop = async (key: string) => {
      readBeforeStop.push(readings.at(-1) ?? 'nothing read');
      return stop(key);
    };
    const { outcome } = await h.release('v2');
    assert.equal(outcome.status, 'succeeded');
    assert.equal(readBeforeStop[0], 'draining', 'the old container was stopped while the load balancer still said draining');
    // A lower bound, from the runner's own log: it waited out the timeout before going on.
    const drain = h.lines.find((l) => l.msg === 'step done' && l.step === 'drain');
    assert.ok(Number(drain?.durationMs) >= 5_000 - 100, `drained for ${drain?.durationMs} ms: the timeout is the load balancer's (0 s here) plus a 5 s margin`);
    assert.ok(h.lines.some((l) => /draining did not end within the load balancers' draining timeout; they have cut the connections themselves, continuing/.test(String(l.msg))));
  });

  it('fails a host the load balancer never reports in service, and puts it back on the old container', async () => {
    const h = harness({ hosts: 2 });
    let registrations = 0;
    // The first registration never gets in service; the rollback's does.
    h.lbs.afterRegister = () => (++registrations === 1 ? ['pending'] : ['in-service']);
    const { outcome, recorded } = await h.release('v2');
    assert.equal(outcome.status, 'rolled-back');
    assert.match((outcome as { reason: string }).reason, /^h1: wait-in-service: load balancers did not report the host in service within 2 s \(last: elb\/web pending\)/);
    assert.deepEqual(h.host(1).live(), ['ingest:127.0.0.1:5000/data/ingest:v1']);
    assert.deepEqual(effectCalls(h.host(2)), [], 'the second host was never touched');
    assert.equal(recorded.record.hosts['i-1']!.progress, 'restored');
    assert.match(h.posted.at(-1)!.text, /failed on h1 at wait-in-service: .*; rolled back 1 host$/);
  });

  it('reports a host it could not put back as needing attention, and the release as failed, not rolled back', async () => {
    const h = harness({ hosts: 2 });
    h.failWithNothingToGoBackTo(1);
    const { outcome, recorded } = await h.release('v2');
    assert.equal(outcome.status, 'failed');
    assert.equal(recorded.record.status, 'failed');
    assert.match(recorded.record.attention![0]!, /^h1: the container live before the release \(live0+\d*\) is gone/);
    assert.deepEqual(h.lbs.calls.filter((c) => c.startsWith('register ')), [], 'a host without a healthy container is never registered');
    assert.match(h.posted.at(-1)!.text, /NEEDS ATTENTION: h1: /);
    assert.deepEqual(h.suspended, { 'asg-a': [] }, 'Auto Scaling restored all the same');
  });

  it('stops at a safe point between batches when asked, restores, and a later run carries it to its end without touching the first host again', async () => {
    const h = harness({ hosts: 3 });
    const stop = new AbortController();
    h.lbs.afterRegister = () => {
      stop.abort(); // asked to stop while the first host is on its way back into service
      return ['in-service'];
    };
    const first = await h.release('v2', { stopRequested: stop.signal });
    assert.equal(first.outcome.status, 'interrupted');
    assert.equal(first.recorded.record.status, 'interrupted');
    assert.deepEqual(h.host(1).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
    assert.deepEqual(h.host(2).live(), ['ingest:127.0.0.1:5000/data/ingest:v1']);
    assert.deepEqual(h.suspended, { 'asg-a': [] }, 'Auto Scaling restored at the safe point');
    assert.deepEqual([...h.rules.keys()], [], 'alarms unmuted at the safe point');
    assert.match(h.posted.at(-1)!.text, /paused at a safe point: 1 of 3 hosts released/);

    const callsOnFirst = effectCalls(h.host(1)).length;
    h.lbs.afterRegister = () => ['in-service'];
    const resumed = await h.release('v2', { record: first.recorded });
    assert.deepEqual(resumed.outcome, { status: 'succeeded', hosts: 3 });
    assert.equal(effectCalls(h.host(1)).length, callsOnFirst, 'the released host was only looked at');
    for (const i of [1, 2, 3]) assert.deepEqual(h.host(i).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
    assert.ok(h.posted.some((m) => /^Found the release of ingest:v2 to data\/ingest\/staging unfinished when its request came again \(interrupted, 1 of 3 host\(s\) released\)/.test(m.text)));
    assert.equal(h.mutes.filter((m) => m.name === h.mutes[0]!.name).length, 2, 'muted again for the rest of the release');
    assert.deepEqual(h.suspended, { 'asg-a': [] });
  });

  /** An operator's `harbormaster stop` of the release under way, recorded in the target's control as the CLI records it. */
  async function operatorStop(h: ReturnType<typeof harness>, rollback: boolean): Promise<void> {
    const [running] = await h.store.unfinished();
    await h.store.updateControl('data/ingest/staging', () => ({ stops: [{ releaseId: running!.releaseId, by: 'alice', at: new Date().toISOString(), rollback }] }));
  }

  it("takes an operator's stop at the next safe point: the released host stays on the new image, the others untouched, everything restored, and it ends stopped", async () => {
    const h = harness({ hosts: 3 });
    let asked: Promise<void> | undefined;
    h.lbs.afterRegister = () => {
      asked ??= operatorStop(h, false); // while the first host is on its way back into service
      return ['in-service'];
    };
    const { outcome, recorded } = await h.release('v2');
    assert.equal(outcome.status, 'stopped');
    assert.equal(recorded.record.status, 'stopped');
    assert.deepEqual(recorded.record.stop && { by: recorded.record.stop.by, rollback: recorded.record.stop.rollback }, { by: 'alice', rollback: false });
    assert.match(recorded.record.reason!, /^stopped by alice at a safe point: 1 of 3 host\(s\) released$/);
    assert.deepEqual(h.host(1).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
    for (const i of [2, 3]) assert.deepEqual(effectCalls(h.host(i)), [], `h${i} was not touched`);
    assert.deepEqual(h.suspended, { 'asg-a': [] }, 'Auto Scaling restored');
    assert.deepEqual([...h.rules.keys()], [], 'alarms unmuted');
    assert.match(h.posted.at(-1)!.text, /stopped by alice at a safe point: 1 of 3 hosts released/);
    // Taken up again (a redelivery, another worker): it has ended, nothing more happens.
    const again = await h.release('v2', { record: recorded });
    assert.equal(again.outcome.status, 'stopped');
    for (const i of [2, 3]) assert.deepEqual(effectCalls(h.host(i)), []);
  });

  it("takes an operator's stop --rollback at the next safe point: the released hosts go back, last first, and it ends rolled back", async () => {
    const h = harness({ hosts: 3 });
    let released = 0;
    let asked: Promise<void> | undefined;
    h.lbs.afterRegister = () => {
      released += 1;
      if (released === 2) asked ??= operatorStop(h, true); // the second host back in service
      return ['in-service'];
    };
    const { outcome, recorded } = await h.release('v2');
    assert.equal(outcome.status, 'rolled-back');
    assert.equal(recorded.record.failure?.step, 'stop');
    for (const i of [1, 2, 3]) assert.deepEqual(h.host(i).live(), ['ingest:127.0.0.1:5000/data/ingest:v1'], `h${i} on the old image`);
    assert.deepEqual(effectCalls(h.host(3)), [], 'h3 was never touched');
    assert.deepEqual(h.suspended, { 'asg-a': [] });
    assert.deepEqual([...h.rules.keys()], []);
  });

  it("ends at once a release an operator stopped before it began, changing nothing", async () => {
    const h = harness({ hosts: 2 });
    const request = validRequest({ image: '127.0.0.1:5000/data/ingest:v2' }) as unknown as ReleaseRequest;
    const { record } = await h.store.claim(newReleaseRecord({ request, keyId: 'ci-test', target: 'data/ingest/staging', deployment: 'staging', now: new Date(), worker: 'test' }));
    await h.store.updateControl('data/ingest/staging', () => ({ stops: [{ releaseId: record.releaseId, by: 'bob', at: new Date().toISOString(), rollback: false }] }));
    const { outcome } = await h.release('v2', { record: new RecordedRelease(h.store, record) });
    assert.deepEqual(outcome, { status: 'stopped', reason: 'stopped by bob before it began: nothing was changed' });
    for (const i of [1, 2]) assert.deepEqual(h.host(i).calls, [], `h${i} was not even contacted`);
    assert.deepEqual(h.calls, []);
  });

  it('releases a canary, waits at a pause until an operator promotes it, then releases the rest; the gate is recorded with who passed it', async () => {
    const h = harness({ hosts: 3, rollout: { policy: { startCheckSeconds: 0, steps: [{ hosts: 1 }, { pause: true }] } } });
    const running = h.release('v2');
    let record: ReleaseRecord | undefined;
    for (let i = 0; i < 200 && !record?.gates?.[0]; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      [record] = await h.store.unfinished();
    }
    assert.ok(record?.gates?.[0]?.reachedAt, 'the pause is reached and recorded');
    assert.equal(whereItStands(record), 'running, 1 of 3 host(s) released, paused until `harbormaster promote`');
    assert.deepEqual(h.host(1).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
    for (const i of [2, 3]) assert.deepEqual(effectCalls(h.host(i)), [], `h${i} waits behind the gate`);
    assert.match(h.posted.at(-1)!.text, /1 of 3 hosts released, paused until `harbormaster promote`/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const i of [2, 3]) assert.deepEqual(effectCalls(h.host(i)), [], `h${i} still waits`);

    await h.store.updateControl('data/ingest/staging', () => ({ promotions: [{ releaseId: record!.releaseId, by: 'carol', at: new Date().toISOString() }] }));
    const { outcome, recorded } = await running;
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 3 });
    assert.equal(recorded.record.gates?.[0]?.by, 'carol');
    for (const i of [1, 2, 3]) assert.deepEqual(h.host(i).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
    assert.ok(h.posted.some((m) => /promoted by carol; going on/.test(m.text)));
  });

  it("judges a promotion by when the worker first saw it, not by its writer's time: one dated a day ahead, made before the pause, passes no pause, even after the release is taken up again", async () => {
    const h = harness({ hosts: 3, rollout: { policy: { startCheckSeconds: 0, steps: [{ hosts: 1 }, { pause: true }, { hosts: 1 }, { pause: true }] } } });
    const request = validRequest({ image: '127.0.0.1:5000/data/ingest:v2' }) as unknown as ReleaseRequest;
    const { record: claimed } = await h.store.claim(newReleaseRecord({ request, keyId: 'ci-test', target: 'data/ingest/staging', deployment: 'staging', now: new Date(), worker: 'test' }));
    const promote = (at: Date) => h.store.updateControl('data/ingest/staging', () => ({ promotions: [{ releaseId: claimed.releaseId, by: 'mallory', at: at.toISOString() }] }));
    const atGate = async (gate: number) => {
      let record: ReleaseRecord | undefined;
      for (let i = 0; i < 200 && !record?.gates?.[gate]; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        record = await h.store.get(claimed.releaseId);
      }
      assert.ok(record?.gates?.[gate]?.reachedAt, `pause ${gate} is reached`);
      // Long enough for several turns of the worker at the pause.
      await new Promise((resolve) => setTimeout(resolve, 300));
      return (await h.store.get(claimed.releaseId))!;
    };
    await promote(new Date(Date.now() + 86_400_000));
    const interrupt = new AbortController();
    const first = h.release('v2', { record: new RecordedRelease(h.store, claimed), stopRequested: interrupt.signal });
    const paused = await atGate(0);
    assert.equal(paused.gates![0]!.passedAt, undefined, 'a promotion seen before the pause was reached does not pass it');
    assert.ok(Date.parse(paused.promotion!.seenAt) <= Date.parse(paused.gates![0]!.reachedAt), 'seen (worker clock) before the pause was reached');
    assert.deepEqual(effectCalls(h.host(2)), [], 'h2 waits behind the pause');

    // Taken up again (the worker stopped at the pause): the promotion is still the one seen before.
    interrupt.abort();
    assert.equal((await first).outcome.status, 'interrupted');
    const second = h.release('v2', { record: new RecordedRelease(h.store, (await h.store.get(claimed.releaseId))!) });
    const resumed = await atGate(0);
    assert.equal(resumed.gates![0]!.passedAt, undefined, 'still waits after the take-up');

    await promote(new Date(Date.now() - 86_400_000));
    const next = await atGate(1);
    assert.ok(next.gates![0]!.passedAt, 'a promotion first seen after the pause was reached passes it, whatever time its writer put on it');
    assert.equal(next.gates![1]!.passedAt, undefined, 'and not the next pause');
    assert.deepEqual(effectCalls(h.host(3)), [], 'h3 waits behind the second pause');
    await promote(new Date());
    const { outcome, recorded } = await second;
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 3 });
    assert.ok(Date.parse(recorded.record.promotion!.seenAt) > Date.parse(recorded.record.gates![1]!.reachedAt));
  });

  it('bakes after the canary for the configured time, then goes on without anyone', async () => {
    const h = harness({ hosts: 2, rollout: { policy: { startCheckSeconds: 0, steps: [{ hosts: 1 }, { bakeSeconds: 1 }] } } });
    const { outcome, recorded } = await h.release('v2');
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 2 });
    const gate = recorded.record.gates![0]!;
    assert.ok(Date.parse(gate.passedAt!) - Date.parse(gate.reachedAt) >= 1000, 'passed no earlier than a second after it was reached');
    assert.ok(h.posted.some((m) => /baking for 1\.0 s/.test(m.text)));
    assert.ok(h.posted.some((m) => /bake over, nothing went wrong; going on/.test(m.text)));
  });

  it('turns back when a watched alarm enters ALARM during the second host, puts every released host back, and names the alarm', async () => {
    const h = harness({ hosts: 3 });
    let registered = 0;
    h.lbs.afterRegister = () => {
      registered += 1;
      // The first host is back in service; the new image makes the error rate climb.
      if (registered === 1) h.alarmStates.set('errors', { state: 'ALARM', reason: 'Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (5.0)' });
      return ['in-service'];
    };
    const { outcome, recorded } = await h.release('v2');
    assert.equal(outcome.status, 'rolled-back');
    assert.deepEqual(recorded.record.failure, { step: 'alarm', reason: 'errors entered ALARM: Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (5.0)' });
    for (const i of [1, 2, 3]) assert.deepEqual(h.host(i).live(), ['ingest:127.0.0.1:5000/data/ingest:v1'], `h${i} on the old image`);
    assert.deepEqual(effectCalls(h.host(3)), [], 'h3 was never touched');
    assert.deepEqual(h.suspended, { 'asg-a': [] });
    assert.deepEqual([...h.rules.keys()], [], 'alarms unmuted');
    assert.ok(h.posted.some((m) => /alarm errors entered ALARM \(Threshold Crossed.*\); turning the release back/.test(m.text)));
  });

  it('refuses a release while a watched alarm is already in ALARM, changing nothing; with policy.alarmAtStart ignore, releases and says so', async () => {
    const refusing = harness({ hosts: 2 });
    refusing.alarmStates.set('errors', { state: 'ALARM', reason: 'Threshold Crossed' });
    const refused = await refusing.release('v2');
    assert.equal(refused.outcome.status, 'refused');
    assert.match(refused.recorded.record.reason!, /watched alarm\(s\) already in ALARM before the release: errors \(Threshold Crossed\); release once they are OK, or set policy.alarmAtStart: ignore/);
    for (const i of [1, 2]) assert.deepEqual(effectCalls(refusing.host(i)), []);
    assert.deepEqual(refusing.calls, []);

    const ignoring = harness({ hosts: 2, rollout: { policy: { startCheckSeconds: 0, alarmAtStart: 'ignore' } } });
    ignoring.alarmStates.set('errors', { state: 'ALARM', reason: 'Threshold Crossed' });
    const released = await ignoring.release('v2');
    assert.deepEqual(released.outcome, { status: 'succeeded', hosts: 2 });
    assert.deepEqual(released.recorded.record.watch, { alarms: ['errors'], baseline: { errors: 'ALARM' } });
    assert.ok(ignoring.posted.some((m) => /already in ALARM before the release: errors; releasing anyway/.test(m.text)));
  });

  it('stops at the next safe point when the alarms cannot be read for longer than policy.alarmUnreadableSeconds', async () => {
    // A bake after the canary, so that the release outlasts the bound.
    const h = harness({ hosts: 3, rollout: { policy: { startCheckSeconds: 0, alarmUnreadableSeconds: 1, steps: [{ hosts: 1 }, { bakeSeconds: 30 }] } } });
    let registered = 0;
    h.lbs.afterRegister = () => {
      registered += 1;
      if (registered === 1) h.alarmStatesUnreadable(true);
      return ['in-service'];
    };
    const { outcome, recorded } = await h.release('v2');
    assert.equal(outcome.status, 'stopped');
    assert.match(recorded.record.reason!, /^stopped by the alarm watch \(the alarms could not be read for \d+ s\) at a safe point/);
    assert.deepEqual(h.suspended, { 'asg-a': [] });
  });

  const TASK = { command: ['bin/migrate', '--up'], timeoutSeconds: 5 };
  const taskRuns = (h: ReturnType<typeof harness>) => [1, 2, 3].flatMap((i) => (h.hosts.get(`10.0.0.${i}`)?.calls ?? []).filter((c) => c.includes('bin/migrate')).map((c) => `h${i} ${c}`));

  it('runs the release task once, on the first host, before any host leaves service, then releases', async () => {
    const h = harness({ hosts: 2, rollout: { policy: { startCheckSeconds: 0 }, releaseTask: TASK } });
    h.host(1).task = () => ({ exitCode: 0, output: 'migrating\n3 migrations applied' });
    const { outcome, recorded } = await h.release('v2');
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 2 });
    assert.deepEqual(taskRuns(h), ['h1 run ingest-release-task-' + recorded.releaseId.slice(0, 8) + ' 127.0.0.1:5000/data/ingest:v2 bin/migrate --up']);
    const calls = effectCalls(h.host(1));
    assert.ok(calls.findIndex((c) => c.includes('bin/migrate')) < calls.findIndex((c) => c.startsWith('stop ')), 'the task ran before the old container stopped');
    assert.ok(h.calls.findIndex((c) => c.startsWith('suspend')) > -1);
    assert.deepEqual({ ...recorded.record.releaseTask, startedAt: undefined }, { phase: 'succeeded', host: 'h1', startedAt: undefined, exitCode: 0, output: 'migrating\n3 migrations applied', attempts: 1 });
    assert.ok(h.posted.some((m) => /the release task on h1 exited with code 0; its last lines: migrating \| 3 migrations applied/.test(m.text)));
  });

  it('refuses the release when the release task exits non-zero: nothing left service, nothing suspended', async () => {
    const h = harness({ hosts: 2, rollout: { policy: { startCheckSeconds: 0 }, releaseTask: TASK } });
    h.host(1).task = () => ({ exitCode: 3, output: 'ERROR: relation "users" already exists' });
    const { outcome, recorded } = await h.release('v2');
    assert.equal(outcome.status, 'refused');
    assert.match(recorded.record.reason!, /^release task: bin\/migrate --up exited with code 3 on h1$/);
    for (const i of [1, 2]) assert.deepEqual(h.host(i).live(), ['ingest:127.0.0.1:5000/data/ingest:v1']);
    assert.deepEqual(h.calls.filter((c) => /^(suspend|deregister)/.test(c)), [], 'no process suspended, no host deregistered');
    assert.ok(h.posted.some((m) => /exited with code 3; its last lines: ERROR: relation/.test(m.text)));
  });

  it('does not run a release task again that a dead worker left started: the release stops for a person; an idempotent one runs again', async () => {
    for (const idempotent of [false, true]) {
      const h = harness({ hosts: 2, rollout: { policy: { startCheckSeconds: 0 }, releaseTask: { ...TASK, idempotent } } });
      // The worker dies as the task runs: its lease is lost right after the task's container is started.
      const died = new AbortController();
      h.host(1).task = () => {
        died.abort(new Error('the worker was killed'));
        return { exitCode: 0, output: '' };
      };
      await assert.rejects(h.release('v2', { leaseLost: died.signal }));
      const [left] = await h.store.unfinished();
      assert.equal(left!.releaseTask?.phase, 'started');
      h.host(1).task = () => ({ exitCode: 0, output: 'again' });
      const { outcome, recorded } = await h.release('v2', { record: new RecordedRelease(h.store, left!) });
      if (idempotent) {
        assert.deepEqual(outcome, { status: 'succeeded', hosts: 2 });
        assert.equal(taskRuns(h).length, 2, 'run again');
      } else {
        assert.equal(outcome.status, 'failed');
        assert.equal(taskRuns(h).length, 1, 'not run again');
        assert.match(recorded.record.attention!.join('\n'), /release task: the release task was under way on h1 when its worker stopped: it may have run in part/);
        for (const i of [1, 2]) assert.deepEqual(h.host(i).live(), ['ingest:127.0.0.1:5000/data/ingest:v1']);
      }
    }
  });

  it('releases a release for hosts that joined the target to those hosts alone, without its canary steps or release task, and takes no other host in', async () => {
    const h = harness({ hosts: 3, rollout: { policy: { startCheckSeconds: 0, steps: [{ hosts: 1 }, { pause: true }] }, releaseTask: { command: ['bin/migrate'] } } });
    const request = validRequest({ image: '127.0.0.1:5000/data/ingest:v2' }) as unknown as ReleaseRequest;
    const claimed = newReleaseRecord({ request, keyId: 'ci-test', target: 'data/ingest/staging', deployment: 'staging', now: new Date(), worker: 'test' });
    const { record } = await h.store.claim({ ...claimed, newHosts: { of: 'an-earlier-release', instances: ['i-3'] } });
    const { outcome } = await h.release('v2', { record: new RecordedRelease(h.store, record) });
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 1 });
    assert.deepEqual(h.host(3).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
    for (const i of [1, 2]) assert.deepEqual(effectCalls(h.host(i)), [], `h${i} was not touched`);
    assert.ok(!effectCalls(h.host(3)).some((c) => c.includes('bin/migrate')), 'no release task');
  });

  it('resuming a release it stopped at a safe point, leaves alone a process someone suspended meanwhile: it is not resumed at the end', async () => {
    const h = harness({ hosts: 2 });
    const stop = new AbortController();
    h.lbs.afterRegister = () => {
      stop.abort();
      return ['in-service'];
    };
    const first = await h.release('v2', { stopRequested: stop.signal });
    assert.equal(first.recorded.record.status, 'interrupted');
    assert.deepEqual(h.suspended, { 'asg-a': [] });
    // An operator suspends Terminate by hand while the release is paused.
    (h.suspended['asg-a'] as string[]).push('Terminate');
    h.lbs.afterRegister = () => ['in-service'];
    const resumed = await h.release('v2', { record: first.recorded });
    assert.deepEqual(resumed.outcome, { status: 'succeeded', hosts: 2 });
    assert.deepEqual(h.suspended, { 'asg-a': ['Terminate'] }, "the operator's suspension is as they left it");
    assert.deepEqual(h.calls.filter((c) => c.startsWith('resume ')).at(-1), 'resume asg-a AZRebalance,HealthCheck,ReplaceUnhealthy,ScheduledActions');
  });

  it('counts the hosts in service from the load balancers and cuts a batch down so that never fewer than minHealthy serve', async () => {
    const h = harness({ hosts: 3, rollout: { policy: { startCheckSeconds: 0, batchSize: 2, minHealthy: 1 } } });
    // h3 was taken out by hand before the release: it does not serve, and stays out.
    h.lbs.startOut('i-3');
    const { outcome, recorded } = await h.release('v2');
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 3 });
    assert.equal(h.lbs.fewestInService, 1, 'one host in service at the least, never none');
    assert.ok(h.lines.some((l) => l.msg === 'batch cut down to keep policy.minHealthy in service'));
    assert.deepEqual(recorded.record.hosts['i-3']!.before.registeredIn, []);
    assert.ok(!h.lbs.calls.some((c) => c.endsWith(' i-3')), 'the host drained by hand is released, and never registered by the release');
    assert.deepEqual(h.host(3).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
  });

  it('refuses a release that could not take a host out without going below minHealthy, before changing anything', async () => {
    const h = harness({ hosts: 3 });
    h.lbs.startOut('i-3');
    const { outcome } = await h.release('v2');
    assert.equal(outcome.status, 'refused');
    assert.match((outcome as { reason: string }).reason, /only 2 of 3 host\(s\) are in service now: taking one out would leave fewer than policy.minHealthy \(2\) serving/);
    assert.deepEqual(h.calls, [], 'Auto Scaling untouched');
    assert.deepEqual(h.lbs.calls, []);
  });

  it('releases a host that joined the target during the release too', async () => {
    const h = harness({ hosts: 2 });
    let joined = false;
    h.lbs.afterRegister = () => {
      if (!joined) {
        joined = true;
        h.addHost(3);
      }
      return ['in-service'];
    };
    const { outcome, recorded } = await h.release('v2');
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 3 });
    assert.deepEqual(h.host(3).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
    assert.equal(recorded.record.hosts['i-3']!.progress, 'released');
    assert.ok(h.lines.some((l) => l.msg === 'hosts joined the target during the release: releasing them too'));
    assert.match(h.posted.at(-1)!.text, /^Released ingest:v2 to data\/ingest\/staging: 3 hosts in /);
  });

  it('releases a host that joined the target and does not answer at first, as one Auto Scaling just launched', async () => {
    const h = harness({ hosts: 2 });
    let joined = false;
    h.lbs.afterRegister = () => {
      if (!joined) {
        joined = true;
        h.addHost(3);
        h.connector.refusing.set('10.0.0.3', 3); // its sshd not up yet
      }
      return ['in-service'];
    };
    const { outcome } = await h.release('v2');
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 3 });
    assert.deepEqual(h.host(3).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
  });

  it('never reports a success when a host joined the target and could not be released: the release fails, naming it', async () => {
    const h = harness({ hosts: 2, rollout: { policy: { startCheckSeconds: 0, hostRetrySeconds: 0 } } });
    let joined = false;
    h.lbs.afterRegister = () => {
      if (!joined) {
        joined = true;
        h.addHost(3);
        h.connector.refusing.set('10.0.0.3', 1_000); // launched, but its sshd never answers
      }
      return ['in-service'];
    };
    const { outcome, recorded } = await h.release('v2');
    assert.equal(outcome.status, 'failed');
    assert.match(recorded.record.reason!, /^not released: h3 \(they joined the target during the release and could not be prepared: h3: connect: /);
    for (const i of [1, 2]) assert.deepEqual(h.host(i).live(), ['ingest:127.0.0.1:5000/data/ingest:v2'], 'the hosts released stay released');
    assert.deepEqual(h.host(3).live(), ['ingest:127.0.0.1:5000/data/ingest:v1']);
    assert.match(h.posted.at(-1)!.text, /^Release of ingest:v2 to data\/ingest\/staging did not reach every host: h3 not released \(.*\); NEEDS ATTENTION: release the target again\. The 2 hosts released stay on the new image$/);
    assert.deepEqual(h.suspended, { 'asg-a': [] });
  });

  it('drops a host that left the target during the release, without failing it', async () => {
    const h = harness({ hosts: 3, rollout: { policy: { startCheckSeconds: 0, hostRetrySeconds: 0 } } });
    h.lbs.afterRegister = () => {
      // While h1 comes back, h2 is terminated: gone from EC2, and unreachable.
      h.running.delete('10.0.0.2');
      h.host(2).inspect = async () => {
        throw new HostUnreachableError('10.0.0.2', 'connect ECONNREFUSED');
      };
      return ['in-service'];
    };
    const { outcome, recorded } = await h.release('v2');
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 2 });
    assert.equal(recorded.record.hosts['i-2']!.progress, 'gone');
    assert.deepEqual(h.host(3).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
    assert.ok(h.lines.some((l) => /host left the target during the release/.test(String(l.msg))));
  });

  it('carries a host caught mid-swap to its end when it cannot be reached for a while after the worker died', async () => {
    const h = harness({ hosts: 2 });
    const left = await h.releaseUntilDeath('v2', (died) => h.dieAfterStopOn(1, died));
    assert.equal(left.record.hosts['i-1']!.progress, 'in-progress');
    assert.deepEqual(h.host(1).live(), [], 'h1 is left with its old container stopped and the new one not started');
    // The host is rebooting when the release is taken up: more refusals than the first attempts.
    h.connector.refusing.set('10.0.0.1', 4);
    const { outcome } = await h.release('v2', { record: left });
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 2 });
    for (const i of [1, 2]) assert.deepEqual(h.host(i).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
    assert.deepEqual(h.suspended, { 'asg-a': [] });
  });

  it('puts a host caught mid-swap back when it stays out of reach past policy.hostRetrySeconds, then answers while the release goes back', async () => {
    const h = harness({ hosts: 2, rollout: { policy: { startCheckSeconds: 0, hostRetrySeconds: 0 } } });
    const left = await h.releaseUntilDeath('v2', (died) => h.dieAfterStopOn(1, died));
    h.connector.refusing.set('10.0.0.1', 4);
    const { outcome, recorded } = await h.release('v2', { record: left });
    assert.equal(outcome.status, 'rolled-back', 'not failed: the host was put back once it answered');
    assert.equal(recorded.record.hosts['i-1']!.progress, 'restored');
    for (const i of [1, 2]) assert.deepEqual(h.host(i).live(), ['ingest:127.0.0.1:5000/data/ingest:v1']);
    assert.equal(await h.lbs.membership({ kind: 'classic', id: 'web' }, 'i-1'), 'in-service', 'h1 is back in its load balancer');
    assert.deepEqual(h.suspended, { 'asg-a': [] });
  });

  it('does not look for a host that left the target when the release is taken up again, and does not turn back for it', async () => {
    const h = harness({ hosts: 3, rollout: { policy: { startCheckSeconds: 0, hostRetrySeconds: 0 } } });
    const left = await h.releaseUntilDeath('v2', (died) => {
      let registered = 0;
      h.lbs.afterRegister = () => {
        registered += 1;
        if (registered === 1) {
          // While h1 comes back, h2 is terminated: gone from EC2, and unreachable.
          h.running.delete('10.0.0.2');
          h.connector.refusing.set('10.0.0.2', 1_000);
          h.host(2).inspect = async () => {
            throw new HostUnreachableError('10.0.0.2', 'connect ECONNREFUSED');
          };
        }
        return ['in-service'];
      };
      h.dieAfterStopOn(3, died);
    });
    assert.equal(left.record.hosts['i-2']!.progress, 'gone');
    const { outcome } = await h.release('v2', { record: left });
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 2 });
    for (const i of [1, 3]) assert.deepEqual(h.host(i).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
  });

  it('takes no effect once the lease is given up while its intent is being written, though the write itself landed', async () => {
    const h = harness({ hosts: 2 });
    const save = h.store.save.bind(h.store);
    const left = await h.releaseUntilDeath('v2', (died) => {
      h.store.save = async (record, lease) => {
        const stored = await save(record, lease);
        // The lease runs out by this worker's clock while the store acknowledges the intent to stop h1's old container.
        if (record.hosts['i-1']?.intent?.action === 'stop-old') died.abort(new Error('the lease was given up'));
        return stored;
      };
    });
    assert.equal(left.record.hosts['i-1']!.intent?.action, 'stop-old', 'the intent is recorded');
    assert.ok(!h.host(1).calls.some((c) => c.startsWith('stop ') || c.startsWith('rename ')), `no stop after the lease was given up: ${h.host(1).calls.join(', ')}`);
    assert.deepEqual(h.host(1).live(), ['ingest:127.0.0.1:5000/data/ingest:v1']);
  });

  it('turns back when the release goes past its deadline, and ends rolled back with every host whole', async () => {
    const h = harness({ hosts: 2, releaseTimeoutMs: 1_500, rollout: { policy: { startCheckSeconds: 0 }, health: { port: 8080, intervalMs: 50, timeoutSeconds: 60 } } });
    h.host(1).behaviour = (image) => (image.endsWith(':v2') ? 'never-ready' : 'healthy');
    const { outcome } = await h.release('v2');
    assert.equal(outcome.status, 'rolled-back');
    assert.match((outcome as { reason: string }).reason, /^h1: deadline: the release went past its deadline/);
    assert.deepEqual(h.host(1).live(), ['ingest:127.0.0.1:5000/data/ingest:v1']);
    assert.deepEqual(effectCalls(h.host(2)), []);
    assert.deepEqual(h.suspended, { 'asg-a': [] });
  });

  it('leaves a released host on the new image rather than roll it back below minHealthy, and says so', async () => {
    const h = harness({ hosts: 3, rollout: { policy: { startCheckSeconds: 0, onFailure: 'all' } } });
    // h2's new container exits and its previous one is gone: h2 cannot be put back and stays out.
    h.failWithNothingToGoBackTo(2);
    const { outcome, recorded } = await h.release('v2');
    assert.equal(outcome.status, 'failed');
    assert.equal(h.lbs.fewestInService, 2, 'never fewer than minHealthy (2 of 3) in service');
    assert.deepEqual(h.host(1).live(), ['ingest:127.0.0.1:5000/data/ingest:v2'], 'h1 stays on the new image, in service');
    assert.ok(recorded.record.attention!.some((a) => /^h1: left on the new image: rolling it back now would leave fewer than policy.minHealthy in service/.test(a)), recorded.record.attention!.join('; '));
    assert.ok(recorded.record.attention!.some((a) => /^h2: /.test(a)));
  });
  it('going back with onFailure all, keeps a released host whose kept copy is gone live on the new image and registered, and says so', async () => {
    const h = harness({ hosts: 2, rollout: { policy: { startCheckSeconds: 0, onFailure: 'all', minHealthy: 0 } } });
    // Once h1 is released, its kept copy is pruned (a `docker container prune` cron); then h2's new container exits.
    const h2 = h.host(2);
    h2.behaviour = (image) => (image.endsWith(':v2') ? 'exits' : 'healthy');
    const create = h2.create.bind(h2);
    h2.create = async (spec) => {
      for (const c of await h.host(1).list({})) if (c.name.startsWith('ingest-previous-')) await h.host(1).remove(c.id);
      return create(spec);
    };
    const { outcome, recorded } = await h.release('v2');
    assert.equal(outcome.status, 'failed');
    assert.deepEqual(h.host(1).live(), ['ingest:127.0.0.1:5000/data/ingest:v2'], 'h1 keeps serving the new image');
    assert.equal(await h.lbs.membership({ kind: 'classic', id: 'web' }, 'i-1'), 'in-service', 'h1 stays in its load balancer');
    assert.equal(h.lbs.calls.filter((c) => c === 'deregister web i-1').length, 1, 'h1 left service once, for its release, and never again');
    assert.equal(recorded.record.hosts['i-1']!.progress, 'kept');
    assert.ok(recorded.record.attention!.some((a) => /^h1: kept on the new image: the container live before the release \(live0+\d*\) is gone/.test(a)), recorded.record.attention!.join('; '));
    assert.deepEqual(h.host(2).live(), ['ingest:127.0.0.1:5000/data/ingest:v1'], 'h2 is back on the old image');
    assert.match(h.posted.at(-1)!.text, /h1: kept on the new image/);
  });

  it('gives the copy it keeps for rollback restart policy no, so that an engine restart never revives it', async () => {
    const h = harness({ hosts: 1, rollout: { policy: { startCheckSeconds: 0, minHealthy: 0 } } });
    // `always` revives a container stopped by hand when the engine restarts.
    await h.host(1).setRestartPolicy('ingest', 'always');
    const { outcome } = await h.release('v2');
    assert.equal(outcome.status, 'succeeded');
    const calls = effectCalls(h.host(1));
    const update = calls.indexOf('update ingest-previous-' + calls.find((c) => c.startsWith('rename ingest ingest-previous-'))!.split('ingest-previous-')[1] + ' restart=no');
    assert.ok(update >= 0, calls.join(', '));
    assert.ok(update < calls.findIndex((c) => c.startsWith('stop ')), `the policy is changed before the stop: ${calls.join(', ')}`);
  });
  it('leaves the kept copy its policy when it is unless-stopped (never revived once stopped by hand), and puts it back live with no policy call', async () => {
    const h = harness({ hosts: 1, rollout: { policy: { startCheckSeconds: 0, minHealthy: 0 } } });
    await h.host(1).setRestartPolicy('ingest', 'unless-stopped');
    h.host(1).calls.length = 0;
    const { outcome, recorded } = await h.release('v2');
    assert.equal(outcome.status, 'succeeded');
    const kept = 'ingest-previous-' + recorded.releaseId.slice(0, 8);
    assert.ok(!effectCalls(h.host(1)).some((c) => c.startsWith(`update ${kept}`)), effectCalls(h.host(1)).join(', '));
    assert.ok(effectCalls(h.host(1)).includes(`stop ${kept}`));

    // One not running when it is stopped is not marked stopped by hand: unless-stopped would revive it.
    const h3 = harness({ hosts: 1, rollout: { policy: { startCheckSeconds: 0, minHealthy: 0 } } });
    await h3.host(1).setRestartPolicy('ingest', 'unless-stopped');
    await h3.host(1).stop('ingest');
    h3.host(1).calls.length = 0;
    await h3.release('v2');
    // Not live before the release, it is set aside as a displaced copy: with policy no all the same.
    assert.ok(effectCalls(h3.host(1)).some((c) => /^update ingest-displaced-\S+ restart=no$/.test(c)), effectCalls(h3.host(1)).join(', '));

    // Going back to it: started under its name, its policy already the configured one.
    const h2 = harness({ hosts: 1, rollout: { policy: { startCheckSeconds: 0, minHealthy: 0 } } });
    await h2.host(1).setRestartPolicy('ingest', 'unless-stopped');
    h2.host(1).calls.length = 0;
    h2.host(1).behaviour = (image) => (image.endsWith(':v2') ? 'exits' : 'healthy');
    const back = await h2.release('v2');
    assert.equal(back.outcome.status, 'rolled-back');
    assert.deepEqual(h2.host(1).live(), ['ingest:127.0.0.1:5000/data/ingest:v1']);
    const calls = effectCalls(h2.host(1));
    const previous = 'ingest-previous-' + back.recorded.releaseId.slice(0, 8);
    // Once the new container is removed, the kept one is renamed and started: no policy call.
    assert.deepEqual(calls.slice(calls.indexOf('remove ingest')), ['remove ingest', `rename ${previous} ingest`, 'start ingest'], calls.join(', '));
  });

  it('ends the restore of a group deleted during the release: the release fails, naming the group and the processes left suspended, and the resume is not tried again', async () => {
    const h = harness({ groups: { 'asg-a': [] } });
    // What AWS answers ResumeProcesses on a group that no longer exists.
    h.refuseResumes(1_000, () => Object.assign(new Error("AutoScalingGroup name not found - AutoScalingGroup 'asg-a' not found"), { name: 'ValidationError', $fault: 'client', $metadata: { httpStatusCode: 400 } }));
    const { outcome, recorded } = await h.release('v2');
    assert.equal(outcome.status, 'failed');
    assert.equal(recorded.record.status, 'failed');
    assert.equal(h.calls.filter((c) => c.startsWith('resume ')).length, 1, 'tried once, not again');
    assert.equal(recorded.record.scaling['asg-a']!.phase, 'left');
    assert.equal(recorded.record.pending, undefined);
    const left = recorded.record.attention!.find((a) => a.includes('asg-a'));
    assert.match(left ?? '', /resuming AZRebalance, HealthCheck, ReplaceUnhealthy, ScheduledActions, Terminate on Auto Scaling group asg-a failed for good/);
    assert.match((outcome as { reason: string }).reason, /^restore: every host was released, but Auto Scaling or alarms could not be put back/);
    assert.ok(h.posted.some((m) => /^NEEDS ATTENTION on data\/ingest\/staging: not put back .*AZRebalance, HealthCheck, ReplaceUnhealthy, ScheduledActions, Terminate on Auto Scaling group asg-a/.test(m.text)), h.posted.map((m) => m.text).join('\n'));
    assert.match(h.posted.at(-1)!.text, /failed at restore: .*NEEDS ATTENTION: .*asg-a/);
    assert.deepEqual([...h.rules.keys()], [], 'the alarms are unmuted all the same');
  });

  it('stops retrying a pending restore when the worker is asked to stop, and keeps it pending in the record for the next start', async () => {
    const h = harness();
    h.refuseResumes(1_000);
    const stop = new AbortController();
    h.posted.push = ((original) =>
      function (this: unknown, ...messages: Parameters<typeof original>) {
        // Asked to stop as soon as the restore is said to be pending.
        if (messages.some((m) => m.text.startsWith('Needs attention on'))) stop.abort();
        return original.apply(h.posted, messages);
      })(h.posted.push);
    const { outcome, recorded } = await h.release('v2', { stopRequested: stop.signal });
    assert.equal(outcome.status, 'interrupted');
    assert.match((outcome as { reason: string }).reason, /restores pending: resuming .* on Auto Scaling group asg-a: resume-auto-scaling: Rate exceeded/);
    assert.equal(recorded.record.status, 'running', 'not finished: the next start carries it on');
    assert.ok(recorded.record.pending!.length > 0);
    assert.equal(h.calls.filter((c) => c.startsWith('resume ')).length, 1);
  });
  it('waits for a load balancer reading that lags a deregistration, instead of deregistering again and failing the host', async () => {
    const h = harness({ hosts: 1, rollout: { policy: { startCheckSeconds: 0, minHealthy: 0 } } });
    // For a while after the call, the load balancer still reports the host as it was.
    h.lbs.afterDeregister = () => [...Array<Membership>(8).fill('in-service'), 'out'];
    const { outcome } = await h.release('v2');
    assert.equal(outcome.status, 'succeeded', JSON.stringify(outcome));
    assert.deepEqual(h.lbs.calls.filter((c) => c.startsWith('deregister ')), ['deregister web i-1'], 'deregistered once');
    assert.deepEqual(h.host(1).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
  });

  it('waits for a load balancer reading that lags a registration, instead of registering again and failing the host', async () => {
    const h = harness({ hosts: 1, rollout: { policy: { startCheckSeconds: 0, minHealthy: 0 } } });
    h.lbs.afterRegister = () => [...Array<Membership>(8).fill('out'), 'in-service'];
    const { outcome } = await h.release('v2');
    assert.equal(outcome.status, 'succeeded', JSON.stringify(outcome));
    assert.deepEqual(h.lbs.calls.filter((c) => c.startsWith('register ')), ['register web i-1'], 'registered once');
  });

  it("takes the in-service timeout from the load balancers' own health check settings (interval x healthy threshold) plus a margin when it is not configured", async () => {
    const h = harness({ hosts: 1, rollout: { loadBalancers: { classic: ['web'], drainTimeoutSeconds: 0 }, policy: { startCheckSeconds: 0, minHealthy: 0 } } });
    // A health check every 10 s, healthy after 5 passes.
    h.lbs.timingsFor = { drainingSeconds: 0, healthCheckSeconds: 50 };
    const { outcome, recorded } = await h.release('v2');
    assert.equal(outcome.status, 'succeeded');
    assert.equal(recorded.record.plan!.inServiceTimeoutMs, (50 + 30) * 1000);
  });
});

describe('a release held by the test hold hook (test/support/hold-point.ts)', () => {
  const held = (spec: string) => {
    const { logger, lines } = capturingLogger();
    return {
      journal: holdPointJournal(spec, logger, () => undefined)!,
      reached: () => lines.some((l) => l.msg === 'test hold reached'),
      endedFor: () => lines.find((l) => l.msg === 'test hold ended; the release goes on')?.why,
    };
  };

  it('yields to a stop request: the held host is made whole and the release stops at its safe point', { timeout: 20_000 }, async () => {
    const hold = held('h1:stop-old:end');
    const h = harness({ hosts: 2, journal: hold.journal });
    const stop = new AbortController();
    const running = h.release('v2', { stopRequested: stop.signal });
    await eventually('the hold', hold.reached, 10_000);
    stop.abort();
    const { outcome } = await running;
    assert.equal(hold.endedFor(), 'stop requested');
    assert.equal(outcome.status, 'interrupted');
    assert.deepEqual(h.host(1).live(), ['ingest:127.0.0.1:5000/data/ingest:v2']);
    assert.deepEqual(h.host(2).live(), ['ingest:127.0.0.1:5000/data/ingest:v1']);
    assert.deepEqual(h.suspended, { 'asg-a': [] });
  });

  it('yields to lease loss: the held step does not run and the release ends at once', { timeout: 20_000 }, async () => {
    const hold = held('h1:stop-old:begin');
    const h = harness({ hosts: 2, journal: hold.journal });
    const lost = new AbortController();
    const running = h.release('v2', { leaseLost: lost.signal });
    await eventually('the hold', hold.reached, 10_000);
    lost.abort(new Error('lease lost to another worker'));
    await assert.rejects(running, /lease lost to another worker/);
    assert.deepEqual(h.host(1).live(), ['ingest:127.0.0.1:5000/data/ingest:v1'], 'the old container was not stopped');
  });

  it('yields to the release deadline (policy.releaseTimeoutMinutes): the hold ends and the release reaches its end', { timeout: 20_000 }, async () => {
    const hold = held('-:mute-alarms:end');
    const h = harness({ hosts: 2, journal: hold.journal, releaseTimeoutMs: 300 });
    const { outcome } = await h.release('v2');
    assert.equal(hold.endedFor(), 'deadline');
    // How the hosts then fare against their own deadline (counted from a moment later) is the runner's
    // affair: the release reached an end, and Auto Scaling and alarms are restored.
    assert.ok(['succeeded', 'rolled-back', 'failed'].includes(outcome.status), JSON.stringify(outcome));
    assert.deepEqual(h.suspended, { 'asg-a': [] });
    assert.deepEqual([...h.rules.keys()], []);
  });
});
