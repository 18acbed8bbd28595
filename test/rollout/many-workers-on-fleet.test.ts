import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DescribeAutoScalingGroupsCommand, AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient, DescribeAlarmsCommand, ListAlarmMuteRulesCommand } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeLoadBalancersCommand, ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import { DescribeTargetHealthCommand, ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { fleetUp, type Fleet } from '../../local-fleet/fleet.js';
import { DynamoReleaseStore } from '../../src/state/dynamodb-release-store.js';
import { isFinal } from '../../src/state/release-record.js';
import { queueDepth, sendRaw, sqsClient } from '../support/aws.js';
import { fleetWorkerEnvironment } from '../support/fleet-release.js';
import { answer } from '../support/fleet-observer.js';
import { releaseIdOf, signedRequest, writeSharedWorkerConfig } from '../support/fleet-workers.js';
import { eventually } from '../support/worker-fixtures.js';
import { WorkerProcess, type LogLine } from '../support/worker-process.js';

// Several workers as separate processes (each its own state directory, as on separate bastions), one
// standard queue and one DynamoDB table (moto), four targets of two hosts each on the local fleet.
// What must hold: every release rolled out at most once whatever was delivered twice; releases of one
// target never overlap (a sampler every 100 ms per target: never more than the batch size out of
// service, never a registered host that does not answer healthy); every target ends on its newest
// image; a dead worker's release is taken over and finished by another.

const DEPLOYMENTS = ['staging', 'integration', 'production', 'qa'] as const;
const LEASE_SECONDS = 6;

describe('several workers, several targets', () => {
  let fleet: Fleet;
  let clients: { elb: ElasticLoadBalancingClient; elbv2: ElasticLoadBalancingV2Client; autoScaling: AutoScalingClient; cloudWatch: CloudWatchClient; dynamo: DynamoDBClient };

  before(async () => {
    fleet = await fleetUp({ hosts: 8, deployments: DEPLOYMENTS.flatMap((d) => [d, d]) });
    const settings = { endpoint: fleet.aws.endpoint, region: fleet.aws.region, credentials: fleet.aws.credentials, maxAttempts: 1 };
    clients = {
      elb: new ElasticLoadBalancingClient(settings),
      elbv2: new ElasticLoadBalancingV2Client(settings),
      autoScaling: new AutoScalingClient(settings),
      cloudWatch: new CloudWatchClient(settings),
      dynamo: new DynamoDBClient(settings),
    };
  });
  after(async () => {
    if (clients) Object.values(clients).forEach((c) => c.destroy());
    await fleet?.resetHosts();
    fleet?.chat.stop();
  });

  const hostsOf = (deployment: string) => fleet.hosts.filter((h) => h.deployment === deployment);

  /** Per target: the hosts in service in both of its load balancers, and those registered in either. */
  async function inService(deployment: string): Promise<{ serving: string[]; registered: Set<string> }> {
    const target = fleet.aws.targets[deployment]!;
    const [classic, v2] = await Promise.all([
      clients.elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [target.classicLoadBalancer] })),
      clients.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: target.targetGroupArn })),
    ]);
    const inClassic = new Set((classic.LoadBalancerDescriptions?.[0]?.Instances ?? []).map((i) => i.InstanceId!));
    const healthy = (v2.TargetHealthDescriptions ?? []).filter((d) => d.TargetHealth?.State === 'healthy').map((d) => d.Target!.Id!);
    const inTargetGroup = (v2.TargetHealthDescriptions ?? []).filter((d) => !['draining', 'unused'].includes(d.TargetHealth?.State ?? '')).map((d) => d.Target!.Id!);
    return { serving: healthy.filter((id) => inClassic.has(id)).sort(), registered: new Set([...inClassic, ...inTargetGroup]) };
  }

  /** Every 100 ms, per target: hosts out of service, and any registered host that does not answer healthy. */
  function sampler() {
    const report = { samples: 0, maxOut: Object.fromEntries(DEPLOYMENTS.map((d) => [d, 0])) as Record<string, number>, unhealthyRegistered: [] as string[] };
    let running = true;
    const loop = (async () => {
      while (running) {
        await Promise.all(
          DEPLOYMENTS.map(async (deployment) => {
            const hosts = hostsOf(deployment);
            const { serving, registered } = await inService(deployment);
            report.maxOut[deployment] = Math.max(report.maxOut[deployment]!, hosts.length - serving.length);
            // Every host registered in either load balancer must answer healthy.
            await Promise.all(
              hosts
                .filter((h) => registered.has(h.instanceId))
                .map(async (h) => {
                  const health = await answer(`http://${h.address}:8080/health`);
                  if (health !== 'ok') report.unhealthyRegistered.push(`${h.name}: ${health}`);
                }),
            );
          }),
        );
        report.samples += 1;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return report;
      },
    };
  }

  async function targetAsBefore(deployment: string) {
    const target = fleet.aws.targets[deployment]!;
    const group = await clients.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [target.autoScalingGroup] }));
    assert.deepEqual(group.AutoScalingGroups?.[0]?.SuspendedProcesses ?? [], [], `${deployment}: Auto Scaling processes as before`);
    const alarms = await clients.cloudWatch.send(new DescribeAlarmsCommand({ AlarmNames: target.alarmNames }));
    assert.ok((alarms.MetricAlarms ?? []).every((a) => a.ActionsEnabled), `${deployment}: alarm actions as before`);
    assert.deepEqual((await inService(deployment)).serving, [...target.instanceIds].sort(), `${deployment}: every host back in both load balancers`);
  }

  const writeConfig = (directory: string, name: string) => writeSharedWorkerConfig(fleet, directory, name, { deployments: DEPLOYMENTS, leaseSeconds: LEASE_SECONDS });
  const request = (deployment: string, tag: string, createdAt: Date) => signedRequest(fleet, deployment, tag, createdAt);

  async function settle(store: DynamoReleaseStore, ids: string[]): Promise<void> {
    const sqs = sqsClient(fleet.aws.endpoint);
    try {
      await eventually(
        'every release to end and the queue to empty',
        async () => {
          const depth = await queueDepth(sqs, fleet.aws.queueUrl);
          if (depth.visible + depth.inFlight > 0) return false;
          const records = await Promise.all(ids.map((id) => store.get(id)));
          return records.every((r) => r !== undefined && isFinal(r.status));
        },
        240_000,
      );
      assert.deepEqual(await queueDepth(sqs, fleet.aws.deadLetterUrl), { visible: 0, inFlight: 0 }, 'nothing dead-lettered');
    } finally {
      sqs.destroy();
    }
  }

  for (const workerCount of [2, 3]) {
    it(`${workerCount} workers, 20 requests across 4 targets with duplicates: each release rolled out at most once, never two of one target at a time, every target on its newest image`, async (t) => {
      await fleet.resetHosts();
      await fleet.resetAws();
      fleet.chat.clear();
      const directory = mkdtempSync(join(tmpdir(), 'harbormaster-many-'));
      const env = fleetWorkerEnvironment(fleet);
      const workers = Array.from({ length: workerCount }, (_, i) => new WorkerProcess(writeConfig(directory, `worker-${i + 1}`), env));
      const store = new DynamoReleaseStore({ client: clients.dynamo, table: fleet.aws.releaseTable });
      try {
        await Promise.all(workers.map((w) => w.waitFor('polling', (l) => l.msg === 'polling for release requests')));
        const sampling = sampler();
        // Per target v2 < v3 < v4 < v5 by their signed creation time; sent in a shuffled order, one of
        // each target's requests sent twice: 16 releases, 20 messages.
        const made = Date.now() - 2_000;
        const bodies = DEPLOYMENTS.flatMap((deployment, t) => ['v2', 'v3', 'v4', 'v5'].map((tag, i) => ({ deployment, tag, body: request(deployment, tag, new Date(made + i * 200 + t)) })));
        const duplicates = DEPLOYMENTS.map((deployment, t) => bodies.find((b) => b.deployment === deployment && b.tag === ['v3', 'v4', 'v2', 'v5'][t])!);
        const messages = [...bodies, ...duplicates].map((m, i) => ({ ...m, order: (i * 7919) % 20 })).sort((a, b) => a.order - b.order);
        const sqs = sqsClient(fleet.aws.endpoint);
        for (const message of messages) {
          await sendRaw(sqs, fleet.aws.queueUrl, message.body);
          await new Promise((resolve) => setTimeout(resolve, 150));
        }
        sqs.destroy();
        const ids = bodies.map((b) => releaseIdOf(b.body));
        await settle(store, ids);
        const sampled = await sampling.stop();

        const lines: LogLine[] = workers.flatMap((w) => w.lines);
        // At most once: a host's new container is started once per release, by whichever worker.
        const starts = new Map<string, number>();
        for (const l of lines) if (l.msg === 'step started' && l.step === 'start-new') starts.set(`${String(l.releaseId)} ${String(l.host)}`, (starts.get(`${String(l.releaseId)} ${String(l.host)}`) ?? 0) + 1);
        assert.deepEqual([...starts].filter(([, count]) => count > 1), [], 'no release started a host twice');

        for (const deployment of DEPLOYMENTS) {
          const records = await Promise.all(bodies.filter((b) => b.deployment === deployment).map(async (b) => ({ tag: b.tag, record: (await store.get(releaseIdOf(b.body)))! })));
          const newest = records.find((r) => r.tag === 'v5')!;
          assert.equal(newest.record.status, 'succeeded', `${deployment}: the newest release succeeded`);
          for (const { tag, record } of records) assert.ok(record.status === 'succeeded' || record.status === 'superseded', `${deployment} ${tag}: ${record.status} ${record.reason ?? ''}`);
          for (const host of hostsOf(deployment)) assert.equal(await answer(`http://${host.address}:8080/version`), 'v5', `${deployment} ${host.name} on its newest image`);
          await targetAsBefore(deployment);
          assert.ok(sampled.maxOut[deployment]! <= 1, `${deployment}: at most the batch size out of service (saw ${sampled.maxOut[deployment]})`);
          // Succeeded releases of one target, by when their hosts were out: never overlapping.
          const spans = records
            .filter((r) => r.record.status === 'succeeded')
            .map((r) => Object.values(r.record.hosts).map((h) => [Date.parse(h.outAt!), Date.parse(h.backAt!)] as const))
            .map((hosts) => [Math.min(...hosts.map((h) => h[0])), Math.max(...hosts.map((h) => h[1]))] as const)
            .sort((a, b) => a[0] - b[0]);
          for (let i = 1; i < spans.length; i += 1) assert.ok(spans[i]![0] >= spans[i - 1]![1], `${deployment}: two releases overlapped`);
          // Newest wins, across workers: no release of the target succeeded after a newer one of it did.
          const succeeded = records.filter((r) => r.record.status === 'succeeded').sort((a, b) => Date.parse(a.record.request.createdAt) - Date.parse(b.record.request.createdAt));
          for (let i = 1; i < succeeded.length; i += 1) {
            const [older, newer] = [succeeded[i - 1]!, succeeded[i]!];
            assert.ok(Date.parse(older.record.finishedAt!) <= Date.parse(newer.record.finishedAt!), `${deployment}: ${older.tag} succeeded after the newer ${newer.tag}`);
          }
        }
        assert.ok(sampled.samples > 20, `only ${sampled.samples} samples`);
        assert.deepEqual(sampled.unhealthyRegistered, [], 'a registered host always answered healthy');
        assert.deepEqual((await clients.cloudWatch.send(new ListAlarmMuteRulesCommand({}))).AlarmMuteRuleSummaries ?? [], [], 'no mute rule left');
        const workersThatReleased = new Set(lines.filter((l) => l.msg === 'release succeeded').map((l) => l.pid));
        const statuses = (await Promise.all(ids.map((id) => store.get(id)))).map((r) => r!.status);
        t.diagnostic(`${statuses.filter((s) => s === 'succeeded').length} releases rolled out, ${statuses.filter((s) => s === 'superseded').length} superseded, by ${workersThatReleased.size} workers; ${sampled.samples} samples, most out of service per target ${JSON.stringify(sampled.maxOut)}`);
        assert.ok(workersThatReleased.size >= 2, `releases were shared between workers (${workersThatReleased.size} released)`);
      } finally {
        for (const worker of workers) assert.equal((await worker.kill('SIGTERM')).code, 0, worker.stderr);
      }
    });
  }

  it("takes over a release whose worker was SIGKILLed mid-release, once its lease has expired, and the fleet ends whole", async () => {
    await fleet.resetHosts();
    await fleet.resetAws();
    fleet.chat.clear();
    const directory = mkdtempSync(join(tmpdir(), 'harbormaster-takeover-'));
    const env = fleetWorkerEnvironment(fleet);
    const first = new WorkerProcess(writeConfig(directory, 'first'), env, { holdAt: 'h2:stop-old:end' });
    let second: WorkerProcess | undefined;
    try {
      await first.waitFor('polling', (l) => l.msg === 'polling for release requests');
      const body = request('staging', 'v3', new Date());
      const sqs = sqsClient(fleet.aws.endpoint);
      await sendRaw(sqs, fleet.aws.queueUrl, body);
      sqs.destroy();
      await first.waitFor('the hold', (l) => l.msg === 'test hold reached', 90_000);
      second = new WorkerProcess(writeConfig(directory, 'second'), env);
      await second.waitFor('polling', (l) => l.msg === 'polling for release requests');
      assert.ok(!second.lines.some((l) => l.msg === 'step started' && l.releaseId === releaseIdOf(body)), 'the lease keeps the second worker off while the first lives');
      const killedAt = Date.now();
      await first.kill('SIGKILL');

      const outcome = await second.waitFor('the release to end', (l) => l.releaseId === releaseIdOf(body) && l.msg === 'release succeeded', 120_000);
      assert.ok(Date.parse(String(outcome.time)) - killedAt < (LEASE_SECONDS * 3 + 30) * 1000);
      assert.ok(second.lines.some((l) => l.msg === 'resuming an unfinished release' && l.releaseId === releaseIdOf(body) && l.occasion === 'takeover'));
      await settle(new DynamoReleaseStore({ client: clients.dynamo, table: fleet.aws.releaseTable }), [releaseIdOf(body)]);
      for (const host of hostsOf('staging')) assert.equal(await answer(`http://${host.address}:8080/version`), 'v3');
      for (const deployment of DEPLOYMENTS) await targetAsBefore(deployment);
      assert.deepEqual((await clients.cloudWatch.send(new ListAlarmMuteRulesCommand({}))).AlarmMuteRuleSummaries ?? [], []);
      assert.ok(fleet.chat.messages().some((m) => /^Found the release of ingest:v3 to data\/ingest\/staging unfinished after its worker stopped holding it/.test(m.text)));
    } finally {
      await first.kill('SIGKILL');
      if (second) assert.equal((await second.kill('SIGTERM')).code, 0, second.stderr);
    }
  });
});
