import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import type { ContainerInfo, HostSession } from '../../src/host/host-session.js';
import type { LoadBalancers, Membership } from '../../src/loadbalancer/load-balancers.js';
import { containerSpec } from '../../src/rollout/container-spec.js';
import { swapHost, type HostContext } from '../../src/rollout/host-procedures.js';
import type { HostStep } from '../../src/rollout/plan.js';
import { createStepRunner } from '../../src/rollout/step-runner.js';
import { capturingLogger, workerConfigObject } from '../support/worker-fixtures.js';

// Draining and in-service timing as AWS gives it and moto cannot: a classic ELB reads InService
// while it drains, and a load balancer may take its time to report a host in service. Scripted
// load balancers, a scripted host, and no health or smoke step: nothing here touches a network.

const settings = (() => {
  const object = workerConfigObject('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }) as Record<string, any>;
  object.ssh = { user: 'root', privateKey: { env: 'K' }, knownHostsFile: '/dev/null' };
  object.releases[0].rollout = { container: { name: 'app' }, health: { port: 1, intervalMs: 50, timeoutSeconds: 2 } };
  return parseWorkerConfig(stringify(object)).releases[0]!.rollout!;
})();

/** A load balancer whose membership readings are scripted per call after each (de)registration. */
function scriptedLoadBalancer(afterDeregister: Membership[], afterRegister: Membership[]) {
  let script: Membership[] = ['in-service'];
  const readings: Membership[] = [];
  const lb: LoadBalancers = {
    async register() {
      script = [...afterRegister];
    },
    async deregister() {
      script = [...afterDeregister];
    },
    async membership() {
      const reading = script.length > 1 ? script.shift()! : script[0]!;
      readings.push(reading);
      return reading;
    },
    timings: async () => ({ drainingSeconds: 1, healthCheckSeconds: 1 }),
    targetGroupArn: async (name) => name,
  };
  return { lb, readings };
}

function scriptedHost(): HostSession {
  const containers = new Map<string, ContainerInfo>([['app', { id: 'old', name: 'app', image: 'v1', running: true, health: 'none', labels: {}, createdAt: '1' }]]);
  const find = (key: string) => [...containers.values()].find((c) => c.id === key || c.name === key);
  return {
    address: '10.0.0.1',
    ping: async () => ({ engineId: 'e' }),
    pull: async () => undefined,
    inspect: async (key) => find(key),
    list: async () => [...containers.values()],
    async rename(key, name) {
      const c = find(key)!;
      containers.delete(c.name);
      containers.set(name, { ...c, name });
    },
    async stop(key) {
      const c = find(key)!;
      containers.set(c.name, { ...c, running: false });
    },
    async start(key) {
      const c = find(key)!;
      containers.set(c.name, { ...c, running: true });
    },
    async run(spec) {
      containers.set(spec.name, { id: 'new', name: spec.name, image: spec.image, running: true, health: 'healthy', labels: spec.labels, createdAt: '2' });
      return 'new';
    },
    remove: async (key) => void containers.delete(find(key)?.name ?? key),
    close: async () => undefined,
  };
}

function context(lb: LoadBalancers, timeouts: { drainMs: number; inServiceMs: number }): HostContext {
  const { logger } = capturingLogger();
  return {
    host: { instanceId: 'i-1', address: '10.0.0.1', name: 'h1' },
    session: scriptedHost(),
    loadBalancers: [{ kind: 'classic', id: 'web' }],
    lb,
    settings,
    spec: containerSpec(settings, { image: 'reg/app:v2', target: 'a/b/c', releaseId: '11111111-2222-3333-4444-555555555555', requestedBy: 'ci' }),
    previousName: 'app-previous-11111111',
    drainTimeoutMs: timeouts.drainMs,
    inServiceTimeoutMs: timeouts.inServiceMs,
    run: createStepRunner(logger),
    pollMs: 20,
  };
}

const steps: HostStep[] = ['deregister', 'drain', 'stop-old', 'start-new', 'register', 'wait-in-service'];

describe('waiting for the load balancers', () => {
  it('keeps the old container serving while a classic ELB still reads InService during draining', async () => {
    const { lb, readings } = scriptedLoadBalancer(['in-service', 'in-service', 'in-service', 'out'], ['out', 'in-service']);
    const ctx = context(lb, { drainMs: 5_000, inServiceMs: 5_000 });
    const stoppedAt: number[] = [];
    const stop = ctx.session.stop.bind(ctx.session);
    ctx.session.stop = async (key, timeout) => {
      stoppedAt.push(readings.length);
      return stop(key, timeout);
    };
    await swapHost(ctx, steps, new Set(), () => undefined);
    assert.deepEqual(readings.slice(0, 4), ['in-service', 'in-service', 'in-service', 'out']);
    assert.deepEqual(stoppedAt, [4], 'the old container was stopped only after the load balancer read out');
  });

  it('continues after the draining timeout, when the load balancer has cut connections itself, and says so', async () => {
    const { lb } = scriptedLoadBalancer(['draining'], ['in-service']);
    const warnings: string[] = [];
    const started = Date.now();
    await swapHost(context(lb, { drainMs: 300, inServiceMs: 5_000 }), steps, new Set(), (w) => warnings.push(w));
    assert.ok(Date.now() - started >= 300);
    assert.match(warnings[0]!, /draining did not end within 0 s \(last: elb\/web draining\); the load balancers' draining timeout has passed, continuing/);
  });

  it('fails the host when the load balancer never reports it in service within the timeout', async () => {
    const { lb } = scriptedLoadBalancer(['out'], ['pending']);
    const reached = new Set<HostStep>();
    await assert.rejects(swapHost(context(lb, { drainMs: 1_000, inServiceMs: 300 }), steps, reached, () => undefined), (error: Error & { step?: string }) => {
      assert.equal(error.step, 'wait-in-service');
      assert.match(error.message, /load balancers did not report the host in service within 0 s \(last: elb\/web pending\)/);
      return true;
    });
    assert.ok(reached.has('register'), 'the failure knows the host was registered, so rollback takes it out first');
  });
});
