import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AlarmActions } from '../../src/alarms/alarm-actions.js';
import type { AutoScaling } from '../../src/autoscaling/process-suspension.js';
import type { Chat, ChatMessage } from '../../src/chat/chat.js';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import type { HostConnector } from '../../src/host/host-session.js';
import type { LoadBalancers } from '../../src/loadbalancer/load-balancers.js';
import { ReleaseRunner } from '../../src/rollout/release-runner.js';
import { stringify } from 'yaml';
import { capturingLogger, workerConfigObject } from '../support/worker-fixtures.js';
import { signed, validRequest } from '../support/requests.js';
import { judgeMessage } from '../../src/request/acceptance.js';
import { TEST_KEY } from '../support/worker-fixtures.js';

// The executor's promise that Auto Scaling and alarms are put back exactly, checked where a real
// server cannot be made to fail on cue: a suspension that fails halfway.

const config = (() => {
  const object = workerConfigObject('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }) as Record<string, any>;
  object.ssh = { user: 'root', privateKey: { env: 'K' }, knownHostsFile: '/dev/null' };
  object.releases[0].rollout = {
    container: { name: 'ingest', ports: ['8080:8080'] },
    health: { port: 8080 },
    autoScaling: { groups: ['asg-a', 'asg-b'], discover: false },
    alarms: ['errors', 'latency'],
    policy: { startCheckSeconds: 0 },
  };
  return parseWorkerConfig(stringify(object));
})();

function accepted() {
  const verdict = judgeMessage(signed(validRequest()), { keys: new Map([[TEST_KEY.id, TEST_KEY]]), releases: config.releases, maxAgeSeconds: 60 }, new Date());
  assert.ok(verdict.ok);
  return verdict.release;
}

describe('the release runner restores what it changed', () => {
  it('resumes exactly the processes it suspended or tried to, when suspending a second group fails, and touches no host', async () => {
    const calls: string[] = [];
    const suspended: Record<string, string[]> = { 'asg-a': ['Launch'], 'asg-b': [] };
    const autoScaling: AutoScaling = {
      async describe(group) {
        return { name: group, suspended: [...suspended[group]!], loadBalancerNames: [], targetGroupArns: [] };
      },
      async suspend(group, processes) {
        calls.push(`suspend ${group} ${processes.join(',')}`);
        if (group === 'asg-b') throw new Error('AccessDenied');
        suspended[group]!.push(...processes);
      },
      async resume(group, processes) {
        calls.push(`resume ${group} ${processes.join(',')}`);
        suspended[group] = suspended[group]!.filter((p) => !processes.includes(p));
      },
      async groupsOf() {
        return [];
      },
    };
    const alarms: AlarmActions = {
      async actionsEnabled(names) {
        return new Map(names.map((n) => [n, n === 'errors']));
      },
      async disable(names) {
        calls.push(`disable ${names.join(',')}`);
      },
      async enable(names) {
        calls.push(`enable ${names.join(',')}`);
      },
    };
    const hostCalls: string[] = [];
    const connector: HostConnector = {
      async connect(address) {
        return {
          address,
          ping: async () => ({ engineId: address }),
          pull: async (image) => void hostCalls.push(`pull ${image}`),
          inspect: async () => undefined,
          list: async () => [],
          rename: async () => void hostCalls.push('rename'),
          stop: async () => void hostCalls.push('stop'),
          start: async () => void hostCalls.push('start'),
          run: async () => (hostCalls.push('run'), 'id'),
          remove: async () => void hostCalls.push('remove'),
          close: async () => undefined,
        };
      },
    };
    const lb: LoadBalancers = {
      register: async () => void hostCalls.push('register'),
      deregister: async () => void hostCalls.push('deregister'),
      membership: async () => 'in-service',
      timings: async () => ({ drainingSeconds: 0, healthCheckSeconds: 1 }),
      targetGroupArn: async (name) => name,
    };
    const posted: ChatMessage[] = [];
    const chat: Chat = { post: (m) => void posted.push(m), flush: async () => undefined };
    const runner = new ReleaseRunner({
      instances: { find: async () => [{ instanceId: 'i-1', address: '10.0.0.1' }, { instanceId: 'i-2', address: '10.0.0.2' }] },
      loadBalancers: lb,
      autoScaling,
      alarms,
      connector,
      chat,
      registryAuth: () => undefined,
    });
    const { logger } = capturingLogger();
    const outcome = await runner.run(accepted(), { logger, stopRequested: new AbortController().signal });

    assert.equal(outcome.status, 'failed');
    const wanted = 'AZRebalance,HealthCheck,ReplaceUnhealthy,ScheduledActions,Terminate';
    // asg-b's failed call is resumed too: a call that fails may still have been applied by AWS.
    assert.deepEqual(calls, [`suspend asg-a ${wanted}`, `suspend asg-b ${wanted}`, `resume asg-a ${wanted}`, `resume asg-b ${wanted}`]);
    assert.deepEqual(suspended, { 'asg-a': ['Launch'], 'asg-b': [] }, 'Launch, suspended before, stays suspended');
    assert.deepEqual(hostCalls, ['pull 127.0.0.1:5000/data/ingest:v2', 'pull 127.0.0.1:5000/data/ingest:v2'], 'no host left service');
    assert.match(posted.at(-1)!.text, /failed at prepare: suspend-auto-scaling: AccessDenied/);
  });
});
