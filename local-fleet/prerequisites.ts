import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

// The fleet needs root (namespaces, bridges, engines) and a handful of Debian packages. Checking up
// front turns "spawn ENOENT" halfway through a bring-up into one line that says what to do.

const REQUIRED_PROGRAMS: Array<[program: string, debianPackage: string]> = [
  ['dockerd', 'docker.io'],
  ['docker', 'docker.io'],
  ['containerd', 'containerd'],
  ['sshd', 'openssh-server'],
  ['ssh', 'openssh-client'],
  ['ssh-keygen', 'openssh-client'],
  ['docker-registry', 'docker-registry'],
  ['htpasswd', 'apache2-utils'],
  ['ip', 'iproute2'],
  ['nsenter', 'util-linux'],
  ['iptables', 'iptables'],
];
const BUSYBOX = '/bin/busybox';

export function findProgram(program: string): string | undefined {
  const path = `${process.env.PATH ?? ''}${delimiter}/usr/sbin${delimiter}/sbin`;
  for (const dir of path.split(delimiter)) {
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Throws one clear line when the fleet cannot run on this machine. */
export function assertPrerequisites(): void {
  if (process.platform !== 'linux') throw new Error(`the local fleet needs Linux (network namespaces); this is ${process.platform}`);
  if (process.getuid?.() !== 0) throw new Error('the local fleet needs root (network namespaces, bridges, Docker engines): run as root');
  const missing = REQUIRED_PROGRAMS.filter(([program]) => !findProgram(program)).map(([, debianPackage]) => debianPackage);
  try {
    accessSync(BUSYBOX, constants.X_OK);
  } catch {
    missing.push('busybox-static');
  }
  if (missing.length > 0) {
    throw new Error(`the local fleet is missing packages: ${[...new Set(missing)].join(' ')} (run local-fleet/install-packages.sh as root)`);
  }
}
