import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient, DescribeAlarmsCommand, DisableAlarmActionsCommand, EnableAlarmActionsCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DescribeLoadBalancersCommand, ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import { DescribeTargetHealthCommand, ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import Docker from 'dockerode';
import { Client as SshClient } from 'ssh2';
import { fleetDown, fleetUp, type Fleet } from '../../local-fleet/fleet.js';
import { clientConfig } from '../../local-fleet/aws-resources.js';
import { pullImage } from '../../local-fleet/live-container.js';

// The local fleet is made of real parts: this proves each one is there and behaves, then that
// tear-down leaves nothing behind, then that a second bring-up is fast because it reuses.

const HOSTS = 3;
const log = (line: string) => console.log(`# ${line}`);

function ssh(fleet: Fleet, address: string, command: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = [
    '-i', fleet.ssh.privateKeyPath,
    '-o', `UserKnownHostsFile=${fleet.ssh.knownHostsPath}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=3',
    `${fleet.ssh.user}@${address}`,
    ...command,
  ];
  return new Promise((resolve) => {
    execFile('ssh', args, { timeout: 15_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as NodeJS.ErrnoException).code ?? 1) || 1 : 0, stdout: stdout.trim(), stderr }),
    );
  });
}

async function get(url: string): Promise<{ status: number; text: string } | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return { status: response.status, text: await response.text() };
  } catch {
    return undefined;
  }
}

// Docker's HEALTHCHECK verdict on the test images: the first check 30 s after the start, unhealthy at the first failure.
const DOCKER_VERDICT_MS = 90_000;

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Live (non-zombie) processes whose network namespace is one of `inodes`, or whose command line names a fleet path. */
function fleetProcesses(namespaceInodes: Set<string>, paths: string[], motoPort: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${entry}/stat`, 'utf8'))) continue;
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const namespace = readlinkSync(`/proc/${entry}/ns/net`);
      const isFleetMoto = cmdline.includes('moto-server.py') && cmdline.includes(`-p ${motoPort} `);
      if (namespaceInodes.has(namespace) || paths.some((path) => cmdline.includes(path)) || isFleetMoto) found.push(`${entry}: ${cmdline}`);
    } catch {
      /* exited while we looked */
    }
  }
  return found;
}

const run = (file: string, args: string[]) =>
  new Promise<string>((resolve, reject) => execFile(file, args, (error, stdout) => (error ? reject(error) : resolve(stdout))));

