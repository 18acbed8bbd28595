import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SSH, type HostLayout } from './layout.js';
import { livePid, spawnDaemon, stopByPidFile, waitFor } from './processes.js';
import { connect } from 'node:net';
import { findProgram } from './prerequisites.js';

// One OpenSSH server per host, inside the host's network namespace (nsenter --net only: the mount
// namespace stays the machine's, see LOCAL-FLEET.md). Root logs in with the fleet's client key only;
// DOCKER_HOST points `docker` at this host's own engine, and stream-local forwarding lets the worker
// carry the Docker API over its one SSH connection to the engine's socket.

function sshdConfig(host: HostLayout): string {
  return [
    `ListenAddress ${host.address}:22`,
    `HostKey ${host.sshHostKey}`,
    `PidFile ${host.sshdPidFile}`,
    `AuthorizedKeysFile ${SSH.authorizedKeys}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'AllowStreamLocalForwarding yes',
    'AllowTcpForwarding yes',
    'X11Forwarding no',
    'PrintMotd no',
    // A rollout keeps one connection per host, but tests and the CLI open a few at once.
    'MaxStartups 100:30:200',
    'MaxSessions 50',
    'LogLevel ERROR',
    `SetEnv DOCKER_HOST=unix://${host.dockerSocket}`,
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n');
}

export function sshdRunning(host: HostLayout): boolean {
  return livePid(host.sshdPidFile, 'sshd') !== undefined;
}

function portOpen(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port, timeout: 500 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export async function startSshd(host: HostLayout): Promise<void> {
  if (sshdRunning(host)) return;
  mkdirSync(dirname(host.sshdConfig), { recursive: true });
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation directory
  writeFileSync(host.sshdConfig, sshdConfig(host));
  const sshd = findProgram('sshd') ?? '/usr/sbin/sshd';
  // -D keeps it in the foreground so the PID we get is sshd's own; -e sends its log to our file.
  const pid = spawnDaemon('nsenter', [`--net=${host.namespacePath}`, sshd, '-D', '-e', '-f', host.sshdConfig], host.sshdLog);
  writeFileSync(host.sshdPidFile, `${pid}\n`);
  await waitFor(`sshd of ${host.name} on ${host.address}:22`, () => portOpen(host.address, 22), 10_000);
}

export async function stopSshd(host: HostLayout): Promise<void> {
  await stopByPidFile(host.sshdPidFile, 'sshd', 3_000);
}
