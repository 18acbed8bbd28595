import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { fleetWorkerConfigObject } from '../../local-fleet/worker-config.js';
import { openReleaseState } from '../../src/cli/ops/release-state.js';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import { isFinal, type ReleaseRecord } from '../../src/state/release-record.js';
import { CLI, collect, runCli } from '../support/cli.js';
import { assertStagingWhole } from '../support/fleet-engine.js';
import { fleetWorkerEnvironment } from '../support/fleet-release.js';
import { fleetForSuite } from '../support/fleet-suite.js';
import { enqueueEnvironment, eventually, TEST_KEY, TEST_KEY_ENV } from '../support/worker-fixtures.js';
import { WorkerProcess } from '../support/worker-process.js';

// docs/operations.md on the local fleet: the worker runs as its own user (as scripts/install-check.ts
// runs it, here a uid with no passwd entry), its state directory its own (mode 0700), and the
// steering verbs run on the bastion as root, exactly as the runbook says (`--config` the worker's
// file, no --by): promote, lock, unlock, stop and rollback each take effect, and every file in the
// state directory stays the worker's.

const TARGET = 'data/ingest/staging';
const WORKER = 54331;

describe('steering verbs run as root, as the runbook says, beside a worker running as its own user', () => {
  const suite = fleetForSuite({ hosts: 4 });

  it('promote, lock, unlock, stop and rollback each take effect; the state directory stays the worker\'s', async () => {
    const { fleet, observer } = suite;
    await fleet.resetHosts();
    await fleet.resetAws();
    fleet.chat.clear();
    // What the install guide sets up: the worker's files readable by its user, its state directory its own.
    const directory = mkdtempSync(join(tmpdir(), 'harbormaster-steer-root-'));
    chmodSync(directory, 0o755);
    const ssh = join(directory, 'ssh');
    mkdirSync(ssh, { mode: 0o700 });
    copyFileSync(fleet.ssh.privateKeyPath, join(ssh, 'id_ed25519'));
    copyFileSync(fleet.ssh.knownHostsPath, join(ssh, 'known_hosts'));
    const state = join(directory, 'state');
    mkdirSync(state, { mode: 0o700 });
    for (const path of [ssh, join(ssh, 'id_ed25519'), join(ssh, 'known_hosts'), state]) chownSync(path, WORKER, WORKER);
    const object = fleetWorkerConfigObject(fleet, { signingKey: { id: TEST_KEY.id, env: TEST_KEY_ENV }, stateDirectory: state, leaseSeconds: 5, policy: { steps: [{ hosts: 1 }, { pause: true }] } });
    object.ssh = { ...object.ssh, privateKey: { file: join(ssh, 'id_ed25519') }, knownHostsFile: join(ssh, 'known_hosts') };
    const config = join(directory, 'worker.yml');
    writeFileSync(config, stringify(object), { mode: 0o644 });

    const env = fleetWorkerEnvironment(fleet);
    /** As the runbook says: on the bastion, as root, with the worker's configuration. */
    const asRoot = (args: string[]) => runCli([...args, '--config', config], { ...env, HARBORMASTER_OPS_POLL_MS: '500' }, 300_000);
    const startedAsRoot = (args: string[]) => collect(spawn(process.execPath, [CLI, ...args, '--config', config], { env: { ...env, HARBORMASTER_OPS_POLL_MS: '500' }, stdio: ['ignore', 'pipe', 'pipe'] }), 300_000);
    const enqueue = async (tag: string) => {
      const result = await runCli(['enqueue', '--queue-url', fleet.aws.queueUrl, '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', `${fleet.registry.address}/data/ingest:${tag}`, '--requested-by', 'ci-bot'], enqueueEnvironment(fleet.aws.endpoint));
      assert.equal(result.code, 0, result.stderr);
      return result.stdout.trim();
    };
    const records = async (): Promise<ReleaseRecord[]> => {
      const opened = await openReleaseState(parseWorkerConfig(readFileSync(config, 'utf8')), () => undefined);
      try {
        return await opened.history.recent(TARGET, 50);
      } finally {
        opened.close();
      }
    };
    const until = async (what: string, find: (all: ReleaseRecord[]) => ReleaseRecord | undefined, timeoutMs = 180_000): Promise<ReleaseRecord> => {
      let found: ReleaseRecord | undefined;
      await eventually(what, async () => (found = find(await records())) !== undefined, timeoutMs);
      return found!;
    };
    const byId = (id: string, condition: (r: ReleaseRecord) => boolean) => (all: ReleaseRecord[]) => all.find((r) => r.releaseId === id && condition(r));
    const atPause = (r: ReleaseRecord) => r.gates?.[0]?.reachedAt !== undefined && r.gates[0].passedAt === undefined;
    const notTheWorkers = () => readdirSync(state, { recursive: true, encoding: 'utf8' }).filter((name) => statSync(join(state, name)).uid !== WORKER);

    const worker = new WorkerProcess(config, env, { as: { uid: WORKER, gid: WORKER } });
    try {
      // promote: the canary's pause is passed.
      const v2 = await enqueue('v2');
      await until('v2 at its pause', byId(v2, atPause));
      const promoted = await asRoot(['promote', TARGET]);
      assert.equal(promoted.code, 0, promoted.stderr);
      const released = await until('v2 to succeed', byId(v2, (r) => isFinal(r.status)));
      assert.equal(released.status, 'succeeded');
      assert.match(released.gates![0]!.by!, /^root\b/);
      await assertStagingWhole(observer, { h1: 'v2', h2: 'v2', h3: 'v2' });

      // lock: a new request waits; unlock: it starts.
      const locked = await asRoot(['lock', TARGET, '--reason', 'runbook check']);
      assert.equal(locked.code, 0, locked.stderr);
      const v3 = await enqueue('v3');
      await until('v3 to wait for the lock', byId(v3, (r) => r.held?.by.startsWith('root') === true), 60_000);
      await assertStagingWhole(observer, { h1: 'v2', h2: 'v2', h3: 'v2' });
      const unlocked = await asRoot(['unlock', TARGET]);
      assert.equal(unlocked.code, 0, unlocked.stderr);

      // stop: v3 at its pause stops there, its canary on v3.
      await until('v3 at its pause after the unlock', byId(v3, atPause));
      const stopped = await asRoot(['stop', TARGET]);
      assert.equal(stopped.code, 0, `${stopped.stdout}\n${stopped.stderr}`);
      const ended = (await records()).find((r) => r.releaseId === v3)!;
      assert.equal(ended.status, 'stopped');
      assert.match(ended.reason!, /^stopped by root\b.* at a safe point: 1 of 3 host\(s\) released$/);
      await assertStagingWhole(observer, { h1: 'v3', h2: 'v2', h3: 'v2' });

      // rollback: back to v2 everywhere, its own pause promoted while the command waits.
      const rolling = startedAsRoot(['rollback', TARGET, '--reason', 'runbook check']);
      const back = await until('the rollback at its pause', (all) => all.find((r) => r.origin?.kind === 'rollback' && atPause(r)));
      assert.match(back.origin!.by, /^root\b/);
      assert.equal((await asRoot(['promote', TARGET])).code, 0);
      const rolled = await rolling;
      assert.equal(rolled.code, 0, `${rolled.stdout}\n${rolled.stderr}`);
      assert.match(rolled.stdout, new RegExp(`release ${back.releaseId} succeeded`));
      await assertStagingWhole(observer, { h1: 'v2', h2: 'v2', h3: 'v2' });
      assert.equal((await asRoot(['unlock', TARGET])).code, 0);

      // Everything written is the worker's: it reads all of it, and so does a command run as its user.
      assert.deepEqual(notTheWorkers(), []);
      const status = await collect(spawn(process.execPath, [CLI, 'status', '--config', config], { uid: WORKER, gid: WORKER, env, stdio: ['ignore', 'pipe', 'pipe'] }), 60_000);
      assert.equal(status.code, 0, status.stderr);
      assert.deepEqual(worker.lines.filter((line) => /EACCES|EPERM/.test(JSON.stringify(line))), [], 'the worker read everything');
    } finally {
      await worker.kill('SIGTERM');
    }
  });
});
