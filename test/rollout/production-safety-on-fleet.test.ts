import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, beforeEach, after } from 'node:test';
import { CloudWatchClient, SetAlarmStateCommand } from '@aws-sdk/client-cloudwatch';
import type { Fleet } from '../../local-fleet/fleet.js';
import type { ReleaseRecord } from '../../src/state/release-record.js';
import { at, assertSampledSafe, assertStagingWhole, fleetEngine } from '../support/fleet-engine.js';
import type { FleetObserver } from '../support/fleet-observer.js';
import { fleetForSuite } from '../support/fleet-suite.js';

// Production safety on the local fleet, with the engine as the worker wires it: the release's alarms
// watched while muted (moto's SetAlarmState stands in for CloudWatch noticing the new image is bad),
// a canary with a pause that waits for a promotion, and the release task. The sampler checks
// registered => healthy and at most one host out of service the whole time.

describe('production safety on the local fleet', () => {
  const suite = fleetForSuite({ hosts: 4 });
  let fleet: Fleet;
  let observer: FleetObserver;
  let cloudWatch: CloudWatchClient;
  beforeEach(async () => {
    ({ fleet, observer } = suite);
    await fleet.resetHosts();
    await fleet.resetAws();
    fleet.chat.clear();
    cloudWatch ??= new CloudWatchClient({ region: 'us-west-2', endpoint: fleet.aws.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  });
  after(() => cloudWatch?.destroy());

  const setAlarm = (name: string, state: 'ALARM' | 'OK', reason: string) => cloudWatch.send(new SetAlarmStateCommand({ AlarmName: name, StateValue: state, StateReason: reason }));
  const errors = () => fleet.aws.alarmNames.find((n) => n.endsWith('-5xx'))!;

  it('turns the release back when an alarm enters ALARM during the second host, within one watch interval, and restores everything', async () => {
    let setAt = 0;
    const engine = fleetEngine(fleet, {
      policy: { watchIntervalSeconds: 1 },
      sample: { observer },
      journal: at('h2', 'stop-old', 'begin', async () => {
        await setAlarm(errors(), 'ALARM', 'Threshold Crossed: 5xx rate 12% > 1%');
        setAt = Date.now();
      }),
    });
    try {
      const run = await engine.release('v2');
      assert.equal(run.outcome.status, 'rolled-back');
      assert.equal(run.recorded.record.failure?.step, 'alarm');
      assert.match(run.recorded.record.failure!.reason, /-5xx entered ALARM: Threshold Crossed: 5xx rate 12% > 1%$/);
      assert.ok(setAt > 0, 'the alarm was set during the second host');
      const h3 = run.recorded.record.hosts[fleet.hosts.find((h) => h.name === 'h3')!.instanceId]!;
      assert.equal(h3.progress, 'pending', 'the third host was never touched');
      await assertStagingWhole(observer, { h1: 'v1', h2: 'v1', h3: 'v1' });
      assertSampledSafe(run.sampled);
      assert.ok(run.texts.some((t) => /entered ALARM \(Threshold Crossed: 5xx rate 12% (>|&gt;) 1%\); turning the release back/.test(t)), run.texts.join('\n'));
    } finally {
      engine.close();
      await setAlarm(errors(), 'OK', 'reset');
    }
  });

  it('refuses a release while a watched alarm is already in ALARM, changing nothing; with alarmAtStart ignore, releases', async () => {
    await setAlarm(errors(), 'ALARM', 'Threshold Crossed: already failing');
    try {
      const refusing = fleetEngine(fleet, { sample: { observer } });
      try {
        const run = await refusing.release('v2');
        assert.equal(run.outcome.status, 'refused');
        assert.match(run.recorded.record.reason!, /already in ALARM before the release: data-ingest-staging-5xx \(Threshold Crossed: already failing\)/);
        await assertStagingWhole(observer, { h1: 'v1', h2: 'v1', h3: 'v1' });
      } finally {
        refusing.close();
      }
      const ignoring = fleetEngine(fleet, { policy: { alarmAtStart: 'ignore' }, sample: { observer } });
      try {
        const run = await ignoring.release('v2');
        assert.equal(run.outcome.status, 'succeeded');
        await assertStagingWhole(observer, { h1: 'v2', h2: 'v2', h3: 'v2' });
        assertSampledSafe(run.sampled);
      } finally {
        ignoring.close();
      }
    } finally {
      await setAlarm(errors(), 'OK', 'reset');
    }
  });

  it('a canary release waits at its pause, every host whole, until an operator promotes it', async () => {
    const engine = fleetEngine(fleet, { policy: { steps: [{ hosts: 1 }, { pause: true }] }, sample: { observer } });
    try {
      const running = engine.release('v2');
      let record: ReleaseRecord | undefined;
      for (let i = 0; i < 600 && !record?.gates?.[0]; i += 1) {
        await sleep(100);
        [record] = await engine.store.unfinished();
      }
      assert.ok(record?.gates?.[0]?.reachedAt, 'the pause is reached');
      await sleep(2_000);
      assert.deepEqual(await observer.versions(), { h1: 'v2', h2: 'v1', h3: 'v1' }, 'the canary only, while paused');
      assert.deepEqual(await observer.classicMembers(), observer.stagingHosts.map((h) => h.instanceId).sort(), 'every host in service while paused');
      await engine.store.updateControl('data/ingest/staging', () => ({ promotions: [{ releaseId: record!.releaseId, by: 'carol', at: new Date().toISOString() }] }));
      const run = await running;
      assert.equal(run.outcome.status, 'succeeded');
      assert.equal(run.recorded.record.gates?.[0]?.by, 'carol');
      assert.match(run.recorded.record.imageDigest ?? '', /^[\d.]+:\d+\/data\/ingest@sha256:[0-9a-f]{64}$/, 'the digest of what was pulled is recorded, for a promotion');
      await assertStagingWhole(observer, { h1: 'v2', h2: 'v2', h3: 'v2' });
      assertSampledSafe(run.sampled);
    } finally {
      engine.close();
    }
  });

  it('refuses the release when its release task exits non-zero: nothing leaves service, and the task container is gone', async () => {
    const engine = fleetEngine(fleet, { rollout: { releaseTask: { command: ['sh', '-c', 'echo applying 0042_users; echo relation users already exists >&2; exit 3'], timeoutSeconds: 60 } }, sample: { observer } });
    try {
      const run = await engine.release('v2');
      assert.equal(run.outcome.status, 'refused');
      assert.match(run.recorded.record.reason!, /^release task: sh -c .* exited with code 3 on h1$/);
      // stdout and stderr, in the order the engine interleaved them.
      assert.match(run.recorded.record.releaseTask?.output ?? '', /applying 0042_users/);
      assert.match(run.recorded.record.releaseTask?.output ?? '', /relation users already exists/);
      await assertStagingWhole(observer, { h1: 'v1', h2: 'v1', h3: 'v1' });
      assertSampledSafe(run.sampled, 0);
      assert.ok(run.texts.some((t) => /release task on h1 exited with code 3; its last lines: .*relation users already exists/.test(t)), run.texts.join('\n'));
    } finally {
      engine.close();
    }
  });
});
