import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { commandAs, StateOwnerError, writeAsOwner, type ProcessIds } from '../../src/cli/ops/state-owner.js';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import { FileReleaseStore } from '../../src/state/file-release-store.js';
import { CLI, collect } from '../support/cli.js';
import { simulatedConfigObject, simulatedFleet } from '../support/simulated-release.js';

// The file store is the worker's: a steering verb run as root (as the runbook says) writes it as the
// state directory's owner, so the worker's user reads everything in it afterwards; run as anyone else
// it is refused with the command to run instead. End to end as root with uids that have no passwd
// entry (the worker's user stands in as 54321).

const OWNER = 54321;
const STRANGER = 54322;
const STAGING = 'data/ingest/staging';

/** Ids as a process has them, recording every change. */
function fakeIds(euid: number): ProcessIds & { calls: string[] } {
  const calls: string[] = [];
  return { euid, egid: euid, groups: [euid], calls, seteuid: (id) => calls.push(`seteuid ${id}`), setegid: (id) => calls.push(`setegid ${id}`), setgroups: (g) => calls.push(`setgroups ${g.join(',')}`) };
}

function ownedDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'harbormaster-owned-'));
  chownSync(directory, OWNER, OWNER);
  return directory;
}

describe('writing the file store as its owner', () => {
  it('the command to run instead: this one, through sudo as the owner, the program by name when PATH finds it, --config spelled out', () => {
    const argv = ['/usr/bin/node', '/usr/local/bin/harbormaster', 'lock', STAGING, '--reason', "it's broken"];
    assert.equal(commandAs('harbormaster', argv, { PATH: '/usr/local/sbin:/usr/local/bin:/usr/bin', HARBORMASTER_CONFIG: '/etc/harbormaster/worker.yml' }), `sudo -u harbormaster harbormaster lock ${STAGING} --reason 'it'\\''s broken' --config /etc/harbormaster/worker.yml`);
    assert.equal(commandAs('#54321', ['/usr/bin/node', '/opt/hm/bin/harbormaster.js', 'unlock', STAGING, '-c', '/w.yml'], { PATH: '/usr/bin', HARBORMASTER_CONFIG: '/other.yml' }), `sudo -u '#54321' /opt/hm/bin/harbormaster.js unlock ${STAGING} -c /w.yml`);
  });

  it('run as the owner: as it is; as root: the owner\'s ids until the end, then its own again', { skip: process.getuid?.() !== 0 && 'needs root (chown)' }, () => {
    const directory = ownedDirectory();
    const owner = fakeIds(OWNER);
    writeAsOwner(directory, owner)();
    assert.deepEqual(owner.calls, []);
    const root = fakeIds(0);
    const restore = writeAsOwner(directory, root);
    assert.deepEqual(root.calls, [`setgroups ${OWNER}`, `setegid ${OWNER}`, `seteuid ${OWNER}`]);
    restore();
    assert.deepEqual(root.calls.slice(3), ['seteuid 0', 'setegid 0', 'setgroups 0']);
  });

  it('refuses, naming the command to run instead, as anyone else; refuses a state directory that does not exist, or holds what the worker cannot read', { skip: process.getuid?.() !== 0 && 'needs root (chown)' }, () => {
    const directory = ownedDirectory();
    assert.throws(
      () => writeAsOwner(directory, fakeIds(STRANGER), (owner) => `sudo -u ${owner} harbormaster lock`),
      (error: unknown) => error instanceof StateOwnerError && error.message === `the state directory ${directory} belongs to uid ${OWNER}, and this command runs as uid ${STRANGER}: the file store is written only as its owner, so that the worker reads what is written; run it as root, or as uid ${OWNER}: sudo -u #${OWNER} harbormaster lock; nothing was written`,
    );
    assert.throws(() => writeAsOwner(join(directory, 'nothing'), fakeIds(0)), /^StateOwnerError: the state directory .*\/nothing \(stateDirectory\) does not exist: the worker makes it, as its own user, when it first starts/);
    mkdirSync(join(directory, 'control'), { mode: 0o700 });
    const root = fakeIds(0);
    assert.throws(() => writeAsOwner(directory, root), new RegExp(`^StateOwnerError: not uid ${OWNER}'s, who owns the state directory ${directory}: ${directory}/control; the worker cannot read them: give them back \\(chown -R ${OWNER}: ${directory}\\)`));
    assert.deepEqual(root.calls, [], 'ids unchanged');
  });
});

