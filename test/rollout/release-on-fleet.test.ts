import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ResumeProcessesCommand, SuspendProcessesCommand } from '@aws-sdk/client-auto-scaling';
import { DisableAlarmActionsCommand, EnableAlarmActionsCommand } from '@aws-sdk/client-cloudwatch';
import Docker from 'dockerode';
import type { Fleet } from '../../local-fleet/fleet.js';
import { fleetForSuite } from '../support/fleet-suite.js';
import { requestRefused } from '../../src/chat/release-messages.js';
import { createChat, createRollout } from '../../src/rollout/create-rollout.js';
import type { RolloutOutcome } from '../../src/rollout/rollout.js';
import type { StepJournal } from '../../src/rollout/step-runner.js';
import { FileReleaseStore } from '../../src/state/file-release-store.js';
import { isFinal } from '../../src/state/release-record.js';
import { queueDepth, sqsClient } from '../support/aws.js';
import { runCli } from '../support/cli.js';
import { fleetWorkerConfig, fleetWorkerEnvironment, writeFleetWorkerConfig } from '../support/fleet-release.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answer, FleetObserver, startSampler, type SamplerReport } from '../support/fleet-observer.js';
import { DescribeLoadBalancersCommand } from '@aws-sdk/client-elastic-load-balancing';
import { capturingLogger, enqueueEnvironment, eventually, withWorker } from '../support/worker-fixtures.js';

// Real releases on the local fleet: requests enqueued by the CLI, consumed by the worker, rolled out
// over SSH to real engines, with moto's load balancers, Auto Scaling and alarms, and chat over HTTP.
// Four hosts: h1..h3 are the staging target, h4 is alice's personal deployment.

