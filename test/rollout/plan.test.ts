import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostsFor, planRelease, type PlanFacts, type PlanPolicy } from '../../src/rollout/plan.js';

const hosts = (n: number) => Array.from({ length: n }, (_, i) => ({ instanceId: `i-${i + 1}`, address: `10.0.0.${i + 1}` }));
const facts = (n: number, extra: Partial<PlanFacts> = {}): PlanFacts => ({
  hosts: hosts(n),
  loadBalancers: [{ kind: 'classic', id: 'web' }, { kind: 'target-group', id: 'arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/web/1' }],
  autoScalingGroups: [{ name: 'web-asg', suspended: [] }],
  alarms: [],
  ...extra,
});
const policy = (extra: Partial<PlanPolicy> = {}): PlanPolicy => ({ batchSize: 1, suspendProcesses: ['AZRebalance', 'HealthCheck', 'Terminate'], smoke: false, onFailure: 'host', ...extra });
const ids = (plan: { batches: ReadonlyArray<ReadonlyArray<{ instanceId: string }>> }) => plan.batches.map((b) => b.map((h) => h.instanceId));

describe('planning a release', () => {
  it('takes one host at a time by default, through every step', () => {
    const result = planRelease(facts(3), policy());
    assert.ok(result.ok);
    assert.deepEqual(ids(result.plan), [['i-1'], ['i-2'], ['i-3']]);
    assert.deepEqual(result.plan.hostSteps, ['deregister', 'drain', 'stop-old', 'start-new', 'wait-healthy', 'register', 'wait-in-service']);
    assert.equal(result.plan.minHealthy, 2);
  });

  it('batches by count or share, never below the minimum healthy', () => {
    const shared = planRelease(facts(10), policy({ batchSize: '25%' }));
    assert.ok(shared.ok);
    assert.deepEqual(shared.plan.batches.map((b) => b.length), [3, 3, 3, 1]);
    const limited = planRelease(facts(4), policy({ batchSize: 3, minHealthy: '75%' }));
    assert.ok(limited.ok);
    assert.equal(limited.plan.batchSize, 1);
    assert.deepEqual(limited.plan.batches.map((b) => b.length), [1, 1, 1, 1]);
  });

  it('refuses a minimum healthy that leaves no host to release', () => {
    const result = planRelease(facts(2), policy({ minHealthy: 2 }));
    assert.equal(result.ok, false);
    assert.match((result as { reason: string }).reason, /minHealthy 2 of 2 host\(s\) leaves no host/);
  });

  it('refuses a target without instances', () => {
    assert.deepEqual(planRelease(facts(0), policy()), { ok: false, reason: 'no running instance carries the target tags' });
  });

  it('suspends only what is not already suspended, and mutes only enabled alarms', () => {
    const result = planRelease(
      facts(2, {
        autoScalingGroups: [{ name: 'a', suspended: ['HealthCheck', 'Launch'] }, { name: 'b', suspended: [] }],
        alarms: [{ name: 'errors', actionsEnabled: true }, { name: 'latency', actionsEnabled: false }],
      }),
      policy(),
    );
    assert.ok(result.ok);
    assert.deepEqual(result.plan.suspend, { a: ['AZRebalance', 'Terminate'], b: ['AZRebalance', 'HealthCheck', 'Terminate'] });
    assert.deepEqual(result.plan.muteAlarms, ['errors']);
  });

  it('adds the smoke check when configured, and skips load balancer steps without load balancers', () => {
    const result = planRelease(facts(1, { loadBalancers: [] }), policy({ smoke: true }));
    assert.ok(result.ok);
    assert.deepEqual(result.plan.hostSteps, ['stop-old', 'start-new', 'wait-healthy', 'smoke']);
  });

  it('reads shares as at least one host', () => {
    assert.equal(hostsFor('10%', 3), 1);
    assert.equal(hostsFor('50%', 3), 2);
    assert.equal(hostsFor(2, 3), 2);
  });
});
