import { silentChat } from '../../src/chat/chat.js';
import { parseWorkerConfig, type WorkerConfig } from '../../src/config/worker-config.js';
import type { AlarmMuteRules, MuteRule } from '../../src/alarms/alarm-mute-rules.js';
import { newReleaseRequest } from '../../src/request/release-request.js';
import { ReleaseRunner } from '../../src/rollout/release-runner.js';
import { newReleaseRecord } from '../../src/state/release-record.js';
import type { ReleaseStore } from '../../src/state/release-store.js';
import { ReleaseScheduler, type TakeResult } from '../../src/worker/release-scheduler.js';
import { stringify } from 'yaml';
import { SimulatedConnector, SimulatedHost, SimulatedLoadBalancers, simulatedProbe } from './simulated-fleet.js';
import { capturingLogger, REGISTRY, workerConfigObject } from './worker-fixtures.js';
import { signedRecord, vouchWithTestKey } from './signed-records.js';
import { takeRollbackRequests } from '../../src/worker/rollback-requests.js';
import type { ReleaseHistory } from '../../src/state/target-summary.js';
import type { ReleaseRecord } from '../../src/state/release-record.js';

// Releases made by the real engine (ReleaseScheduler and ReleaseRunner, leases and records in a real
// store) on simulated hosts: staging has three hosts, alice's personal deployment one, integration
// none (so a release there is refused). An image tagged `bad` never gets healthy: its release rolls back.

export const IMAGE = (tag: string) => `${REGISTRY}/data/ingest:${tag}`;

const DEPLOYMENT_HOSTS: Record<string, string[]> = { staging: ['10.0.0.1', '10.0.0.2', '10.0.0.3'], 'personal-alice': ['10.0.1.1'], integration: [] };

/** The worker configuration object the releases run under; `state` picks the store. */
export function simulatedConfigObject(endpoint: string, state: Record<string, unknown> = { store: 'file' }): Record<string, any> {
  const object = workerConfigObject(endpoint, { url: `${endpoint}/q`, deadLetterUrl: `${endpoint}/d` }, { state }) as Record<string, any>;
  object.ssh = { user: 'root', privateKey: { env: 'K' }, knownHostsFile: '/dev/null' };
  object.releases[0].rollout = {
    container: { name: 'ingest', ports: ['8080:8080'] },
    health: { port: 8080, intervalMs: 50, timeoutSeconds: 1, waitForDocker: true },
    loadBalancers: { classic: ['web-{deployment}'], drainTimeoutSeconds: 0, inServiceTimeoutSeconds: 2 },
    autoScaling: { groups: ['asg-{deployment}'], discover: false },
    alarms: [],
    policy: { startCheckSeconds: 0, onFailure: 'all', rollbackRetrySeconds: 10 },
  };
  return object;
}

