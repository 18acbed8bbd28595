import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import { createLogger } from '../../src/log/logger.js';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import { containerSpec } from '../../src/rollout/container-spec.js';
import { refreshPlan } from '../../src/rollout/plan-cache.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { RecordedRelease } from '../../src/state/recorded-release.js';
import type { HostRecord, RecordedPlan } from '../../src/state/release-record.js';
import type { ResolvedTarget } from '../../src/rollout/release-runner.js';
import { validRequest } from '../support/requests.js';
import { signedRecord } from '../support/signed-records.js';
import { workerConfigObject } from '../support/worker-fixtures.js';

// A release taken up with a recorded plan: how the container runs, the release task and the policy
// come from the configuration, and each host's address from EC2, whatever the record says.

const object = workerConfigObject('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }) as Record<string, any>;
object.ssh = { user: 'root', privateKey: { env: 'K' }, knownHostsFile: '/dev/null' };
object.releases[0].rollout = {
  container: { name: 'ingest', ports: ['8080:8080'], volumes: ['/dev/log:/dev/log'] },
  health: { port: 8080 },
  releaseTask: { command: ['bin/migrate'] },
  policy: { batchSize: 1, minHealthy: 1 },
};
const releaseConfig = parseWorkerConfig(stringify(object)).releases[0]!;
const settings = releaseConfig.rollout!;
const log = createLogger({ level: 'silent' });

const host = (n: number, progress: HostRecord['progress'] = 'pending'): HostRecord => ({ instanceId: `i-${n}`, address: `10.0.0.${n}`, before: { registeredIn: [], live: null }, progress });

async function recorded(plan: (honest: RecordedPlan) => RecordedPlan, hosts: HostRecord[]) {
  const request = validRequest() as unknown as ReleaseRequest;
  const record = signedRecord({ request, target: 'data/ingest/staging', deployment: 'staging', now: new Date(), worker: 'w' });
  const spec = containerSpec(settings, { image: request.image, target: record.target, releaseId: record.releaseId, requestedBy: request.requestedBy });
  const honest: RecordedPlan = { settings, spec, loadBalancers: [], batches: hosts.map((h) => [h.instanceId]), batchSize: 1, minHealthy: 1, onFailure: 'host', drainTimeoutMs: 5_000, inServiceTimeoutMs: 30_000 };
  const store = new MemoryReleaseStore();
  const { record: stored } = await store.claim({ ...record, status: 'running', plan: plan(honest), hosts: Object.fromEntries(hosts.map((h) => [h.instanceId, h])) });
  return { release: new RecordedRelease(store, stored), honest, store };
}

/** The target as resolving it gives it now: its instances, one classic load balancer, one group, one alarm. */
const finder = (instances: Array<{ instanceId: string; address: string }>) => async (): Promise<ResolvedTarget> => ({
  target: 'data/ingest/staging',
  hosts: instances,
  loadBalancers: [{ kind: 'classic', id: 'web-staging' }],
  groups: [{ name: 'asg-staging', suspended: [], loadBalancerNames: [], targetGroupArns: [] } as unknown as ResolvedTarget['groups'][number]],
  alarms: [{ name: 'errors-staging', actionsEnabled: true }],
  watched: ['errors-staging'],
});

describe('the recorded plan is a cache of the configuration', () => {
  it('a container spec, release task and policy written into the record give way to the configuration', async () => {
    const { release, honest } = await recorded(
      (p) => ({
        ...p,
        spec: { ...p.spec, image: 'evil.example/root:latest', volumes: ['/:/host'], environmentSources: { TOKEN: { file: '/etc/harbormaster/ssh/id' } } } as RecordedPlan['spec'],
        settings: { ...p.settings, releaseTask: { ...p.settings.releaseTask!, command: ['sh', '-c', 'touch /host/owned'] } },
        minHealthy: 0,
        batchSize: 5,
      }),
      [host(1), host(2)],
    );
    await refreshPlan(release, releaseConfig, finder([{ instanceId: 'i-1', address: '10.0.0.1' }, { instanceId: 'i-2', address: '10.0.0.2' }]), log);
    const plan = release.record.plan!;
    assert.deepEqual(plan.spec, honest.spec, 'the spec is the one the configuration gives');
    assert.deepEqual(plan.settings.releaseTask?.command, ['bin/migrate']);
    assert.equal(plan.minHealthy, 1, 'never below what the configuration asks');
    assert.equal(plan.batchSize, 1);
  });

  it("each host's address is EC2's, and a host the target does not have is dropped before it is touched, whatever the record says of it", async () => {
    const { release } = await recorded((p) => p, [{ ...host(1), address: '10.9.9.9' }, host(2), host(3, 'in-progress')]);
    await refreshPlan(release, releaseConfig, finder([{ instanceId: 'i-1', address: '10.0.0.1' }]), log);
    const hosts = release.record.hosts;
    assert.equal(hosts['i-1']!.address, '10.0.0.1');
    assert.equal(hosts['i-2']!.progress, 'gone', 'pending, and no instance of the target: dropped');
    assert.equal(hosts['i-3']!.progress, 'gone', 'in progress as the record says, but no instance of the target: never connected to');
    assert.match(hosts['i-3']!.attention ?? '', /not an instance of data\/ingest\/staging/);
  });

  it('load balancers, Auto Scaling groups and alarms the target does not have are dropped; one the release already suspended stays, to be put back', async () => {
    const { release } = await recorded(
      (p) => ({ ...p, loadBalancers: [{ kind: 'classic', id: 'web-staging' }, { kind: 'target-group', id: 'arn:production' }] }),
      [{ ...host(1), before: { registeredIn: ['classic:web-staging', 'target-group:arn:production'], live: null } }],
    );
    await release.update((draft) => {
      draft.scaling = { 'asg-staging': { before: [], suspend: ['Launch'], phase: 'planned' }, 'asg-production': { before: [], suspend: ['Launch'], phase: 'planned' }, 'asg-other': { before: [], suspend: ['Launch'], phase: 'suspended' } };
      draft.alarms = { mode: 'disable-actions', names: ['errors-staging', 'errors-production'], disable: ['errors-staging', 'errors-production'], phase: 'planned' };
    });
    await refreshPlan(release, releaseConfig, finder([{ instanceId: 'i-1', address: '10.0.0.1' }]), log);
    const { plan, hosts, scaling, alarms } = release.record;
    assert.deepEqual(plan!.loadBalancers, [{ kind: 'classic', id: 'web-staging' }]);
    assert.deepEqual(hosts['i-1']!.before.registeredIn, ['classic:web-staging'], 'put back only where the target is');
    assert.deepEqual(Object.keys(scaling).sort(), ['asg-other', 'asg-staging'], 'an untouched group the target does not have is dropped; a suspended one stays to be resumed');
    assert.deepEqual([alarms!.names, alarms!.disable], [['errors-staging'], ['errors-staging']]);
  });

  it('writes nothing when the record agrees with the configuration and EC2', async () => {
    const { release, store } = await recorded((p) => p, [host(1)]);
    const before = (await store.get(release.releaseId))!.revision;
    await refreshPlan(release, releaseConfig, finder([{ instanceId: 'i-1', address: '10.0.0.1' }]), log);
    assert.equal((await store.get(release.releaseId))!.revision, before);
  });
});
