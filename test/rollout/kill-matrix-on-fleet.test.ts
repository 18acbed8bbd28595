import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { Fleet } from '../../local-fleet/fleet.js';
import { fleetForSuite } from '../support/fleet-suite.js';
import { fleetWorkerConfigObject } from '../../local-fleet/worker-config.js';
import { queueDepth, sqsClient } from '../support/aws.js';
import { runCli } from '../support/cli.js';
import { fleetWorkerEnvironment } from '../support/fleet-release.js';
import { FleetObserver, startSampler, type SamplerReport } from '../support/fleet-observer.js';
import { SuspendProcessesCommand } from '@aws-sdk/client-auto-scaling';
import { AddTagsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { enqueueEnvironment, eventually, TEST_KEY, TEST_KEY_ENV } from '../support/worker-fixtures.js';
import { WorkerProcess, type LogLine } from '../support/worker-process.js';

// Kill it and look. The real worker (`harbormaster worker`, its own process) is held at a recorded
// boundary of a 3-host release (WorkerProcess's holdAt), the fleet is checked to be mid-change at
// that point, the worker is SIGKILLed, started again, and the whole fleet is checked once it has
// settled: every host registered as before and in service, exactly one live container on each,
// healthy, on the right image; Auto Scaling processes and alarm actions exactly as before, no mute rule
// left; chat saying what was found and how it ended; the queue empty, nothing dead-lettered.

const MAX_AGE_SECONDS = 10;

interface Case {
  readonly name: string;
  readonly tag: 'v2' | 'broken';
  readonly hold: string;
  /** What must hold at the moment of the kill: the kill lands mid-change. */
  readonly atKill: (look: Look) => Promise<void>;
  /** Restart later than signing.maxAgeSeconds after the enqueue. */
  readonly lateRestart?: boolean;
  /** Tear the release's record file before the restart. */
  readonly tearRecord?: boolean;
  /** Auto Scaling processes someone suspended before the release began: they stay suspended. */
  readonly suspendedBefore?: readonly string[];
  /** The target group reports draining and initial for these seconds, as AWS does (moto launcher). */
  readonly simulatedTiming?: string;
}

interface Look {
  readonly observer: FleetObserver;
  readonly fleet: Fleet;
  readonly h: (name: string) => string;
}

const CASES: Case[] = [
  {
    name: 'during the pre-pull',
    tag: 'v2',
    hold: 'h2:pull:begin',
    atKill: async ({ observer }) => assert.deepEqual(await observer.suspendedProcesses(), [], 'nothing changed yet'),
  },
  {
    name: 'after Auto Scaling is suspended',
    tag: 'v2',
    hold: '-:suspend-auto-scaling:end',
    atKill: async ({ observer }) => assert.ok((await observer.suspendedProcesses()).includes('Terminate')),
  },
  {
    name: 'after alarms are muted',
    tag: 'v2',
    hold: '-:mute-alarms:end',
    atKill: async ({ observer }) => assert.equal((await observer.muteRules()).length, 1),
  },
  {
    name: 'on the second host after creating the new container, before it leaves service',
    tag: 'v2',
    hold: 'h2:create-new:end',
    atKill: async ({ observer, h }) => {
      assert.ok((await observer.classicMembers()).includes(h('h2')), 'still in service');
      assert.deepEqual((await observer.liveContainers()).h2, ['ingest'], 'the created container is not started');
      assert.equal((await observer.versions()).h2, 'v1');
    },
  },
  {
    name: 'on the second host after deregistering',
    tag: 'v2',
    hold: 'h2:deregister:end',
    atKill: async ({ observer, h }) => assert.ok(!(await observer.classicMembers()).includes(h('h2'))),
  },
  {
    name: 'on the second host after stopping the old container',
    tag: 'v2',
    hold: 'h2:stop-old:end',
    atKill: async ({ observer }) => assert.deepEqual((await observer.liveContainers()).h2, []),
  },
  {
    name: 'on the second host after stopping the old container, restarted later than signing.maxAgeSeconds after the enqueue',
    tag: 'v2',
    hold: 'h2:stop-old:end',
    lateRestart: true,
    atKill: async ({ observer }) => assert.deepEqual((await observer.liveContainers()).h2, []),
  },
  {
    name: 'on the second host while it drains',
    tag: 'v2',
    hold: 'h2:drain:begin',
    simulatedTiming: 'draining=4,initial=3',
    atKill: async ({ observer, h }) => {
      assert.ok(!(await observer.classicMembers()).includes(h('h2')));
      assert.equal((await observer.versions()).h2, 'v1', 'the old container still serves while draining');
    },
  },
  {
    name: 'on the second host while it waits to be in service',
    tag: 'v2',
    hold: 'h2:wait-in-service:begin',
    simulatedTiming: 'draining=2,initial=4',
    atKill: async ({ observer, h }) => {
      assert.ok((await observer.classicMembers()).includes(h('h2')));
      assert.equal((await observer.versions()).h2, 'v2');
    },
  },
  {
    name: 'on the second host after starting the new container',
    tag: 'v2',
    hold: 'h2:start-new:end',
    atKill: async ({ observer, h }) => {
      assert.deepEqual((await observer.liveContainers()).h2, ['ingest']);
      assert.ok(!(await observer.classicMembers()).includes(h('h2')));
    },
  },
  {
    name: 'on the second host after it is healthy',
    tag: 'v2',
    // Healthy, about to be registered again. (A wait for health is journaled only when the new
    // container is not healthy at once, which the fast probe often sees.)
    hold: 'h2:register:begin',
    atKill: async ({ observer, h }) => {
      assert.equal((await observer.versions()).h2, 'v2');
      assert.ok(!(await observer.targetGroupMembers()).includes(h('h2')));
    },
  },
  {
    name: 'on the second host after registering',
    tag: 'v2',
    hold: 'h2:register:end',
    atKill: async ({ observer, h }) => assert.ok((await observer.classicMembers()).includes(h('h2'))),
  },
  {
    name: 'during the rollback of the first host when the image is broken',
    tag: 'broken',
    hold: 'h1:rollback-remove-new:end',
    atKill: async ({ observer, h }) => {
      assert.deepEqual((await observer.liveContainers()).h1, [], 'h1 has no live container at the kill');
      assert.ok(!(await observer.classicMembers()).includes(h('h1')));
    },
  },
  {
    name: 'during the rollback of the first host after starting the previous container',
    tag: 'broken',
    hold: 'h1:rollback-start-previous:end',
    atKill: async ({ observer, h }) => {
      assert.deepEqual((await observer.liveContainers()).h1, ['ingest'], 'the previous container is live again');
      assert.ok(!(await observer.classicMembers()).includes(h('h1')));
    },
  },
  {
    name: 'during the rollback of the first host after registering it again',
    tag: 'broken',
    hold: 'h1:rollback-register:end',
    atKill: async ({ observer, h }) => assert.ok((await observer.classicMembers()).includes(h('h1'))),
  },
  {
    name: 'during the restore, before Auto Scaling is resumed',
    tag: 'v2',
    hold: '-:resume-auto-scaling:begin',
    atKill: async ({ observer }) => {
      assert.equal((await observer.versions()).h3, 'v2', 'every host released');
      assert.ok((await observer.suspendedProcesses()).includes('Terminate'));
    },
  },
  {
    name: 'during the restore, after Auto Scaling is resumed and before alarms are unmuted',
    tag: 'v2',
    hold: '-:unmute-alarms:begin',
    atKill: async ({ observer }) => {
      assert.deepEqual(await observer.suspendedProcesses(), []);
      assert.equal((await observer.muteRules()).length, 1);
    },
  },
  {
    name: 'after Auto Scaling is suspended, on a target with processes suspended before the release',
    tag: 'v2',
    hold: '-:suspend-auto-scaling:end',
    suspendedBefore: ['AZRebalance', 'ScheduledActions'],
    atKill: async ({ observer }) => assert.ok((await observer.suspendedProcesses()).includes('Terminate')),
  },
  {
    name: 'on the second host after stopping the old container, with the record file torn before the restart',
    tag: 'v2',
    hold: 'h2:stop-old:end',
    tearRecord: true,
    atKill: async ({ observer }) => assert.deepEqual((await observer.liveContainers()).h2, []),
  },
];

describe('the worker killed at every recorded boundary of a release, then started again', () => {
  const suite = fleetForSuite({ hosts: 4 });
  let fleet: Fleet;
  let observer: FleetObserver;
  before(() => {
    ({ fleet, observer } = suite);
  });

  function writeConfig(stateDirectory: string): string {
    const object: Record<string, any> = fleetWorkerConfigObject(fleet, { signingKey: { id: TEST_KEY.id, env: TEST_KEY_ENV }, stateDirectory, logLevel: 'debug' });
    // Short visibility so the killed worker's message comes back soon; a short maximum age for the late restart.
    object.queue = { ...object.queue, visibilityTimeoutSeconds: 8, heartbeatSeconds: 2 };
    object.signing = { ...object.signing, maxAgeSeconds: MAX_AGE_SECONDS };
    const path = join(stateDirectory, '..', 'worker.yml');
    writeFileSync(path, stringify(object));
    return path;
  }

  async function enqueue(tag: string): Promise<string> {
    const result = await runCli(
      ['enqueue', '--queue-url', fleet.aws.queueUrl, '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', `${fleet.registry.address}/data/ingest:${tag}`, '--requested-by', 'ci-bot'],
      enqueueEnvironment(fleet.aws.endpoint),
    );
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  }

  const outcomeLine = (releaseId: string) => (line: LogLine) => line.releaseId === releaseId && typeof line.msg === 'string' && /^release (succeeded|rolled-back|failed|refused)$/.test(line.msg);

  for (const kase of CASES) {
    it(`ends whole: killed ${kase.name}`, async () => {
      await fleet.resetHosts();
      await fleet.resetAws();
      fleet.chat.recover();
      fleet.chat.clear();
      const directory = mkdtempSync(join(tmpdir(), 'harbormaster-kill-'));
      const stateDirectory = join(directory, 'state');
      const config = writeConfig(stateDirectory);
      const env = fleetWorkerEnvironment(fleet);
      if (kase.simulatedTiming) {
        await observer.elbv2.send(new AddTagsCommand({ ResourceArns: [fleet.aws.targetGroupArn], Tags: [{ Key: 'harbormaster:simulated-timing', Value: kase.simulatedTiming }] }));
      }
      if (kase.suspendedBefore) {
        await observer.autoScaling.send(new SuspendProcessesCommand({ AutoScalingGroupName: fleet.aws.autoScalingGroup, ScalingProcesses: [...kase.suspendedBefore] }));
      }
      const beforeState = { suspended: await observer.suspendedProcesses(), alarms: await observer.alarmActions() };
      if (kase.suspendedBefore) assert.deepEqual(beforeState.suspended, [...kase.suspendedBefore].sort());
      const staging = observer.stagingHosts.map((host) => host.instanceId).sort();
      const h = (name: string) => fleet.hosts.find((host) => host.name === name)!.instanceId;

      const first = new WorkerProcess(config, env, { holdAt: kase.hold });
      let second: WorkerProcess | undefined;
      // The invariants hold the whole time, across the kill and the restart, not only at the end.
      const sampler = startSampler(observer, fleet);
      let sampled: SamplerReport | undefined;
      try {
        const enqueuedAt = Date.now();
        const releaseId = await enqueue(kase.tag);
        await first.waitFor(`the hold at ${kase.hold}`, (l) => l.msg === 'test hold reached', 90_000);
        await kase.atKill({ observer, fleet, h });
        const killed = await first.kill('SIGKILL');
        assert.equal(killed.signal, 'SIGKILL');

        if (kase.lateRestart) await sleep(Math.max(0, enqueuedAt + (MAX_AGE_SECONDS + 2) * 1000 - Date.now()));
        if (kase.tearRecord) {
          const file = join(stateDirectory, 'releases', `${releaseId}.json`);
          const text = readFileSync(file, 'utf8');
          writeFileSync(file, text.slice(0, Math.floor(text.length / 2)));
        }

        second = new WorkerProcess(config, env);
        await second.waitFor('the repair at start', (l) => String(l.msg).startsWith('unfinished releases found at start'));
        const outcome = await second.waitFor('the release to end', outcomeLine(releaseId), 120_000);
        const expected = kase.tag === 'broken' ? 'release rolled-back' : 'release succeeded';
        assert.equal(outcome.msg, expected, JSON.stringify(outcome));

        // The message the killed worker held comes back, and is acknowledged from the record, never judged by its age.
        const sqs = sqsClient(fleet.aws.endpoint);
        try {
          await eventually('the queue to be empty', async () => {
            const depth = await queueDepth(sqs, fleet.aws.queueUrl);
            return depth.visible === 0 && depth.inFlight === 0;
          }, 60_000);
          assert.deepEqual(await queueDepth(sqs, fleet.aws.deadLetterUrl), { visible: 0, inFlight: 0 }, 'nothing dead-lettered');
        } finally {
          sqs.destroy();
        }
        assert.ok(!second.lines.some((l) => l.msg === 'request refused'), 'the redelivered request was not judged again');

        sampled = await sampler.stop();
        assert.ok(sampled.samples > 10, `only ${sampled.samples} samples`);
        assert.deepEqual(sampled.unhealthyRegistered, [], 'a registered host always answered healthy, across the kill');
        assert.ok(sampled.maxOutOfService <= 1, `at most one host out of service (saw ${sampled.maxOutOfService})`);

        // The whole fleet.
        const version = kase.tag === 'broken' ? 'v1' : 'v2';
        assert.deepEqual(await observer.versions(), { h1: version, h2: version, h3: version });
        assert.deepEqual(await observer.liveContainers(), { h1: ['ingest'], h2: ['ingest'], h3: ['ingest'] }, 'exactly one live container on each host');
        assert.deepEqual(await observer.classicMembers(), staging, 'every host back in the classic ELB');
        assert.deepEqual(await observer.targetGroupMembers(), staging, 'every host healthy in the target group');
        assert.deepEqual(await observer.suspendedProcesses(), beforeState.suspended, 'Auto Scaling processes as before');
        assert.deepEqual(await observer.alarmActions(), beforeState.alarms, 'alarm actions as before');
        assert.deepEqual(await observer.muteRules(), [], 'no mute rule left');

        await eventually('chat to hear the end', () => fleet.chat.messages().some((m) => /^(Released|Release of)/.test(m.text) && m.text.includes(kase.tag)), 15_000);
        const texts = fleet.chat.messages().map((m) => m.text);
        assert.ok(texts.some((t) => new RegExp(`^Found the release of ingest:${kase.tag} to data/ingest/staging unfinished when the worker started`).test(t)), texts.join('\n'));
        if (kase.tag === 'broken') assert.ok(texts.some((t) => /^Release of ingest:broken to data\/ingest\/staging failed on h1 at wait-healthy: .*; rolled back 1 host$/.test(t)), texts.join('\n'));
        else assert.ok(texts.some((t) => /^Released ingest:v2 to data\/ingest\/staging: 3 hosts in /.test(t)), texts.join('\n'));
        if (kase.tearRecord) {
          assert.ok(second.lines.some((l) => l.msg === 'release record damaged' && l.recovered === 'previous-copy'));
          assert.ok(texts.some((t) => /^The record of release .* was damaged \(.*\): the previous copy of the record is used/.test(t)), texts.join('\n'));
        }
      } finally {
        if (!sampled) await sampler.stop();
        await first.kill('SIGKILL');
        if (second) {
          const stopped = await second.kill('SIGTERM');
          assert.equal(stopped.code, 0, second.stderr);
        }
      }
    });
  }
});
