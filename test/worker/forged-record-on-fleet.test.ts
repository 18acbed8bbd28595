import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, it } from 'node:test';
import Docker from 'dockerode';
import { stringify } from 'yaml';
import { fleetWorkerConfigObject } from '../../local-fleet/worker-config.js';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import { FileReleaseStore } from '../../src/state/file-release-store.js';
import { isFinal, type ReleaseRecord } from '../../src/state/release-record.js';
import { runCli } from '../support/cli.js';
import { assertStagingWhole } from '../support/fleet-engine.js';
import { fleetWorkerEnvironment } from '../support/fleet-release.js';
import { fleetForSuite } from '../support/fleet-suite.js';
import { enqueueEnvironment, eventually, TEST_KEY, TEST_KEY_ENV } from '../support/worker-fixtures.js';
import { WorkerProcess } from '../support/worker-process.js';

// The review's attack, on the local fleet with the real worker and the file store: after a good v2
// release, its record copied under a new id, `running`, with image v3 (never signed), a volume of the
// host's /tmp and a release task that writes a file there, written with a valid checksum. The worker
// started again refuses it, names it in the log and in chat, and runs nothing: no container of v3 on
// any host, no file written, every host on v2 and in service, Auto Scaling and alarms as before.

const TARGET = 'data/ingest/staging';

describe('a record put straight into the state directory, on the local fleet', () => {
  const suite = fleetForSuite({ hosts: 3 });
  let configPath: string;
  let stateDirectory: string;
  beforeEach(async () => {
    await suite.fleet.resetHosts();
    await suite.fleet.resetAws();
    suite.fleet.chat.clear();
    const directory = mkdtempSync(join(tmpdir(), 'harbormaster-forged-'));
    stateDirectory = join(directory, 'state');
    const object = fleetWorkerConfigObject(suite.fleet, { signingKey: { id: TEST_KEY.id, env: TEST_KEY_ENV }, stateDirectory, leaseSeconds: 5 });
    configPath = join(directory, 'worker.yml');
    writeFileSync(configPath, stringify(object));
  });

  async function enqueue(tag: string): Promise<string> {
    const { fleet } = suite;
    const result = await runCli(['enqueue', '--queue-url', fleet.aws.queueUrl, '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', `${fleet.registry.address}/data/ingest:${tag}`, '--requested-by', 'ci-bot'], enqueueEnvironment(fleet.aws.endpoint));
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  }

  /** Read as the ops commands read it: read-only, beside the worker. */
  const store = () => new FileReleaseStore(parseWorkerConfig(readFileSync(configPath, 'utf8')).stateDirectory, { readOnly: true });

  async function until(releaseId: string, what: string, condition: (r: ReleaseRecord) => boolean): Promise<ReleaseRecord> {
    let found: ReleaseRecord | undefined;
    await eventually(what, async () => (found = await store().get(releaseId)) !== undefined && condition(found), 180_000);
    return found!;
  }

  it('runs nothing: refused and named, no v3 container, no task, the fleet whole on v2', async () => {
    const { fleet, observer } = suite;
    const env = fleetWorkerEnvironment(fleet);
    const first = new WorkerProcess(configPath, env);
    let second: WorkerProcess | undefined;
    const marker = `harbormaster-forged-${randomUUID().slice(0, 8)}`;
    try {
      await until(await enqueue('v1'), 'v1 to be released', (r) => r.status === 'succeeded');
      const v2 = await until(await enqueue('v2'), 'v2 to be released', (r) => r.status === 'succeeded');
      await first.kill('SIGTERM');

      const releaseId = randomUUID();
      const plan = v2.plan!;
      const forged: ReleaseRecord = {
        ...v2,
        releaseId,
        revision: 0,
        status: 'running',
        request: { ...v2.request, releaseId, image: `${fleet.registry.address}/data/ingest:v3`, createdAt: new Date().toISOString() },
        plan: {
          ...plan,
          spec: { ...plan.spec, image: `${fleet.registry.address}/data/ingest:v3`, volumes: ['/tmp:/host-tmp'] },
          settings: { ...plan.settings, releaseTask: { command: ['sh', '-c', `touch /host-tmp/${marker}`], timeoutSeconds: 60, idempotent: true } as NonNullable<typeof plan.settings.releaseTask> },
        },
        hosts: Object.fromEntries(Object.entries(v2.hosts).map(([id, host]) => [id, { ...host, progress: 'pending' as const }])),
      };
      // Written through the store, the worker stopped: its checksum is valid, as a person with write access could make it.
      assert.equal((await new FileReleaseStore(stateDirectory).claim(forged)).claimed, true);

      second = new WorkerProcess(configPath, env);
      const ended = await until(releaseId, 'the forged record to be refused', (r) => isFinal(r.status));
      assert.equal(ended.status, 'failed');
      assert.match(ended.reason ?? '', /^not vouched for: release .* envelope is signed for release/);
      await eventually('the refusal in the log', () => second!.lines.some((l) => l.msg === 'release record refused: nothing vouches for it' && l.releaseId === releaseId), 10_000);
      // Chat is posted after the record is written, by the worker's ordered sender.
      await eventually('chat to name it', () => fleet.chat.messages().some((m) => m.text.includes('refused') && m.text.includes('not vouched for')), 15_000);

      for (const host of observer.stagingHosts) {
        const all = await new Docker({ socketPath: host.dockerSocket }).listContainers({ all: true });
        assert.ok(all.every((c) => !c.Image.endsWith(':v3')), `${host.name}: no container of v3, running or not`);
      }
      assert.equal(existsSync(join('/tmp', marker)), false, 'the release task never ran');
      await assertStagingWhole(observer, Object.fromEntries(observer.stagingHosts.map((h) => [h.name, 'v2'])));
      const status = await runCli(['status', TARGET, '--config', configPath], env, 60_000);
      assert.match(status.stdout, /v2/);
    } catch (error) {
      // What the workers said, for the person reading a failure.
      for (const line of [...first.lines.slice(-20), ...(second?.lines ?? []).slice(-30)]) console.log(JSON.stringify(line).slice(0, 400));
      console.log(`first worker's stderr: ${first.stderr.slice(-2000)}\nsecond worker's stderr: ${second?.stderr.slice(-2000) ?? ''}`);
      throw error;
    } finally {
      await first.kill('SIGKILL');
      await second?.kill('SIGTERM');
    }
  });
});