describe('steering verbs run as root on a state directory the worker owns', { skip: process.getuid?.() !== 0 && 'needs root (a state directory of another user)' }, () => {
  let config: string;
  let state: string;
  const run = (args: string[], uid = 0) =>
    collect(spawn(process.execPath, [CLI, ...args, '--config', config], { uid, gid: uid, env: { PATH: process.env.PATH, HOME: '/', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] }), 60_000);
  const notTheOwners = (directory: string): string[] =>
    readdirSync(directory, { recursive: true, encoding: 'utf8' })
      .map((name) => join(directory, name))
      .filter((path) => statSync(path).uid !== OWNER);

  before(async () => {
    const object = simulatedConfigObject('http://127.0.0.1:1', { store: 'file' });
    state = object.stateDirectory as string;
    // Two succeeded releases (v2, then v3) for a rollback to go back to, made here, then given to the worker's user.
    const store = new FileReleaseStore(state);
    const fleet = simulatedFleet(parseWorkerConfig(stringify(object)));
    for (const tag of ['v2', 'v3']) assert.equal((await fleet.release(store, 'staging', tag)).taken.status, 'ended');
    for (const path of [state, ...readdirSync(state, { recursive: true, encoding: 'utf8' }).map((name) => join(state, name))]) chownSync(path, OWNER, OWNER);
    const directory = mkdtempSync(join(tmpdir(), 'harbormaster-owned-config-'));
    chmodSync(directory, 0o755);
    config = join(directory, 'worker.yml');
    writeFileSync(config, stringify(object), { mode: 0o644 });
  });

  it('lock, unlock and rollback as root write as the owner: the worker\'s user reads every file afterwards, and sees what was asked', async () => {
    const locked = await run(['lock', STAGING, '--reason', 'incident 7']);
    assert.equal(locked.code, 0, locked.stderr);
    assert.deepEqual(notTheOwners(state), []);
    assert.equal(statSync(join(state, 'control')).mode & 0o777, 0o700);
    const seen = await run(['status', STAGING, '--json'], OWNER);
    assert.equal(seen.code, 0, seen.stderr);
    assert.equal(JSON.parse(seen.stdout).targets[0].lock.reason, 'incident 7');

    const unlocked = await run(['unlock', STAGING]);
    assert.equal(unlocked.code, 0, unlocked.stderr);
    const rolled = await run(['rollback', STAGING, '--no-wait', '--json']);
    assert.equal(rolled.code, 0, rolled.stderr);
    const { releaseId } = JSON.parse(rolled.stdout) as { releaseId: string };
    assert.deepEqual(notTheOwners(state), []);
    const after = await run(['status', STAGING, '--json'], OWNER);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(JSON.parse(after.stdout).targets[0].rollbackRequested?.releaseId, releaseId, "the rollback request is read by the worker's user");
  });

  it('what only reads, run as root, leaves nothing the worker cannot read', async () => {
    for (const args of [['status'], ['history', STAGING], ['status', STAGING, '--json']]) assert.equal((await run(args)).code, 0);
    assert.deepEqual(notTheOwners(state), []);
  });

  it('run as anyone else, refused with the command to run instead; nothing written', async () => {
    const before = readdirSync(join(state, 'control')).sort();
    const refused = await run(['lock', STAGING, '--reason', 'r'], STRANGER);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, `harbormaster: the state directory ${state} belongs to uid ${OWNER}, and this command runs as uid ${STRANGER}: the file store is written only as its owner, so that the worker reads what is written; run it as root, or as uid ${OWNER}: sudo -u '#${OWNER}' ${CLI} lock ${STAGING} --reason r --config ${config}; nothing was written\n`);
    assert.deepEqual(readdirSync(join(state, 'control')).sort(), before);
  });
});
