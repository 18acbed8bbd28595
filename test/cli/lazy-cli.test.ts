import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { stringify } from 'yaml';
import { COMMANDS } from '../../src/cli/commands.js';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import { FileReleaseStore } from '../../src/state/file-release-store.js';
import { CLI } from '../support/cli.js';
import { simulatedConfigObject, simulatedFleet } from '../support/simulated-release.js';

// The CLI loads only the module of the command it runs (src/cli/commands.ts), and each command only
// what its action uses: the built executable is run with a loader hook that lists every module loaded.

const TRACE_HOOK = fileURLToPath(new URL('../support/module-trace.mjs', import.meta.url));

/** The modules (URLs) one run of the built CLI loaded, and its result. */
function traced(args: string[]): { loaded: string[]; code: number | null; stderr: string } {
  const trace = join(mkdtempSync(join(tmpdir(), 'harbormaster-trace-')), 'modules');
  writeFileSync(trace, '');
  const run = spawnSync(process.execPath, ['--import', TRACE_HOOK, CLI, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, USER: 'tester', HARBORMASTER_MODULE_TRACE: trace },
    encoding: 'utf8',
  });
  return { loaded: readFileSync(trace, 'utf8').split('\n').filter(Boolean), code: run.status, stderr: run.stderr };
}

const packagesOf = (urls: string[]) => [...new Set(urls.flatMap((url) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? []))].sort();

describe('the command table', () => {
  for (const entry of COMMANDS) {
    it(`${entry.name}: the table's arguments and description are those of the command its module defines`, async () => {
      const program = new Command();
      (await entry.load())(program);
      const command = program.commands.find((c) => c.name() === entry.name);
      assert.ok(command, `${entry.name}'s module does not define it`);
      assert.equal(command.description(), entry.description);
      const args = command.registeredArguments.map((a) => (a.required ? `<${a.name()}${a.variadic ? '...' : ''}>` : `[${a.name()}${a.variadic ? '...' : ''}]`));
      assert.equal(args.join(' '), entry.args);
    });
  }

  it('every command the modules define is in the table', async () => {
    const program = new Command();
    const registers = new Set(await Promise.all(COMMANDS.map((entry) => entry.load())));
    for (const register of registers) register(program);
    assert.deepEqual(program.commands.map((c) => c.name()).sort(), COMMANDS.map((e) => e.name).sort());
  });
});

describe('what each command loads', () => {
  it('--help lists every command and loads no command module and no dependency but commander', () => {
    const run = traced(['--help']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(packagesOf(run.loaded), ['commander']);
    assert.deepEqual(run.loaded.filter((url) => /\/cli\/(ops\/)?[a-z-]+-command\.js$|\/ops\/status\.js$/.test(url)), []);
  });

  it('enqueue --dry-run loads no AWS client', () => {
    const run = traced(['enqueue', '--dry-run', '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', 'registry.internal:5000/data/ingest:v2']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(packagesOf(run.loaded).filter((name) => name.startsWith('@aws-sdk/') || name.startsWith('@smithy/')), []);
  });

  it('status and show on a file store load no AWS client, no SSH and no Docker client', async () => {
    const object = simulatedConfigObject('http://127.0.0.1:1', { store: 'file' });
    const store = new FileReleaseStore(object.stateDirectory);
    const { releaseId } = await simulatedFleet(parseWorkerConfig(stringify(object))).release(store, 'staging', 'v2');
    const config = join(mkdtempSync(join(tmpdir(), 'harbormaster-lazy-')), 'worker.yml');
    writeFileSync(config, stringify(object));
    for (const args of [['status', '--config', config], ['show', releaseId, '--config', config]]) {
      const run = traced(args);
      assert.equal(run.code, 0, run.stderr);
      const heavy = packagesOf(run.loaded).filter((name) => name.startsWith('@aws-sdk/') || name.startsWith('@smithy/') || ['ssh2', 'dockerode', 'pino'].includes(name));
      assert.deepEqual(heavy, [], `${args[0]} loaded ${heavy.join(', ')}`);
    }
  });
});
