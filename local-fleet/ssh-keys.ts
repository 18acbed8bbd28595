import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SSH, type HostLayout } from './layout.js';
import { run } from './processes.js';

// SSH identities of the fleet: one ed25519 host key per host and one client key for the worker,
// generated once and kept in the state directory (so known_hosts stays valid across bring-ups).

async function ensureKey(path: string, comment: string): Promise<void> {
  if (existsSync(path) && existsSync(`${path}.pub`)) return;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], { input: 'y\n' });
}

export async function ensureClientKey(): Promise<void> {
  await ensureKey(SSH.clientKey, 'harbormaster-fleet-worker');
}

/** A new host key for the host (its sshd must be restarted to present it). */
export async function rotateHostKey(host: HostLayout): Promise<void> {
  rmSync(host.sshHostKey, { force: true });
  rmSync(`${host.sshHostKey}.pub`, { force: true });
  await ensureKey(host.sshHostKey, `harbormaster-fleet-${host.name}-rotated`);
}

export async function ensureHostKey(host: HostLayout): Promise<void> {
  await ensureKey(host.sshHostKey, `harbormaster-fleet-${host.name}`);
}

/** known_hosts for the worker side: each host address with its host key, nothing else. */
export function writeKnownHosts(hosts: HostLayout[]): void {
  const lines = hosts.map((host) => {
    const [type, key] = readFileSync(`${host.sshHostKey}.pub`, 'utf8').trim().split(/\s+/);
    return `${host.address} ${type} ${key}`;
  });
  writeFileSync(SSH.knownHosts, `${lines.join('\n')}\n`, { mode: 0o644 });
}
