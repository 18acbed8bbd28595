import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, beforeEach } from 'node:test';
import { CreateTagsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { parse, stringify } from 'yaml';
import type { Fleet } from '../../local-fleet/fleet.js';
import { fleetWorkerConfigObject } from '../../local-fleet/worker-config.js';
import { openReleaseState } from '../../src/cli/ops/release-state.js';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import { isFinal, type ReleaseRecord } from '../../src/state/release-record.js';
import { runCli } from '../support/cli.js';
import { assertStagingWhole } from '../support/fleet-engine.js';
import { answer, startSampler, type FleetObserver } from '../support/fleet-observer.js';
import { fleetWorkerEnvironment } from '../support/fleet-release.js';
import { fleetForSuite } from '../support/fleet-suite.js';
import { enqueueEnvironment, eventually, TEST_KEY, TEST_KEY_ENV } from '../support/worker-fixtures.js';
import { WorkerProcess } from '../support/worker-process.js';

// Ops steering a target on the local fleet, with the real worker (file store) and the real CLI:
// `stop` of a release waiting at its canary pause (the worker SIGKILLed right after the stop is
// recorded, then started again), `stop --rollback`, and `rollback` after a release (SIGKILLed right
// after it is recorded), with the lock it leaves holding the next request until `unlock`. The
// sampler checks registered => healthy and at most one host out of service the whole time.

const TARGET = 'data/ingest/staging';

describe('steering a target on the local fleet', () => {
  const suite = fleetForSuite({ hosts: 4 });
  let fleet: Fleet;
  let observer: FleetObserver;
  let configPath: string;
  beforeEach(async () => {
    ({ fleet, observer } = suite);
    await fleet.resetHosts();
    await fleet.resetAws();
    fleet.chat.clear();
    const directory = mkdtempSync(join(tmpdir(), 'harbormaster-steer-'));
    const object = fleetWorkerConfigObject(fleet, { signingKey: { id: TEST_KEY.id, env: TEST_KEY_ENV }, stateDirectory: join(directory, 'state'), leaseSeconds: 5, policy: { steps: [{ hosts: 1 }, { pause: true }] } });
    configPath = join(directory, 'worker.yml');
    writeFileSync(configPath, stringify(object));
  });

  const env = () => fleetWorkerEnvironment(fleet);
  /** A steering command, run as root, with a note (--by) naming alice. */
  const cli = (args: string[]) => runCli([...args, '--config', configPath, '--by', 'alice'], env(), 120_000);
  /** A command that only reads. */
  const read = (args: string[]) => runCli([...args, '--config', configPath], env(), 60_000);

  async function enqueue(tag: string): Promise<string> {
    const result = await runCli(['enqueue', '--queue-url', fleet.aws.queueUrl, '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', `${fleet.registry.address}/data/ingest:${tag}`, '--requested-by', 'ci-bot'], enqueueEnvironment(fleet.aws.endpoint));
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  }

  async function record(releaseId: string): Promise<ReleaseRecord | undefined> {
    const state = await openReleaseState(parseWorkerConfig(readFileSync(configPath, 'utf8')), () => undefined);
    try {
      return await state.history.get(releaseId);
    } finally {
      state.close();
    }
  }

  async function until(releaseId: string, what: string, condition: (r: ReleaseRecord) => boolean, timeoutMs = 180_000): Promise<ReleaseRecord> {
    let found: ReleaseRecord | undefined;
    await eventually(what, async () => {
      found = await record(releaseId);
      return found !== undefined && condition(found);
    }, timeoutMs);
    return found!;
  }
  const atPause = (r: ReleaseRecord) => r.gates?.[0]?.reachedAt !== undefined && r.gates[0].passedAt === undefined;

  it('stop: a release waiting at its pause stops there, the canary on v2, the rest on v1, everything restored; the worker SIGKILLed right after the stop is recorded', async () => {
    const first = new WorkerProcess(configPath, env());
    let second: WorkerProcess | undefined;
    const sampler = startSampler(observer, fleet);
    try {
      const releaseId = await enqueue('v2');
      await until(releaseId, 'the pause', atPause);
      const stop = await cli(['stop', TARGET, '--no-wait']);
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal((await first.kill('SIGKILL')).signal, 'SIGKILL');
      second = new WorkerProcess(configPath, env());
      const ended = await until(releaseId, 'the release to end', (r) => isFinal(r.status));
      assert.equal(ended.status, 'stopped');
      assert.match(ended.reason!, /^stopped by root\b.*\(note: alice\) at a safe point: 1 of 3 host\(s\) released$/);
      await assertStagingWhole(observer, { h1: 'v2', h2: 'v1', h3: 'v1' });
      const sampled = await sampler.stop();
      assert.deepEqual(sampled.unhealthyRegistered, []);
      assert.ok(sampled.maxOutOfService <= 1);
      const history = await read(['history', TARGET, '--json']);
      assert.match(history.stdout, /stopped by root\b.*\(note: alice\)/);
    } finally {
      await sampler.stop().catch(() => undefined);
      await first.kill('SIGKILL');
      await second?.kill('SIGTERM');
    }
  });

  it('stop --rollback: the released canary goes back too, and the release ends rolled back', async () => {
    const worker = new WorkerProcess(configPath, env());
    try {
      const releaseId = await enqueue('v2');
      await until(releaseId, 'the pause', atPause);
      const stop = await cli(['stop', TARGET, '--rollback']);
      assert.equal(stop.code, 0, `${stop.stdout}\n${stop.stderr}`);
      const ended = await record(releaseId);
      assert.equal(ended?.status, 'rolled-back');
      await assertStagingWhole(observer, { h1: 'v1', h2: 'v1', h3: 'v1' });
    } finally {
      await worker.kill('SIGTERM');
    }
  });

  it('rollback: after a release, brings every host back to the previous image faster than the release took, locks the target, and a request waits until unlock; the worker SIGKILLed right after the rollback is recorded', async () => {
    // No canary here: plain releases, one host at a time.
    const object = parse(readFileSync(configPath, 'utf8')) as Record<string, any>;
    object.releases[0].rollout.policy.steps = [];
    writeFileSync(configPath, stringify(object));
    const first = new WorkerProcess(configPath, env());
    let second: WorkerProcess | undefined;
    try {
      const v1 = await enqueue('v1');
      await until(v1, 'v1 to be released', (r) => r.status === 'succeeded');
      const v2 = await enqueue('v2');
      const released = await until(v2, 'v2 to be released', (r) => r.status === 'succeeded');
      await assertStagingWhole(observer, { h1: 'v2', h2: 'v2', h3: 'v2' });
      const releaseMs = Date.parse(released.finishedAt!) - Date.parse(released.startedAt!);

      // The rollback, waited for by the command itself.
      const rollback = await cli(['rollback', TARGET, '--reason', 'errors after v2']);
      assert.equal(rollback.code, 0, `${rollback.stdout}\n${rollback.stderr}`);
      const rollbackId = /releases it as ([0-9a-f]{8}-[0-9a-f-]{27})/.exec(rollback.stdout)?.[1];
      assert.ok(rollbackId, rollback.stdout);
      const back = (await record(rollbackId))!;
      assert.equal(back.status, 'succeeded');
      const v1Record = (await record(v1))!;
      assert.equal(back.request.image, v1Record.imageDigest ?? v1Record.request.image, "by the digest v1's pull recorded");
      assert.equal(back.vouchedBy, v1, 'resting on the signed v1 release');
      await assertStagingWhole(observer, { h1: 'v1', h2: 'v1', h3: 'v1' });
      const rollbackMs = Date.parse(back.finishedAt!) - Date.parse(back.startedAt!);
      console.log(`release v2: ${releaseMs} ms (first change to end); rollback to v1: ${rollbackMs} ms`);

      const status = await read(['status', '--json']);
      assert.match(status.stdout, /rolled back by root\b.*\(note: alice\): errors after v2/);
      const v3 = await enqueue('v3');
      await until(v3, 'v3 to wait for the lock', (r) => /locked by root\b/.test(r.reason ?? ''), 60_000);
      await assertStagingWhole(observer, { h1: 'v1', h2: 'v1', h3: 'v1' });
      const unlock = await cli(['unlock', TARGET]);
      assert.equal(unlock.code, 0, unlock.stderr);
      await until(v3, 'v3 to be released after unlock', (r) => r.status === 'succeeded');
      await assertStagingWhole(observer, { h1: 'v3', h2: 'v3', h3: 'v3' });

      // A rollback with the worker SIGKILLed right after it is recorded: carried out once, by the next worker.
      const again = await cli(['rollback', TARGET, '--no-lock', '--no-wait']);
      assert.equal(again.code, 0, again.stderr);
      const againId = /releases it as ([0-9a-f]{8}-[0-9a-f-]{27})/.exec(again.stdout)?.[1];
      assert.ok(againId, again.stdout);
      assert.equal((await first.kill('SIGKILL')).signal, 'SIGKILL');
      second = new WorkerProcess(configPath, env());
      const ended = await until(againId, 'the second rollback to end', (r) => isFinal(r.status));
      assert.equal(ended.status, 'succeeded');
      await assertStagingWhole(observer, { h1: 'v1', h2: 'v1', h3: 'v1' });
      const history = await read(['history', TARGET, '--json']);
      assert.equal((history.stdout.match(new RegExp(againId, 'g')) ?? []).length, 1, 'one release of the rollback in the history');
    } finally {
      await first.kill('SIGKILL');
      await second?.kill('SIGTERM');
    }
  });

  it('a host tagged into the target after its release is brought to the current image within one period, the others untouched', async () => {
    const object = parse(readFileSync(configPath, 'utf8')) as Record<string, any>;
    object.releases[0].rollout.policy.steps = [];
    object.releases[0].rollout.newHosts = { periodSeconds: 5 };
    writeFileSync(configPath, stringify(object));
    const worker = new WorkerProcess(configPath, env());
    const h4 = fleet.hosts[3]!;
    const ec2 = new EC2Client({ endpoint: fleet.aws.endpoint, region: fleet.aws.region, credentials: fleet.aws.credentials, maxAttempts: 1 });
    try {
      const v2 = await enqueue('v2');
      await until(v2, 'v2 to be released', (r) => r.status === 'succeeded');
      assert.equal(await answer(`http://${h4.address}:8080/version`), 'v1', "h4 is alice's, on v1");
      // As if Auto Scaling launched it into staging.
      await ec2.send(new CreateTagsCommand({ Resources: [h4.instanceId], Tags: [{ Key: 'deployment', Value: 'staging' }] }));
      const tagged = Date.now();
      const line = await worker.waitFor('a release for the new host', (l) => l.msg === 'hosts joined the target since its release: releasing its current image to them', 30_000);
      assert.deepEqual(line.instances, [h4.instanceId]);
      const joined = await until(String(line.releaseId), 'the new host to be released', (r) => isFinal(r.status));
      assert.equal(joined.status, 'succeeded');
      assert.deepEqual(Object.keys(joined.hosts), [h4.instanceId], 'that host alone');
      assert.equal(await answer(`http://${h4.address}:8080/version`), 'v2');
      await assertStagingWhole(observer, { h1: 'v2', h2: 'v2', h3: 'v2' });
      console.log(`h4 tagged into staging -> on v2 ${Date.parse(joined.finishedAt!) - tagged} ms later (period 5 s)`);
    } finally {
      await ec2.send(new CreateTagsCommand({ Resources: [h4.instanceId], Tags: [{ Key: 'deployment', Value: 'personal-alice' }] }));
      ec2.destroy();
      await worker.kill('SIGTERM');
    }
  });

  it('a worker SIGKILLed during a bake resumes the bake with the time left, not from the start', async () => {
    const object = parse(readFileSync(configPath, 'utf8')) as Record<string, any>;
    object.releases[0].rollout.policy.steps = [{ hosts: 1 }, { bakeSeconds: 20 }];
    writeFileSync(configPath, stringify(object));
    const first = new WorkerProcess(configPath, env());
    let second: WorkerProcess | undefined;
    try {
      const releaseId = await enqueue('v2');
      const baking = await until(releaseId, 'the bake', (r) => r.gates?.[0]?.reachedAt !== undefined);
      assert.equal((await first.kill('SIGKILL')).signal, 'SIGKILL');
      const killedAt = Date.now();
      second = new WorkerProcess(configPath, env());
      const ended = await until(releaseId, 'the release to end', (r) => isFinal(r.status));
      assert.equal(ended.status, 'succeeded');
      const gate = ended.gates![0]!;
      assert.equal(gate.reachedAt, baking.gates![0]!.reachedAt, 'the bake kept the time it was reached');
      const bakedMs = Date.parse(gate.passedAt!) - Date.parse(gate.reachedAt);
      assert.ok(bakedMs >= 20_000, `baked ${bakedMs} ms, at least the 20 s asked`);
      assert.ok(Date.parse(gate.passedAt!) - killedAt < 20_000, 'the restarted worker did not bake 20 s again');
      await assertStagingWhole(observer, { h1: 'v2', h2: 'v2', h3: 'v2' });
      console.log(`bake of 20 s across a SIGKILL: passed ${bakedMs} ms after it was reached, ${Date.parse(gate.passedAt!) - killedAt} ms after the kill`);
    } finally {
      await first.kill('SIGKILL');
      await second?.kill('SIGTERM');
    }
  });

  it('a release task under way when its worker is SIGKILLed is not run again: the release stops for a person, nothing out of service', async () => {
    const object = parse(readFileSync(configPath, 'utf8')) as Record<string, any>;
    object.releases[0].rollout.policy.steps = [];
    object.releases[0].rollout.releaseTask = { command: ['sh', '-c', 'echo migrating; sleep 10; echo done'], timeoutSeconds: 60 };
    writeFileSync(configPath, stringify(object));
    const first = new WorkerProcess(configPath, env());
    let second: WorkerProcess | undefined;
    try {
      const releaseId = await enqueue('v2');
      await until(releaseId, 'the task to start', (r) => r.releaseTask?.phase === 'started');
      assert.equal((await first.kill('SIGKILL')).signal, 'SIGKILL');
      second = new WorkerProcess(configPath, env());
      const ended = await until(releaseId, 'the release to end', (r) => isFinal(r.status));
      assert.equal(ended.status, 'failed');
      assert.equal(ended.releaseTask?.attempts, 1, 'run once');
      assert.match((ended.attention ?? []).join('\n'), /it may have run in part, and it is not run again/);
      await assertStagingWhole(observer, { h1: 'v1', h2: 'v1', h3: 'v1' });
    } finally {
      await first.kill('SIGKILL');
      await second?.kill('SIGTERM');
    }
  });
});
