import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { HOST_ENGINE_DIR, HOST_ENGINE_SOCKET, SSH, type HostLayout } from './layout.js';
import { livePid, spawnDaemon, stopByPidFile, waitFor } from './processes.js';
import { connect } from 'node:net';
import { findProgram } from './prerequisites.js';

// One OpenSSH server per host, inside the host's network namespace (nsenter --net: the engines keep
// the machine's mount namespace, see LOCAL-FLEET.md). The sshd alone gets a mount namespace of its
// own, in which HOST_ENGINE_DIR is this host's run folder: every host's engine is at one path
// (HOST_ENGINE_SOCKET), as /var/run/docker.sock is on real hosts, so one ssh.engineSocket serves the
// whole fleet. The deploy users (and root) log in with the fleet's client key only; DOCKER_HOST points
// `docker` at the engine for people, and stream-local forwarding lets the worker carry the Docker API
// over its one SSH connection to the engine's socket, with no shell run.

function sshdConfig(host: HostLayout): string {
  return [
    `ListenAddress ${host.address}:22`,
    `HostKey ${host.sshHostKey}`,
    `PidFile ${host.sshdPidFile}`,
    `AuthorizedKeysFile ${SSH.authorizedKeysDir}/%u`,
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
    `SetEnv DOCKER_HOST=unix://${HOST_ENGINE_SOCKET}`,
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
  mkdirSync(HOST_ENGINE_DIR, { recursive: true, mode: 0o755 });
  // -D keeps it in the foreground so the PID we get is sshd's own (nsenter, unshare and sh each exec
  // the next); -e sends its log to our file. The bind is private to this sshd's mount namespace.
  const runDir = dirname(host.dockerSocket);
  const script = `mount --bind "$1" "$2" && exec "$3" -D -e -f "$4"`;
  const pid = spawnDaemon(
    'nsenter',
    [`--net=${host.namespacePath}`, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sshd-in-namespace', runDir, HOST_ENGINE_DIR, sshd, host.sshdConfig],
    host.sshdLog,
  );
  writeFileSync(host.sshdPidFile, `${pid}\n`);
  await waitFor(`sshd of ${host.name} on ${host.address}:22`, () => portOpen(host.address, 22), 10_000);
}

export async function stopSshd(host: HostLayout): Promise<void> {
  await stopByPidFile(host.sshdPidFile, 'sshd', 3_000);
}