describe('releases on the local fleet', () => {
  const suite = fleetForSuite({ hosts: 4 });
  let fleet: Fleet;
  let observer: FleetObserver;
  before(() => {
    ({ fleet, observer } = suite);
  });
  beforeEach(async () => {
    await fleet.resetHosts();
    fleet.chat.recover();
    fleet.chat.clear();
  });

  interface ReleaseRun {
    outcome: RolloutOutcome;
    releaseId: string;
    lines: Array<Record<string, unknown>>;
    sampled: SamplerReport;
  }

  async function release(tag: string, options: { policy?: Record<string, unknown>; journal?: StepJournal; branch?: string } = {}): Promise<ReleaseRun> {
    const config = fleetWorkerConfig(fleet, {}, options.policy);
    const env = fleetWorkerEnvironment(fleet);
    const { logger, lines } = capturingLogger();
    const chat = createChat(config, logger, env);
    const wiring = createRollout(config, logger, chat, env, { pollMs: 100, ...(options.journal ? { journal: options.journal } : {}) });
    let outcome: RolloutOutcome | undefined;
    const rollout = { run: async (...args: Parameters<typeof wiring.runner.run>) => (outcome = await wiring.runner.run(...args)) };
    const sampler = startSampler(observer, fleet);
    const enqueued = await runCli(
      ['enqueue', '--queue-url', fleet.aws.queueUrl, '--stack', 'data', '--release', 'ingest', ...(options.branch ? ['--branch', options.branch] : ['--deployment', 'staging']), '--image', `${fleet.registry.address}/data/ingest:${tag}`, '--requested-by', 'ci-bot'],
      { ...enqueueEnvironment(fleet.aws.endpoint), AWS_ACCESS_KEY_ID: fleet.aws.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: fleet.aws.credentials.secretAccessKey },
    );
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const releaseId = enqueued.stdout.trim();
    try {
      await withWorker(config, { rollout, logger, env, onRefused: (n) => chat.post(requestRefused(n)) }, async () => {
        const store = new FileReleaseStore(config.stateDirectory);
        await eventually(`release ${releaseId} to finish`, async () => {
          const record = await store.get(releaseId);
          return record !== undefined && isFinal(record.status);
        }, 120_000);
      });
    } finally {
      wiring.close();
    }
    const sampled = await sampler.stop();
    await chat.flush(5_000);
    return { outcome: outcome!, releaseId, lines, sampled };
  }

  const staging = () => observer.stagingHosts.map((h) => h.instanceId).sort();

  async function assertFleetWhole(expected: Record<string, string>, before: { suspended: string[]; alarms: Record<string, boolean>; muteRules: string[] }) {
    assert.deepEqual(await observer.versions(), expected);
    assert.deepEqual(await observer.classicMembers(), staging(), 'every staging host is registered with the classic ELB');
    assert.deepEqual(await observer.targetGroupMembers(), staging(), 'every staging host is healthy in the target group');
    assert.deepEqual(await observer.suspendedProcesses(), before.suspended, 'Auto Scaling processes as before');
    assert.deepEqual(await observer.alarmActions(), before.alarms, 'alarm actions as before');
    assert.deepEqual(await observer.muteRules(), before.muteRules, 'alarm mute rules as before: the release left none');
    // Exactly one live container per host.
    for (const host of observer.stagingHosts) {
      const running = await new Docker({ socketPath: host.dockerSocket }).listContainers({ filters: { label: ['harbormaster.target=data/ingest/staging'] } });
      assert.equal(running.length, 1, `${host.name} runs ${running.length} live containers`);
    }
  }

  async function stateBefore() {
    return { suspended: await observer.suspendedProcesses(), alarms: await observer.alarmActions(), muteRules: await observer.muteRules() };
  }

  const chatTexts = () => fleet.chat.messages().map((m) => m.text);

  it('releases v2 to every staging host with zero downtime and restores Auto Scaling and alarms', async () => {
    const before = await stateBefore();
    const personalBefore = await fetch(`http://${fleet.hosts[3]!.address}:8080/version`).then((r) => r.text());
    const run = await release('v2');
    assert.deepEqual(run.outcome, { status: 'succeeded', hosts: 3 });
    await assertFleetWhole({ h1: 'v2', h2: 'v2', h3: 'v2' }, before);
    assert.equal((await fetch(`http://${fleet.hosts[3]!.address}:8080/version`).then((r) => r.text())).trim(), personalBefore.trim(), 'the personal deployment is untouched');
    assert.deepEqual(await queueDepth(sqsClient(fleet.aws.endpoint), fleet.aws.queueUrl), { visible: 0, inFlight: 0 });

    // Zero downtime, measured.
    assert.ok(run.sampled.samples > 10, `only ${run.sampled.samples} samples`);
    assert.deepEqual(run.sampled.unhealthyRegistered, []);
    assert.equal(run.sampled.maxOutOfService, 1);

    // During the release, Auto Scaling and alarms were suspended and muted (the steps ran, in order).
    const steps = run.lines.filter((l) => l.msg === 'step done').map((l) => `${l.host ?? '-'}:${l.step}`);
    assert.ok(steps.indexOf('-:suspend-auto-scaling') < steps.indexOf('h1:deregister'));
    assert.ok(steps.indexOf('-:mute-alarms') < steps.indexOf('h1:deregister'));
    assert.ok(steps.indexOf('h3:wait-in-service') < steps.indexOf('-:resume-auto-scaling'));
    assert.ok(steps.filter((s) => s.endsWith(':pull')).length === 3 && steps.lastIndexOf('h3:pull') < steps.indexOf('h1:deregister'), 'pulled everywhere before any host left service');

    const texts = chatTexts();
    assert.match(texts[0]!, /^Releasing .*v2 to data\/ingest\/staging on 3 hosts \(requested by ci-bot\)/);
    assert.equal(texts.filter((t) => / host \d\/3 .* done /.test(t)).length, 3);
    assert.match(texts.at(-1)!, /^Released .*v2 to data\/ingest\/staging: 3 hosts in /);
  });

  /** A fault for the second host: its copy of the image is replaced by `broken` once the first host starts. */
  function breakImageOnSecondHostLater(tag: string): StepJournal {
    let done = false;
    return {
      async begin({ host, step }) {
        if (done || host !== 'h1' || step !== 'deregister') return;
        done = true;
        const docker = new Docker({ socketPath: fleet.hosts[1]!.dockerSocket });
        const auth = { username: fleet.registry.username, password: fleet.registry.password, serveraddress: fleet.registry.address };
        const stream = await docker.pull(fleet.images.broken, { authconfig: auth });
        await new Promise((resolve, reject) => docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(undefined))));
        await docker.getImage(fleet.images.broken).tag({ repo: `${fleet.registry.address}/data/ingest`, tag });
      },
      end() {},
    };
  }

  it('puts a failing second host back on v1, never touches the third, and reports it', async () => {
    const before = await stateBefore();
    const thirdBefore = await new Docker({ socketPath: fleet.hosts[2]!.dockerSocket }).getContainer('ingest').inspect();
    const run = await release('v2', { journal: breakImageOnSecondHostLater('v2') });
    assert.equal(run.outcome.status, 'rolled-back');
    assert.match((run.outcome as { reason: string }).reason, /^h2: wait-healthy: /);
    await assertFleetWhole({ h1: 'v2', h2: 'v1', h3: 'v1' }, before);
    const thirdAfter = await new Docker({ socketPath: fleet.hosts[2]!.dockerSocket }).getContainer('ingest').inspect();
    assert.equal(thirdAfter.Id, thirdBefore.Id, 'the third host was never touched');
    assert.deepEqual(run.sampled.unhealthyRegistered, []);
    assert.ok(run.sampled.maxOutOfService <= 1);
    const failure = chatTexts().find((t) => t.startsWith('Release of'));
    assert.match(failure!, /failed on h2 at wait-healthy: .*; rolled back 1 host/);
  });

  it('with policy all, rolls every host back to v1 when the second fails', async () => {
    const before = await stateBefore();
    const run = await release('v2', { journal: breakImageOnSecondHostLater('v2'), policy: { onFailure: 'all' } });
    assert.equal(run.outcome.status, 'rolled-back');
    await assertFleetWhole({ h1: 'v1', h2: 'v1', h3: 'v1' }, before);
    assert.deepEqual(run.sampled.unhealthyRegistered, []);
    assert.match(chatTexts().find((t) => t.startsWith('Release of'))!, /rolled back 2 hosts/);
  });

  it('puts the first host back on v1 when the image never becomes healthy (broken)', async () => {
    const before = await stateBefore();
    const run = await release('broken');
    assert.equal(run.outcome.status, 'rolled-back');
    assert.match((run.outcome as { reason: string }).reason, /^h1: wait-healthy: .*(HEALTHCHECK reports unhealthy|did not become healthy)/);
    await assertFleetWhole({ h1: 'v1', h2: 'v1', h3: 'v1' }, before);
    assert.deepEqual(run.sampled.unhealthyRegistered, []);
  });

  for (const [name, tag, fault, reason] of [
    // The start check is opt-in (policy.startCheckSeconds), on for this case.
    ['an image that crashes at start', 'crash', undefined, /exits at start with code/],
    ['an image that cannot be pulled', 'v404', undefined, /preflight failed, nothing was changed: .*h1: /],
    ['a host whose SSH is down', 'v2', 'ssh', /preflight failed, nothing was changed: h2: /],
  ] as const) {
    it(`refuses ${name} at preflight: nothing leaves service`, async () => {
      const before = await stateBefore();
      if (fault === 'ssh') await fleet.faults.stopSsh('h2');
      // A host that does not answer is waited for (policy.hostRetrySeconds, short here), then named.
      const run = await release(tag, tag === 'crash' ? { policy: { startCheckSeconds: 2 } } : fault === 'ssh' ? { policy: { hostRetrySeconds: 4 } } : {});
      if (fault === 'ssh') await fleet.faults.startSsh('h2');
      if (fault === 'ssh') assert.ok(chatTexts().some((t) => /: h2 does not answer for now at connect \(.*unreachable.*\); trying again for up to 4\.0 s$/.test(t)), chatTexts().join('\n'));
      assert.equal(run.outcome.status, 'refused');
      assert.match((run.outcome as { reason: string }).reason, reason);
      assert.equal(run.sampled.maxOutOfService, 0);
      assert.ok(!run.lines.some((l) => l.step === 'deregister' || l.step === 'suspend-auto-scaling'));
      await assertFleetWhole({ h1: 'v1', h2: 'v1', h3: 'v1' }, before);
      assert.match(chatTexts().at(-1)!, /refused|Refused/);
    });
  }

  it('succeeds while chat is down, and chat gets every message once it is back', async () => {
    fleet.chat.fail();
    setTimeout(() => fleet.chat.recover(), 6_000);
    const run = await release('v2');
    assert.equal(run.outcome.status, 'succeeded');
    await eventually('chat to receive the success', () => chatTexts().some((t) => t.startsWith('Released ')), 60_000);
    const texts = chatTexts();
    assert.ok(texts[0]!.startsWith('Releasing '));
    assert.equal(new Set(texts).size, texts.length, 'no message delivered twice');
  });

  it('leaves Auto Scaling processes and alarms that were already suspended or muted as they were', async () => {
    const asg = fleet.aws.autoScalingGroup;
    const [muted, ...others] = fleet.aws.alarmNames;
    await observer.autoScaling.send(new SuspendProcessesCommand({ AutoScalingGroupName: asg, ScalingProcesses: ['HealthCheck', 'Launch'] }));
    await observer.cloudWatch.send(new DisableAlarmActionsCommand({ AlarmNames: [muted!] }));
    try {
      const before = await stateBefore();
      assert.deepEqual(before.suspended, ['HealthCheck', 'Launch']);
      const run = await release('v2');
      assert.equal(run.outcome.status, 'succeeded');
      await assertFleetWhole({ h1: 'v2', h2: 'v2', h3: 'v2' }, before);
      assert.equal((await observer.alarmActions())[muted!], false);
      for (const other of others) assert.equal((await observer.alarmActions())[other], true);
    } finally {
      await observer.autoScaling.send(new ResumeProcessesCommand({ AutoScalingGroupName: asg, ScalingProcesses: ['HealthCheck', 'Launch'] }));
      await observer.cloudWatch.send(new EnableAlarmActionsCommand({ AlarmNames: [muted!] }));
    }
  });

  it('`harbormaster plan` prints what a release would do, host by host, and changes nothing', async () => {
    const before = await stateBefore();
    const config = join(mkdtempSync(join(tmpdir(), 'harbormaster-plan-')), 'worker.yml');
    writeFleetWorkerConfig(fleet, config);
    const args = ['plan', '--config', config, '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', `${fleet.registry.address}/data/ingest:v2`];
    const planned = await runCli(args, fleetWorkerEnvironment(fleet));
    assert.equal(planned.code, 0, planned.stderr);
    assert.match(planned.stdout, /^release .*ingest:v2 to data\/ingest\/staging\n/);
    assert.match(planned.stdout, /3 host\(s\) in 3 batch\(es\) of at most 1; at least 2 stay in service/);
    for (const host of observer.stagingHosts) {
      assert.match(planned.stdout, new RegExp(`batch \\d: ${host.instanceId} ${host.address.replaceAll('.', '\\.')} \\(${host.name}\\): deregister -> drain -> stop-old -> start-new -> wait-healthy -> smoke -> register -> wait-in-service`));
      assert.match(planned.stdout, new RegExp(`preflight ${host.name}: engine ok`));
    }
    assert.match(planned.stdout, /preflight passed; nothing was changed\n$/);

    await fleet.faults.stopSsh('h3');
    try {
      const refused = await runCli(args, fleetWorkerEnvironment(fleet));
      assert.equal(refused.code, 1);
      assert.match(refused.stdout, /preflight h3: connect FAILED: /);
      assert.match(refused.stdout, /preflight FAILED; a release now would be refused; nothing was changed\n$/);
    } finally {
      await fleet.faults.startSsh('h3');
    }
    await assertFleetWhole({ h1: 'v1', h2: 'v1', h3: 'v1' }, before);
    assert.deepEqual(fleet.chat.messages(), []);
  });

  it("releases a remote-run branch to that user's personal deployment only", async () => {
    const before = await stateBefore();
    const personal = fleet.aws.targets['personal-alice']!;
    const run = await release('v2', { branch: 'remote-run/alice/faster-parse' });
    assert.deepEqual(run.outcome, { status: 'succeeded', hosts: 1 });
    assert.equal(await answer(`http://${fleet.hosts[3]!.address}:8080/version`), 'v2');
    // Staging untouched, and alice's host back in her own load balancers (found through {deployment}).
    await assertFleetWhole({ h1: 'v1', h2: 'v1', h3: 'v1' }, before);
    const members = await observer.elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [personal.classicLoadBalancer] }));
    assert.deepEqual(members.LoadBalancerDescriptions?.[0]?.Instances?.map((i) => i.InstanceId), personal.instanceIds);
    assert.match(chatTexts()[0]!, /to data\/ingest\/personal-alice on 1 host/);
  });
});