describe('the local fleet', { timeout: 600_000 }, () => {
  let fleet: Fleet;

  before(async () => {
    fleet = await fleetUp({ hosts: HOSTS, log });
    log(`bring-up (${HOSTS} hosts): ${fleet.bringUpMs} ms; ${JSON.stringify(fleet.bringUp)}`);
  });
  // Whatever happened in between, nothing of the fleet outlives the test file.
  after(async () => {
    await fleetDown();
  });

  it('gives every host its own engine, reached over SSH with the generated key and known_hosts', async () => {
    const ids = await Promise.all(
      fleet.hosts.map(async (host) => {
        const result = await ssh(fleet, host.address, ['docker', 'info', '--format', "'{{.ID}}'"]);
        assert.equal(result.code, 0, `ssh ${host.name}: ${result.stderr}`);
        assert.match(result.stdout, /^[A-Z0-9]{4}(:[A-Z0-9]{4}){11}$/);
        return result.stdout;
      }),
    );
    assert.equal(new Set(ids).size, HOSTS, `engine IDs must differ: ${ids.join(' ')}`);
  });

  it('lets the worker carry the Docker API over one SSH connection (stream-local forward to the engine socket)', async () => {
    const host = fleet.hosts[1]!;
    const [, type, key] = readFileSync(fleet.ssh.knownHostsPath, 'utf8').split('\n').find((line) => line.startsWith(`${host.address} `))!.split(' ');
    const answer = await new Promise<string>((resolve, reject) => {
      const connection = new SshClient();
      connection
        .on('ready', () => {
          connection.openssh_forwardOutStreamLocal(host.dockerSocket, (error, stream) => {
            if (error) return reject(error);
            let response = '';
            stream.on('data', (chunk: Buffer) => (response += chunk.toString()));
            stream.on('close', () => {
              connection.end();
              resolve(response);
            });
            stream.end('GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n');
          });
        })
        .on('error', reject)
        .connect({
          host: host.address,
          username: fleet.ssh.user,
          privateKey: readFileSync(fleet.ssh.privateKeyPath),
          readyTimeout: 5_000,
          // The host key must be the one known_hosts names for this address.
          hostVerifier: (presented: Buffer) => type === 'ssh-ed25519' && presented.equals(Buffer.from(key!, 'base64')),
        });
    });
    assert.match(answer, /^HTTP\/1\.0 200 OK/);
    assert.match(answer, /\r\n\r\nOK$/);
  });

  it('serves v1 from one labelled live container on every host, answering on /health', async () => {
    for (const host of fleet.hosts) {
      const version = await get(`http://${host.address}:8080/version`);
      assert.deepEqual(version, { status: 200, text: 'v1' }, host.name);
      const containers = await new Docker({ socketPath: host.dockerSocket }).listContainers({ all: true });
      assert.equal(containers.length, 1, host.name);
      assert.deepEqual(containers[0]!.Names, ['/ingest']);
      assert.equal(containers[0]!.Image, fleet.images.v1);
      // Ready when it answers (what the worker's probe asks); Docker's own verdict comes 30 s after the start.
      assert.deepEqual(await get(`http://${host.address}:8080/health`), { status: 200, text: 'ok' }, host.name);
      assert.doesNotMatch(containers[0]!.Status, /unhealthy/);
      assert.deepEqual(containers[0]!.Labels, { 'harbormaster.managed': 'true', 'harbormaster.target': host.target, 'harbormaster.image': fleet.images.v1 });
    }
  });

  it('pulls from the registry with its credentials and is refused without them', async () => {
    const docker = new Docker({ socketPath: fleet.hosts[0]!.dockerSocket });
    await pullImage(docker, fleet.images.v2, fleet.registry);
    assert.ok((await docker.getImage(fleet.images.v2).inspect()).Id);
    await assert.rejects(
      async () => pullImage(docker, fleet.images.slow, { username: fleet.registry.username, password: 'wrong' }),
      /unauthorized|authentication required|no basic auth/i,
    );
    const anonymous = await fetch(`http://${fleet.registry.address}/v2/data/ingest/tags/list`);
    assert.equal(anonymous.status, 401);
  });

  it('has test images that behave as named: v2, slow, broken, crash, and stop promptly on SIGTERM', async () => {
    const host = fleet.hosts[0]!;
    const docker = new Docker({ socketPath: host.dockerSocket });
    await Promise.all(['slow', 'broken', 'crash'].map((tag) => pullImage(docker, fleet.images[tag as 'slow'], fleet.registry)));
    const start = async (name: string, image: string, port?: number, env: string[] = []) => {
      const container = await docker.createContainer({
        name,
        Image: image,
        Env: env,
        ...(port ? { HostConfig: { PortBindings: { '8080/tcp': [{ HostPort: String(port) }] } }, ExposedPorts: { '8080/tcp': {} } } : {}),
      });
      await container.start();
      return container;
    };
    const v2 = await start('check-v2', fleet.images.v2, 8081);
    const slow = await start('check-slow', fleet.images.slow, undefined, ['SLOW_SECONDS=2']);
    const slowAtStart = (await slow.inspect()).State.Health?.Status;
    const broken = await start('check-broken', fleet.images.broken, 8082);
    const crash = await start('check-crash', fleet.images.crash);
    const health = async (container: Docker.Container) => (await container.inspect()).State.Health?.Status;

    assert.equal((await until('v2 /version', () => get(`http://${host.address}:8081/version`)))?.text, 'v2');
    await until('v2 healthy', async () => (await health(v2)) === 'healthy', DOCKER_VERDICT_MS);
    assert.equal(slowAtStart, 'starting', 'slow is not healthy at once');
    await until('slow healthy', async () => (await health(slow)) === 'healthy', DOCKER_VERDICT_MS);
    assert.equal((await until('broken answers', () => get(`http://${host.address}:8082/health`)))?.status, 404);
    await until('broken unhealthy', async () => (await health(broken)) === 'unhealthy', DOCKER_VERDICT_MS);
    const crashed = await until('crash exits', async () => {
      const state = (await crash.inspect()).State;
      return !state.Running && state.ExitCode;
    });
    assert.equal(crashed, 3);

    const stopping = Date.now();
    await v2.stop();
    assert.ok(Date.now() - stopping < 3_000, `docker stop took ${Date.now() - stopping} ms`);

    await fleet.resetHosts();
    const left = await docker.listContainers({ all: true });
    assert.deepEqual(left.map((container) => container.Names[0]), ['/ingest']);
  });

  it('has the instances in moto, found by their tags, with the hosts addresses', async () => {
    const ec2 = new EC2Client(clientConfig(fleet.aws));
    const byDeployment = async (deployment: string) => {
      const result = await ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'tag:stack', Values: ['data'] },
            { Name: 'tag:release', Values: ['ingest'] },
            { Name: 'tag:deployment', Values: [deployment] },
            { Name: 'instance-state-name', Values: ['running'] },
          ],
        }),
      );
      return (result.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => `${i.InstanceId} ${i.PrivateIpAddress}`).sort();
    };
    const expected = (deployment: string) => fleet.hosts.filter((h) => h.deployment === deployment).map((h) => `${h.instanceId} ${h.address}`).sort();
    assert.deepEqual(await byDeployment('staging'), expected('staging'));
    assert.deepEqual(await byDeployment('personal-alice'), expected('personal-alice'));
    assert.equal(expected('staging').length, HOSTS - 1);
    assert.equal(expected('personal-alice').length, 1);
    ec2.destroy();
  });

  it('registers the staging instances with the classic ELB, the target group and the Auto Scaling group', async () => {
    const config = clientConfig(fleet.aws);
    const staging = [...fleet.aws.stagingInstanceIds].sort();
    const elb = new ElasticLoadBalancingClient(config);
    const classic = await elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [fleet.aws.classicLoadBalancer] }));
    assert.deepEqual(classic.LoadBalancerDescriptions![0]!.Instances!.map((i) => i.InstanceId).sort(), staging);
    const elbv2 = new ElasticLoadBalancingV2Client(config);
    const targets = await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: fleet.aws.targetGroupArn }));
    assert.deepEqual(targets.TargetHealthDescriptions!.map((t) => t.Target!.Id).sort(), staging);
    const autoscaling = new AutoScalingClient(config);
    const groups = await autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [fleet.aws.autoScalingGroup] }));
    assert.deepEqual(groups.AutoScalingGroups![0]!.Instances!.map((i) => i.InstanceId).sort(), staging);
    assert.equal(groups.AutoScalingGroups![0]!.DesiredCapacity, staging.length);
    for (const client of [elb, elbv2, autoscaling]) client.destroy();
  });

  it('has alarms with actions enabled, and muting and unmuting them works', async () => {
    const cloudwatch = new CloudWatchClient(clientConfig(fleet.aws));
    const enabled = async () =>
      Object.fromEntries(((await cloudwatch.send(new DescribeAlarmsCommand({ AlarmNames: fleet.aws.alarmNames }))).MetricAlarms ?? []).map((a) => [a.AlarmName, a.ActionsEnabled]));
    assert.deepEqual(await enabled(), { 'data-ingest-staging-5xx': true, 'data-ingest-staging-latency': true });
    await cloudwatch.send(new DisableAlarmActionsCommand({ AlarmNames: fleet.aws.alarmNames }));
    assert.deepEqual(await enabled(), { 'data-ingest-staging-5xx': false, 'data-ingest-staging-latency': false });
    await cloudwatch.send(new EnableAlarmActionsCommand({ AlarmNames: fleet.aws.alarmNames }));
    assert.deepEqual(await enabled(), { 'data-ingest-staging-5xx': true, 'data-ingest-staging-latency': true });
    cloudwatch.destroy();
  });

  it('has the release queue with its dead-letter queue', async () => {
    const sqs = new SQSClient(clientConfig(fleet.aws));
    const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: fleet.aws.deadLetterUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn;
    const attributes = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: fleet.aws.queueUrl, AttributeNames: ['RedrivePolicy'] }))).Attributes!;
    assert.equal(JSON.parse(attributes.RedrivePolicy!).deadLetterTargetArn, dlqArn);
    sqs.destroy();
  });

  it('recreates every AWS resource on resetAws()', async () => {
    const before = fleet.aws.instanceIds;
    const aws = await fleet.resetAws();
    assert.equal(aws.instanceIds.length, HOSTS);
    assert.notDeepEqual(aws.instanceIds, before);
    assert.deepEqual(fleet.hosts.map((h) => h.instanceId), aws.instanceIds);
  });

  it('records chat posts in order and fails or rate-limits on demand', async () => {
    const post = (text: string) => fetch(fleet.chat.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
    fleet.chat.clear();
    assert.equal((await post('release started')).status, 200);
    fleet.chat.rateLimit(7);
    const limited = await post('too fast');
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '7');
    fleet.chat.fail();
    assert.equal((await post('broken')).status, 500);
    fleet.chat.recover();
    assert.equal((await post('release done')).status, 200);
    assert.deepEqual(fleet.chat.messages().map((m) => m.text), ['release started', 'release done']);
  });

  it('injects faults on demand and resetHosts() mends them', async () => {
    const [h1, h2, h3] = fleet.hosts;
    await fleet.faults.stopSsh(h1!);
    assert.notEqual((await ssh(fleet, h1!.address, ['true'])).code, 0);
    await fleet.faults.startSsh(h1!);
    assert.equal((await ssh(fleet, h1!.address, ['true'])).code, 0);

    await fleet.faults.cutNetwork(h2!);
    assert.equal(await get(`http://${h2!.address}:8080/version`), undefined);
    await fleet.faults.restoreNetwork(h2!);
    assert.equal((await until('h2 answers again', () => get(`http://${h2!.address}:8080/version`)))?.text, 'v1');

    await fleet.faults.stopDocker(h3!);
    assert.equal(await get(`http://${h3!.address}:8080/version`), undefined);
    await fleet.faults.startDocker(h3!);
    // unless-stopped: the live container comes back with its engine.
    assert.equal((await until('h3 container back', () => get(`http://${h3!.address}:8080/version`)))?.text, 'v1');

    await fleet.faults.registryRefuse(true);
    await assert.rejects(async () => pullImage(new Docker({ socketPath: h1!.dockerSocket }), fleet.images.v1, fleet.registry), /unauthorized|authentication/i);
    await fleet.faults.registryRefuse(false);
    await pullImage(new Docker({ socketPath: h1!.dockerSocket }), fleet.images.v1, fleet.registry);

    await fleet.faults.cutNetwork(h1!);
    await fleet.resetHosts();
    for (const host of fleet.hosts) assert.equal((await get(`http://${host.address}:8080/version`))?.text, 'v1');
  });

  it('tears down leaving no process, namespace, link or mount, and comes back fast', async () => {
    const namespaceInodes = new Set(fleet.hosts.map((_, i) => `net:[${statSync(`/run/netns/hm-h${i + 1}`).ino}]`));
    const motoPort = new URL(fleet.aws.endpoint).port;
    const started = Date.now();
    await fleetDown();
    log(`tear-down: ${Date.now() - started} ms`);

    assert.deepEqual(fleetProcesses(namespaceInodes, [fleet.runDir, fleet.stateDir], motoPort), []);
    assert.equal((await run('ip', ['netns', 'list'])).split('\n').filter((line) => line.startsWith('hm-')).length, 0);
    const links = (await run('ip', ['-o', 'link', 'show'])).split('\n').map((line) => line.split(':')[1]?.trim() ?? '');
    assert.deepEqual(links.filter((name) => name.startsWith('hmbr') || name.startsWith('hmv')), []);
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((line) => line.split(' ')[1] ?? '');
    assert.deepEqual(mounts.filter((m) => m.startsWith(fleet.runDir) || m.startsWith(fleet.stateDir) || m.includes('/netns/hm-')), []);
    // Containers have their own network namespaces; their cgroups (under the fleet's parent) must be gone too.
    const cgroups = readdirSync('/sys/fs/cgroup').filter((hierarchy) => {
      try {
        return statSync(`/sys/fs/cgroup/${hierarchy}/harbormaster-fleet`).isDirectory();
      } catch {
        return false;
      }
    });
    assert.deepEqual(cgroups, []);

    const again = await fleetUp({ hosts: HOSTS, log });
    log(`second bring-up after tear-down (${HOSTS} hosts): ${again.bringUpMs} ms (first: ${fleet.bringUpMs} ms); ${JSON.stringify(again.bringUp)}`);
    assert.deepEqual(again.bringUp.imagesBuilt, []);
    assert.ok(again.bringUpMs < 30_000, `second bring-up took ${again.bringUpMs} ms`);
    for (const host of again.hosts) assert.equal((await get(`http://${host.address}:8080/version`))?.text, 'v1');
    fleet = again;
  });
});
