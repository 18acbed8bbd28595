import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../support/cli.js';

// `harbormaster logs`: the worker's pino lines, as the journal or a file holds them, one readable line
// each; --release keeps one release's lines. The journal is played by a `journalctl` on the PATH that
// prints the same lines and notes how it was called.

const A = '472f4aff-d265-46a7-a626-494538bf91b2';
const B = '9c1d0e2f-0000-4000-8000-000000000001';
const LINES = [
  JSON.stringify({ level: 'info', time: '2026-11-29T10:02:03.120Z', pid: 7, hostname: 'bastion', releaseId: A, target: 'data/ingest/staging', msg: 'request accepted' }),
  JSON.stringify({ level: 'warn', time: '2026-11-29T10:02:04.000Z', pid: 7, hostname: 'bastion', releaseId: B, host: '10.0.0.2', msg: 'host slow to answer' }),
  'not json: a line systemd wrote',
  JSON.stringify({ level: 'error', time: '2026-11-29T10:02:05.500Z', pid: 7, hostname: 'bastion', releaseId: A, err: { message: 'pull failed' }, msg: 'host failed' }),
];

function fixture() {
  const dir = mkdtempSync(join(tmpdir(), 'harbormaster-logs-'));
  const file = join(dir, 'worker.log');
  writeFileSync(file, `${LINES.join('\n')}\n`);
  const calls = join(dir, 'journalctl-calls');
  writeFileSync(join(dir, 'journalctl'), `#!/bin/sh\necho "$@" >> "${calls}"\ncat "${file}"\n`);
  chmodSync(join(dir, 'journalctl'), 0o755);
  const env = { PATH: `${dir}:${dirname(process.execPath)}:/usr/bin:/bin`, NO_COLOR: '1' };
  return { file, calls, env };
}

const EXPECTED = [
  `2026-11-29 10:02:03.120Z INFO  request accepted  releaseId=${A} target=data/ingest/staging`,
  `2026-11-29 10:02:04.000Z WARN  host slow to answer  releaseId=${B} host=10.0.0.2`,
  'not json: a line systemd wrote',
  `2026-11-29 10:02:05.500Z ERROR host failed  releaseId=${A} err={"message":"pull failed"}`,
];

describe('harbormaster logs', () => {
  it('reads the journal of the harbormaster unit as written, one readable line per event, other lines as they are', async () => {
    const { calls, env } = fixture();
    const result = await runCli(['logs'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout.trimEnd().split('\n'), EXPECTED);
    assert.equal(readFileSync(calls, 'utf8'), '-u harbormaster -o cat --no-pager\n');
  });

  it('--release with the 8 characters the tables show keeps that release\'s lines; --follow follows the journal', async () => {
    const { calls, env } = fixture();
    const result = await runCli(['logs', '--release', A.slice(0, 8), '--follow'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout.trimEnd().split('\n'), [EXPECTED[0], EXPECTED[3]]);
    assert.equal(readFileSync(calls, 'utf8'), '-u harbormaster -o cat --no-pager --follow\n');
  });

  it('--file reads a file instead (a container\'s log); a malformed --release is a mistake in the call', async () => {
    const { file, env } = fixture();
    const result = await runCli(['logs', '--file', file, '--release', B], env);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout.trimEnd().split('\n'), [EXPECTED[1]]);
    const bad = await runCli(['logs', '--release', 'abc'], env);
    assert.deepEqual([bad.code, bad.stderr], [2, "harbormaster: --release must be a release id or its first 8 or more characters, not 'abc'\n"]);
  });

  it('without journalctl, says to give --file', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'only-node-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    const result = await runCli(['logs'], { PATH: bin });
    assert.deepEqual([result.code, result.stderr], [2, "harbormaster: journalctl is not installed here: give --file with the worker's log\n"]);
  });
});
