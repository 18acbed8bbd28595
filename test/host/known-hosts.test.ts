import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fingerprintOf, hostKeyAlgorithmsFor, KnownHosts, keyTypeOf } from '../../src/host/known-hosts.js';

// known_hosts parsing checked against OpenSSH itself: keys from ssh-keygen, hashed names from
// `ssh-keygen -H`, fingerprints from `ssh-keygen -l`.

interface Key {
  readonly line: string; // "type base64"
  readonly blob: Buffer;
  readonly fingerprint: string; // as ssh-keygen -l prints it
}

describe('known_hosts', () => {
  let dir: string;
  let alpha: Key;
  let beta: Key;

  function makeKey(name: string, type: string): Key {
    const path = join(dir, name);
    execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', name, '-f', path]);
    const [keyType, base64] = readFileSync(`${path}.pub`, 'utf8').trim().split(/\s+/);
    const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${path}.pub`], { encoding: 'utf8' }).split(/\s+/)[1]!;
    return { line: `${keyType} ${base64}`, blob: Buffer.from(base64!, 'base64'), fingerprint };
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hm-known-hosts-'));
    alpha = makeKey('alpha', 'ed25519');
    beta = makeKey('beta', 'ecdsa');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('gives the fingerprint and key type as OpenSSH prints them', () => {
    assert.equal(fingerprintOf(alpha.blob), alpha.fingerprint);
    assert.equal(fingerprintOf(beta.blob), beta.fingerprint);
    assert.equal(keyTypeOf(alpha.blob), 'ssh-ed25519');
    assert.equal(keyTypeOf(beta.blob), 'ecdsa-sha2-nistp256');
  });

  it('accepts only the key listed for the address, port 22 bare or as [address]:22', () => {
    const known = KnownHosts.parse(`# comment\n\n10.0.0.1 ${alpha.line}\n[10.0.0.2]:22 ${beta.line}\n`);
    assert.deepEqual(known.verify('10.0.0.1', 22, alpha.blob), { accepted: true });
    assert.deepEqual(known.verify('10.0.0.2', 22, beta.blob), { accepted: true });
    const changed = known.verify('10.0.0.1', 22, beta.blob);
    assert.equal(changed.accepted, false);
    assert.equal(!changed.accepted && changed.problem, 'changed-key');
    const unknown = known.verify('10.0.0.3', 22, alpha.blob);
    assert.equal(!unknown.accepted && unknown.problem, 'unknown-host');
    // a port other than 22 is a different entry
    assert.equal(known.verify('10.0.0.1', 2222, alpha.blob).accepted, false);
  });

  it('matches [address]:port entries, host lists and wildcards with negation', () => {
    const known = KnownHosts.parse(`[10.0.0.1]:2222 ${alpha.line}\nweb1,10.0.0.5 ${beta.line}\n10.0.1.*,!10.0.1.9 ${alpha.line}\n`);
    assert.equal(known.verify('10.0.0.1', 2222, alpha.blob).accepted, true);
    assert.equal(known.verify('10.0.0.1', 22, alpha.blob).accepted, false);
    assert.equal(known.verify('10.0.0.5', 22, beta.blob).accepted, true);
    assert.equal(known.verify('10.0.1.7', 22, alpha.blob).accepted, true);
    assert.equal(known.verify('10.0.1.9', 22, alpha.blob).accepted, false);
  });

  it('matches names hashed by ssh-keygen -H', () => {
    const file = join(dir, 'known_hosts');
    writeFileSync(file, `10.0.0.1 ${alpha.line}\n[10.0.0.2]:2200 ${beta.line}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    const hashed = readFileSync(file, 'utf8');
    assert.doesNotMatch(hashed, /10\.0\.0\./, 'names are hashed');
    const known = KnownHosts.parse(hashed);
    assert.equal(known.verify('10.0.0.1', 22, alpha.blob).accepted, true);
    assert.equal(known.verify('10.0.0.2', 2200, beta.blob).accepted, true);
    assert.equal(known.verify('10.0.0.2', 22, beta.blob).accepted, false);
    assert.equal(known.verify('10.0.0.1', 22, beta.blob).accepted, false);
  });

  it('refuses a key marked @revoked and ignores @cert-authority lines', () => {
    const known = KnownHosts.parse(`@revoked * ${beta.line}\n10.0.0.1 ${beta.line}\n@cert-authority * ${alpha.line}\n`);
    const verdict = known.verify('10.0.0.1', 22, beta.blob);
    assert.equal(!verdict.accepted && verdict.problem, 'revoked-key');
    assert.equal(known.verify('10.0.0.2', 22, alpha.blob).accepted, false);
  });

  it('offers the known key types first', () => {
    const known = KnownHosts.parse(`10.0.0.1 ${beta.line}\n`);
    const algorithms = hostKeyAlgorithmsFor(known.keysFor('10.0.0.1', 22));
    assert.equal(algorithms[0], 'ecdsa-sha2-nistp256');
    assert.ok(algorithms.includes('ssh-ed25519'));
  });
});
