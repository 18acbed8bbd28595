import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostsView } from '../../src/cli/ops/hosts-view.js';
import { observeHosts } from '../../src/cli/ops/observe-hosts.js';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { stringify } from 'yaml';
import { SimulatedConnector, simulatedProbe } from '../support/simulated-fleet.js';
import { IMAGE, simulatedConfigObject, simulatedFleet } from '../support/simulated-release.js';

// What `hosts` reads from each host, on simulated hosts after a release the real engine made: the live
// container and its release, the copies kept for rollback, every load balancer's view, the HTTP check,
// and a host whose engine cannot be reached. (test/cli/ops-on-fleet.test.ts reads real hosts.)

describe('observing a target\'s hosts', () => {
  it('finds every host on the current release after it succeeded, with the previous container kept, and marks a host that drifted or cannot be read', async () => {
    const config = parseWorkerConfig(stringify(simulatedConfigObject('http://127.0.0.1:1')));
    const fleet = simulatedFleet(config);
    const store = new MemoryReleaseStore();
    const { releaseId, taken } = await fleet.release(store, 'staging', 'v2');
    assert.equal(taken.status === 'ended' && taken.outcome.status, 'succeeded');
    const record = (await store.get(releaseId))!;
    const current = (await store.targetSummaries()).find((s) => s.target === 'data/ingest/staging')!.current!;
    const staging = Object.values(record.hosts).map((h) => ({ instanceId: h.instanceId, address: h.address, ...(h.name ? { name: h.name } : {}), zone: 'eu-west-1a' }));
    const connector = new SimulatedConnector(fleet.hosts);
    const input = { target: 'data/ingest/staging', hosts: staging, loadBalancers: record.plan!.loadBalancers, settings: config.releases[0]!.rollout!, connectTimeoutMs: 1_000, containers: true };
    const effects = { loadBalancers: fleet.lbs, connector, probe: simulatedProbe(fleet.hosts) };

    const facts = await observeHosts(effects, input);
    assert.deepEqual(facts.map((f) => [f.instanceId, f.live?.image, f.live?.releaseId, f.unreachable, f.check?.ok]), staging.map((h) => [h.instanceId, IMAGE('v2'), releaseId, null, true]));
    assert.deepEqual(facts.map((f) => f.balancers), staging.map(() => [{ loadBalancer: 'elb/web-staging', membership: 'in-service' }]));
    assert.deepEqual(facts.map((f) => f.kept.map((k) => k.image)), staging.map(() => [IMAGE('v1')]), 'the previous container is kept for rollback');
    assert.deepEqual(hostsView('data/ingest/staging', current, facts, new Date()).hosts.map((h) => h.matches), ['current', 'current', 'current']);

    // Someone replaces the live container on the second host by hand; the third host's sshd is down.
    const second = fleet.hosts.get(staging[1]!.address)!;
    await second.remove('ingest');
    await second.run({ name: 'ingest', image: IMAGE('hotfix'), ports: [], environment: {}, volumes: [], restartPolicy: 'no', labels: {}, stopTimeoutSeconds: 1 });
    connector.refusing.set(staging[2]!.address, 10);
    const later = hostsView('data/ingest/staging', current, await observeHosts(effects, input), new Date());
    assert.deepEqual(later.hosts.map((h) => h.matches), ['current', 'drifted', 'unknown']);
    assert.match(later.hosts[2]!.unreachable!, /ECONNREFUSED/);

    // Without --ssh: what the load balancers and the HTTP check say, no host connected to.
    const refusingAll = { ...effects, connector: { connect: async () => assert.fail('no SSH connection without --ssh') } };
    const unread = hostsView('data/ingest/staging', current, await observeHosts(refusingAll, { ...input, containers: false }), new Date());
    assert.deepEqual(unread.hosts.map((h) => [h.matches, h.live, h.containersRead, h.check?.ok]), staging.map(() => ['not-read', null, false, true]));
    assert.deepEqual(unread.hosts.map((h) => h.balancers), staging.map(() => [{ loadBalancer: 'elb/web-staging', membership: 'in-service' }]));
  });
});