export function simulatedFleet(config: WorkerConfig = parseWorkerConfig(stringify(simulatedConfigObject('http://127.0.0.1:1')))) {
  const hosts = new Map<string, SimulatedHost>();
  for (const [deployment, addresses] of Object.entries(DEPLOYMENT_HOSTS)) {
    for (const address of addresses) hosts.set(address, new SimulatedHost(address, { image: IMAGE('v1'), name: 'ingest', labels: { 'harbormaster.target': `data/ingest/${deployment}` } }));
  }
  for (const host of hosts.values()) host.behaviour = (image) => (image.endsWith(':bad') ? 'unhealthy' : 'healthy');
  const idOf = (address: string) => `i-${address.replaceAll('.', '-')}`;
  const lbs = new SimulatedLoadBalancers([...hosts.keys()].map(idOf));
  const suspended = new Map<string, string[]>();
  const rules = new Map<string, MuteRule>();
  const muteRules: AlarmMuteRules = {
    mute: async (rule) => void rules.set(rule.name, rule),
    unmute: async (name) => void rules.delete(name),
    read: async (name) => {
      const rule = rules.get(name);
      return rule && { alarms: [...rule.alarms], start: rule.start, expiresAt: rule.until };
    },
  };
  const runner = new ReleaseRunner({
    instances: { find: async (tags) => (DEPLOYMENT_HOSTS[tags.deployment] ?? []).map((address, i) => ({ instanceId: idOf(address), address, name: `${tags.deployment.slice(0, 1)}${i + 1}`, zone: 'eu-west-1a' })) },
    loadBalancers: lbs,
    autoScaling: {
      describe: async (group) => ({ name: group, suspended: [...(suspended.get(group) ?? [])], loadBalancerNames: [], targetGroupArns: [] }),
      suspend: async (group, processes) => void suspended.set(group, [...new Set([...(suspended.get(group) ?? []), ...processes])]),
      resume: async (group, processes) => void suspended.set(group, (suspended.get(group) ?? []).filter((p) => !processes.includes(p))),
      groupsOf: async () => [],
    },
    alarms: { actionsEnabled: async (names) => new Map(names.map((n) => [n, true])), disable: async () => undefined, enable: async () => undefined, states: async (names) => new Map(names.map((n) => [n, { state: 'OK' as const, reason: '' }])) },
    muteRules,
    connector: new SimulatedConnector(hosts),
    reconnectBackoffMs: 20,
    chat: silentChat,
    registryAuth: () => undefined,
    probe: simulatedProbe(hosts),
    pollMs: 20,
    rollbackRetryMs: 500,
    restoreBackoff: { minMs: 20, maxMs: 100 },
    muteWindowMs: 60_000,
  });

  /** Claims a release of `tag` to `deployment`, as a worker does when it accepts the request. */
  async function claim(store: ReleaseStore, deployment: string, tag: string, requestedBy = 'ci-bot'): Promise<string> {
    const user = /^personal-(.+)$/.exec(deployment)?.[1];
    const target = user ? { stack: 'data', release: 'ingest', personal: { user, feature: 'ops' } } : { stack: 'data', release: 'ingest', deployment };
    const built = newReleaseRequest({ target, image: IMAGE(tag), requestedBy, source: { branch: 'main', commit: Buffer.from(tag).toString('hex').padEnd(12, '0'), buildUrl: `https://ci.example.com/build/${tag}` } });
    if (!built.ok) throw new Error(built.reason);
    await store.claim(signedRecord({ request: built.value, target: `data/ingest/${deployment}`, deployment, now: new Date(), worker: 'test-worker' }));
    return built.value.releaseId;
  }

  /** Takes a claimed release through the scheduler (lease, newest-wins, the runner), as a worker does. */
  function take(store: ReleaseStore, releaseId: string): Promise<TakeResult> {
    const scheduler = new ReleaseScheduler({ store, rollout: runner, vouch: vouchWithTestKey(config.releases, (id) => store.get(id)), logger: capturingLogger().logger, workerId: 'test-worker', leaseMs: 30_000, parallel: 2, stopRequested: new AbortController().signal });
    return scheduler.take(releaseId, capturingLogger().logger, 'new');
  }

  async function release(store: ReleaseStore, deployment: string, tag: string, requestedBy = 'ci-bot'): Promise<{ releaseId: string; taken: TakeResult }> {
    const releaseId = await claim(store, deployment, tag, requestedBy);
    return { releaseId, taken: await take(store, releaseId) };
  }

  /** The worker's sweep of rollback requests (rollback-requests.ts): the releases it claimed. */
  function takeRollbacks(store: ReleaseStore & Pick<ReleaseHistory, 'recent'>): Promise<ReleaseRecord[]> {
    return takeRollbackRequests({ store, releases: config.releases, logger: capturingLogger().logger, workerId: 'test-worker' });
  }

  return { hosts, lbs, runner, claim, take, takeRollbacks, release, idOf };
}
