import assert from 'node:assert/strict';
import { mkdtempSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError, parseWorkerConfig } from '../../src/config/worker-config.js';
import { SecretUnavailableError } from '../../src/config/secret-source.js';
import { WorkerKeyRing } from '../../src/secrets/signing-keys.js';

// The worker's key ring on its own: what is read when, and what is kept when a file goes bad.

const KEY_A = 'a-key-of-the-right-length-0123456789abcdef';
const KEY_B = 'b-key-of-the-right-length-0123456789abcdef';

function ring(file: string, env: NodeJS.ProcessEnv = {}) {
  const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
  const log = {
    info: (fields: Record<string, unknown>, message: string) => void lines.push({ level: 'info', fields, message }),
    warn: (fields: Record<string, unknown>, message: string) => void lines.push({ level: 'warn', fields, message }),
  };
  return { keys: new WorkerKeyRing([{ id: 'ci', file }, { id: 'from-env', env: 'KEY_FROM_ENV' }], log, { KEY_FROM_ENV: KEY_B, ...env }), lines };
}

describe('the worker key ring', () => {
  it('refuses at start a key file that is missing or shorter than 32 bytes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    assert.throws(() => ring(join(dir, 'none')), SecretUnavailableError);
    writeFileSync(join(dir, 'short'), 'x'.repeat(31));
    assert.throws(() => ring(join(dir, 'short')), /is 31 bytes; at least 32 are needed/);
  });

  it('reads a file key again on reload (SIGHUP) even when the file looks unchanged', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    const file = join(dir, 'ci.key');
    writeFileSync(file, KEY_A);
    const { keys, lines } = ring(file);
    assert.equal(keys.current().get('ci')?.secret.toString(), KEY_A);
    writeFileSync(file, KEY_B);
    keys.reload();
    assert.equal(keys.current().get('ci')?.secret.toString(), KEY_B);
    assert.equal(lines.filter((l) => l.level === 'info').length, 1);
    assert.equal(keys.current().get('from-env')?.secret.toString(), KEY_B);
  });

  it('removes a file key at once, without a reload, when its file is deleted, emptied or holds no valid key; brings it back when the file holds one again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    const file = join(dir, 'ci.key');
    writeFileSync(file, KEY_A);
    const { keys, lines } = ring(file);
    assert.equal(keys.current().get('ci')?.secret.toString(), KEY_A);

    unlinkSync(file);
    assert.equal(keys.current().has('ci'), false, 'deleted: gone at the next use');
    assert.match(String(lines.at(-1)?.message), /^signing key removed: its file holds no valid key; requests signed with it are refused until the file holds a valid key again$/);
    assert.equal(lines.at(-1)?.level, 'warn');
    assert.equal(lines.at(-1)?.fields.removed, true);

    writeFileSync(file, KEY_A);
    assert.equal(keys.current().get('ci')?.secret.toString(), KEY_A, 'a valid key again: back');
    writeFileSync(file, '');
    assert.equal(keys.current().has('ci'), false, 'emptied: gone');
    assert.match(String(lines.at(-1)?.fields.problem), /missing or empty/);

    writeFileSync(file, KEY_B);
    assert.equal(keys.current().get('ci')?.secret.toString(), KEY_B);
    writeFileSync(file, 'revoked');
    assert.equal(keys.current().has('ci'), false, 'too short to be a key: gone');
    assert.match(String(lines.at(-1)?.fields.problem), /is 7 bytes; at least 32 are needed/);
    keys.reload();
    assert.equal(keys.current().has('ci'), false, 'a reload does not bring it back');
    // A refused file is not read again (nor logged again) until it changes.
    const logged = lines.length;
    keys.current();
    keys.current();
    assert.equal(lines.length, logged);
    assert.equal(keys.current().get('from-env')?.secret.toString(), KEY_B, 'keys from the environment stay');
  });
});

describe('signing.keys[].scope in the configuration', () => {
  const config = (scope: unknown) =>
    stringify({
      aws: { region: 'eu-west-1' },
      queue: { url: 'https://sqs.eu-west-1.amazonaws.com/1/q', deadLetterUrl: 'https://sqs.eu-west-1.amazonaws.com/1/d' },
      signing: { keys: [{ id: 'ci', env: 'K', scope }] },
      releases: [{ stack: 'data', release: 'ingest', deployments: ['staging'], images: { allowedRepositories: ['r/x'] } }],
    });
  it('reads a scope, and refuses one that allows nothing or names a release badly', () => {
    assert.deepEqual(parseWorkerConfig(config({ deployments: ['staging'] })).signing.keys[0]!.scope, { deployments: ['staging'], personal: false });
    assert.throws(() => parseWorkerConfig(config({})), (error: unknown) => error instanceof ConfigError && /a key scope allows nothing: list deployments, or set personal: true/.test(error.message));
    assert.throws(() => parseWorkerConfig(config({ personal: true, releases: ['ingest'] })), /a release in a key scope is written stack\/release/);
    assert.throws(() => parseWorkerConfig(config({ personal: true, targets: ['x'] })), /unknown field|Unrecognized key/);
  });
});
