import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateTagsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DeregisterInstancesFromLoadBalancerCommand, RegisterInstancesWithLoadBalancerCommand } from '@aws-sdk/client-elastic-load-balancing';
import { DeregisterTargetsCommand, RegisterTargetsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import Docker from 'dockerode';
import type { Fleet } from '../../local-fleet/fleet.js';
import { fleetForSuite } from '../support/fleet-suite.js';
import { answer, FleetObserver } from '../support/fleet-observer.js';
import { assertSampledSafe, assertStagingWhole, at, FAULT_SSH, fleetEngine, releaseOnFleet, type FleetEngineOptions } from '../support/fleet-engine.js';

// Faults where they happen for real on the local fleet: an engine that stops answering mid-swap, a
// host cut off during its health wait, sshd restarted between two steps, a registry that stalls during
// the pull, a host already out of service, a host that joins during the release, a host's first
// release under a failing release, a host whose SSH key changes. Each ends with the fleet whole,
// within the deadlines, and chat saying what happened. The engine runs in this process (its steps
// drive the faults through a journal), against the fleet's real engines, SSH servers and moto.

const CALL_TIMEOUT_SECONDS = FAULT_SSH.callTimeoutSeconds;

describe('faults on the local fleet', () => {
  const suite = fleetForSuite({ hosts: 4, freshEachTest: true });
  let fleet: Fleet;
  let observer: FleetObserver;
  before(() => {
    ({ fleet, observer } = suite);
  });

  const release = (tag: string, options: FleetEngineOptions = {}) => releaseOnFleet(fleet, tag, { sample: { observer }, ...options });
  const engine = (options: FleetEngineOptions = {}) => fleetEngine(fleet, options);
  const assertWhole = (versions: Record<string, string>, registered?: string[]) => assertStagingWhole(observer, versions, registered);
  const staging = () => observer.stagingHosts.map((h) => h.instanceId).sort();

  it('waits out an engine that stops answering mid-swap, within its deadlines, and finishes the release', async () => {
    const run = await release('v2', {
      journal: at('h2', 'stop-old', 'end', async () => {
        await fleet.faults.pauseDocker('h2');
        setTimeout(() => void fleet.faults.resumeDocker('h2'), 10_000);
      }),
    });
    assert.deepEqual(run.outcome, { status: 'succeeded', hosts: 3 });
    await assertWhole({ h1: 'v2', h2: 'v2', h3: 'v2' });
    assertSampledSafe(run.sampled);
    // Noticed either by the reconciler (a call past its deadline, the host tried again) or by the
    // session (the connection dropped and opened again once the engine answered a ping).
    const h2 = fleet.hosts[1]!.address;
    const noticed = run.lines.filter(
      (l) => (l.msg === 'the host cannot be reached or does not answer for now; trying again' && l.host === 'h2') || (l.msg === 'opening the SSH session again failed' && l.host === h2),
    );
    assert.ok(noticed.length > 0, 'the frozen engine was noticed');
    assert.ok(
      run.texts.some(
        (t) =>
          /^data\/ingest\/staging: h2 does not answer for now at .*no answer within 3 s.*; trying again for up to 1 min$/.test(t) ||
          new RegExp(`^${h2.replace(/\./g, '\\.')}: the SSH connection was lost \\(.*\\) and is open again after \\d attempts$`).test(t),
      ),
      run.texts.join('\n'),
    );
    assert.match(run.texts.at(-1)!, /^Released ingest:v2 to data\/ingest\/staging: 3 hosts/);
  });

  it('carries on when a host cut off during its health wait comes back', async () => {
    const run = await release('v2', {
      journal: at('h2', 'start-new', 'end', async () => {
        await fleet.faults.cutNetwork('h2');
        setTimeout(() => void fleet.faults.restoreNetwork('h2'), 8_000);
      }),
    });
    assert.deepEqual(run.outcome, { status: 'succeeded', hosts: 3 });
    await assertWhole({ h1: 'v2', h2: 'v2', h3: 'v2' });
    assertSampledSafe(run.sampled);
    // The calls on the cut-off host timed out; its connection was opened again once it was back.
    assert.ok(run.lines.some((l) => l.msg === 'opening the SSH session again failed' && l.host === fleet.hosts[1]!.address), 'the cut was noticed');
    assert.ok(run.texts.some((t) => /^10\.77\.0\.12: the SSH connection was lost \(.*\) and is open again after \d attempts$/.test(t)), run.texts.join('\n'));
  });

  it('opens the SSH session again when sshd is restarted between two steps of a swap', async () => {
    const run = await release('v2', {
      journal: at('h2', 'deregister', 'end', async () => {
        await fleet.faults.restartSsh('h2');
      }),
    });
    assert.deepEqual(run.outcome, { status: 'succeeded', hosts: 3 });
    await assertWhole({ h1: 'v2', h2: 'v2', h3: 'v2' });
    assertSampledSafe(run.sampled);
    assert.ok(run.lines.some((l) => l.msg === 'SSH session opened again' && l.host === fleet.hosts[1]!.address), 'the dropped connection was opened again');
    assert.ok(run.lines.some((l) => l.msg === 'SSH connection lost' && l.host === fleet.hosts[1]!.address), 'the restart dropped the connection');
  });

  it('refuses the release when the registry stalls during the pull for longer than hostRetrySeconds, with nothing changed', async () => {
    const run = await release('v3', {
      policy: { hostRetrySeconds: 8 },
      journal: at('h1', 'pull', 'begin', async () => {
        await fleet.faults.pauseRegistry();
      }),
    });
    await fleet.faults.resumeRegistry();
    assert.equal(run.outcome.status, 'refused');
    assert.match((run.outcome as { reason: string }).reason, /preflight failed, nothing was changed: .*no progress from the registry for 5 s|preflight failed, nothing was changed: .*no answer within 3 s/);
    assert.ok(run.texts.some((t) => /: h1 does not answer for now at pull .*; trying again for up to 8\.0 s$/.test(t)), run.texts.join('\n'));
    assert.ok(run.durationMs < 60_000, `refused within the deadlines (${run.durationMs} ms)`);
    await assertWhole({ h1: 'v1', h2: 'v1', h3: 'v1' });
    assert.match(run.texts.at(-1)!, /refused before any change/);
    assertSampledSafe(run.sampled, 0);
  });

  it('never has fewer than the minimum in service when a host is already out (deregistered by hand), and leaves that host out', async () => {
    const h3 = fleet.hosts[2]!;
    await observer.elb.send(new DeregisterInstancesFromLoadBalancerCommand({ LoadBalancerName: fleet.aws.classicLoadBalancer, Instances: [{ InstanceId: h3.instanceId }] }));
    await observer.elbv2.send(new DeregisterTargetsCommand({ TargetGroupArn: fleet.aws.targetGroupArn, Targets: [{ Id: h3.instanceId }] }));
    let fewest = 3;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [classic, v2] = await Promise.all([observer.classicMembers(), observer.targetGroupMembers()]);
        fewest = Math.min(fewest, classic.filter((id) => v2.includes(id)).length);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const run = await release('v2', { policy: { batchSize: 2, minHealthy: 1 } });
    sampling = false;
    await sampler;
    assert.deepEqual(run.outcome, { status: 'succeeded', hosts: 3 });
    assert.equal(fewest, 1, 'one host in service at the least');
    await assertWhole({ h1: 'v2', h2: 'v2', h3: 'v2' }, staging().filter((id) => id !== h3.instanceId));
    assert.ok(run.lines.some((l) => l.msg === 'batch cut down to keep policy.minHealthy in service'));
    await observer.elb.send(new RegisterInstancesWithLoadBalancerCommand({ LoadBalancerName: fleet.aws.classicLoadBalancer, Instances: [{ InstanceId: h3.instanceId }] }));
    await observer.elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: fleet.aws.targetGroupArn, Targets: [{ Id: h3.instanceId }] }));
  });

  it('releases a host that joined the target during the release too', async () => {
    const h4 = fleet.hosts[3]!;
    const ec2 = new EC2Client({ endpoint: fleet.aws.endpoint, region: fleet.aws.region, credentials: fleet.aws.credentials, maxAttempts: 1 });
    try {
      const run = await release('v2', {
        // h4 (alice's) is tagged into staging while h1 is on its way back: as if Auto Scaling launched it.
        journal: at('h1', 'register', 'end', async () => {
          await ec2.send(new CreateTagsCommand({ Resources: [h4.instanceId], Tags: [{ Key: 'deployment', Value: 'staging' }] }));
        }),
      });
      assert.deepEqual(run.outcome, { status: 'succeeded', hosts: 4 });
      assertSampledSafe(run.sampled);
      assert.equal(await answer(`http://${h4.address}:8080/version`), 'v2');
      assert.ok(run.lines.some((l) => l.msg === 'hosts joined the target during the release: releasing them too'));
      assert.match(run.texts.at(-1)!, /^Released ingest:v2 to data\/ingest\/staging: 4 hosts/);
      assert.equal(run.recorded.record.hosts[h4.instanceId]?.progress, 'released');
    } finally {
      await ec2.send(new CreateTagsCommand({ Resources: [h4.instanceId], Tags: [{ Key: 'deployment', Value: 'personal-alice' }] }));
      ec2.destroy();
    }
  });

  it("keeps a host on its first release in service when another host fails and every host is rolled back", async () => {
    // h1 has never had a container of the release: this is its first.
    const h1 = new Docker({ socketPath: fleet.hosts[0]!.dockerSocket });
    await h1.getContainer('ingest').remove({ force: true });
    const breakH2 = at('h1', 'register', 'end', async () => {
      const docker = new Docker({ socketPath: fleet.hosts[1]!.dockerSocket });
      const auth = { username: fleet.registry.username, password: fleet.registry.password, serveraddress: fleet.registry.address };
      const stream = await docker.pull(fleet.images.broken, { authconfig: auth });
      await new Promise((resolve, reject) => docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(undefined))));
      await docker.getImage(fleet.images.broken).tag({ repo: `${fleet.registry.address}/data/ingest`, tag: 'v2' });
    });
    // h1 has no container until the release starts one: the test made it so, the sampler excuses it.
    const run = await release('v2', { journal: breakH2, policy: { onFailure: 'all' }, sample: { observer, excused: new Set(['h1']) } });
    assertSampledSafe(run.sampled);
    assert.equal(run.outcome.status, 'rolled-back');
    assert.match((run.outcome as { reason: string }).reason, /^h2: wait-healthy: /);
    // h1 had nothing to go back to: it stays on what it runs, healthy, in service; h2 is back on v1.
    await assertWhole({ h1: 'v2', h2: 'v1', h3: 'v1' });
    assert.equal(run.recorded.record.hosts[fleet.hosts[0]!.instanceId]!.progress, 'kept');
    assert.match(run.texts.find((t) => t.startsWith('Release of'))!, /failed on h2 at wait-healthy: .*; rolled back 1 host$/);
  });

  it('keeps a released host whose kept copy was pruned live on the new image and in service when the release turns back with onFailure all', async () => {
    // Once h1 is released, its kept copy is pruned (a `docker container prune` cron); then h2 is broken.
    const h1 = new Docker({ socketPath: fleet.hosts[0]!.dockerSocket });
    const pruneAndBreak = at('h1', 'register', 'end', async () => {
      for (const c of await h1.listContainers({ all: true })) if (c.Names.some((n) => n.startsWith('/ingest-previous-'))) await h1.getContainer(c.Id).remove({ force: true });
      const docker = new Docker({ socketPath: fleet.hosts[1]!.dockerSocket });
      const auth = { username: fleet.registry.username, password: fleet.registry.password, serveraddress: fleet.registry.address };
      const stream = await docker.pull(fleet.images.broken, { authconfig: auth });
      await new Promise((resolve, reject) => docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(undefined))));
      await docker.getImage(fleet.images.broken).tag({ repo: `${fleet.registry.address}/data/ingest`, tag: 'v2' });
    });
    const run = await release('v2', { journal: pruneAndBreak, policy: { onFailure: 'all' } });
    assert.equal(run.outcome.status, 'failed');
    // h1 had nothing to go back to: it stays on the new image, healthy, in both load balancers; h2 is back on v1.
    await assertWhole({ h1: 'v2', h2: 'v1', h3: 'v1' });
    assert.equal(run.recorded.record.hosts[fleet.hosts[0]!.instanceId]!.progress, 'kept');
    assert.ok(run.recorded.record.attention!.some((a) => /^h1: kept on the new image: the container live before the release \(\w+\) is gone/.test(a)), run.recorded.record.attention!.join('; '));
    // The copy kept for rollback on h2 was started again: with the configured restart policy back.
    const h2 = new Docker({ socketPath: fleet.hosts[1]!.dockerSocket });
    const live = await h2.getContainer('ingest').inspect();
    assert.equal(live.HostConfig.RestartPolicy?.Name, 'unless-stopped');
  });

  it('keeps the copies it keeps for rollback stopped through an engine restart: unless-stopped ones as they are, an always one set to no', async () => {
    const docker = (name: string) => new Docker({ socketPath: fleet.hosts.find((h) => h.name === name)!.dockerSocket });
    // h3's live container is restarted by its engine even after a stop by hand: its copy needs `no`.
    await docker('h3').getContainer('ingest').update({ RestartPolicy: { Name: 'always' } });
    const run = await release('v2');
    assert.equal(run.outcome.status, 'succeeded');
    const keptOn = async (name: string) => {
      const kept = (await docker(name).listContainers({ all: true })).filter((c) => c.Names.some((n) => n.startsWith('/ingest-previous-')));
      assert.equal(kept.length, 1, `${name}: one copy kept`);
      return docker(name).getContainer(kept[0]!.Id);
    };
    assert.equal((await (await keptOn('h1')).inspect()).HostConfig.RestartPolicy?.Name, 'unless-stopped', 'h1: its policy left as it was');
    assert.equal((await (await keptOn('h3')).inspect()).HostConfig.RestartPolicy?.Name, 'no', 'h3: always became no');
    for (const name of ['h1', 'h3']) {
      await fleet.faults.stopDocker(name);
      await fleet.faults.startDocker(name);
      // The engine starts the containers it restarts just after it answers: once the live one runs,
      // and a moment more, a kept copy it would revive would run too.
      let live = await docker(name).getContainer('ingest').inspect();
      for (const until = Date.now() + 30_000; !live.State.Running && Date.now() < until; live = await docker(name).getContainer('ingest').inspect()) await new Promise((r) => setTimeout(r, 200));
      assert.equal(live.State.Running, true, `${name}: the live container came back with its engine`);
      assert.equal(live.Config.Image, fleet.images.v2);
      await new Promise((r) => setTimeout(r, 2_000));
      assert.equal((await (await keptOn(name)).inspect()).State.Running, false, `${name}: the kept copy stays stopped through the engine restart`);
    }
  });

  it("reaches a host whose SSH key changed once provisioning has written the new key into known_hosts, and refuses it until then", async () => {
    // One worker for both releases: nothing is restarted between them.
    const worker = engine();
    try {
      await fleet.faults.rotateHostKey('h2', { publish: false });
      const refused = await worker.release('v2');
      assert.equal(refused.outcome.status, 'refused');
      assert.match((refused.outcome as { reason: string }).reason, /host key of 10\.77\.0\.12 does not match known_hosts: it presented ssh-ed25519 SHA256:/);
      await assertWhole({ h1: 'v1', h2: 'v1', h3: 'v1' });

      // The documented way: provisioning writes the new key into ssh.knownHostsFile; the worker reads
      // it for every connection.
      await fleet.faults.rotateHostKey('h2', { publish: true });
      const released = await worker.release('v2');
      assert.deepEqual(released.outcome, { status: 'succeeded', hosts: 3 });
    } finally {
      worker.close();
    }
    await assertWhole({ h1: 'v2', h2: 'v2', h3: 'v2' });
  });
});
