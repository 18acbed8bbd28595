import { readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_DIR, STATE_DIR } from './layout.js';
import { fleetNamespaces, namespacePids } from './network.js';
import { executableOf, isAlive, run } from './processes.js';
import { setTimeout as sleep } from 'node:timers/promises';

// What a fleet can leave behind when a run is killed or an engine dies hard: processes still inside
// its namespaces (containerd, shims, docker-proxy), containers (they have network namespaces of their
// own, but sit in the engine's cgroup parent), and mounts under its directories (overlay layers,
// container shm, the engines' netns bind mounts). All are found by where they are, never by name, so
// nothing outside the fleet is touched.

/** /proc/mounts escapes spaces and the like as octal. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function fleetMounts(): string[] {
  const roots = [RUN_DIR, STATE_DIR].map((root) => `${root}/`);
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => unescapeMountPath(line.split(' ')[1] ?? ''))
    .filter((mountPoint) => roots.some((root) => mountPoint.startsWith(root)) || /^\/(var\/)?run\/netns\/hm-h\d+$/.test(mountPoint));
}

/** Unmounts everything under the fleet's directories, deepest first. */
export async function unmountFleetMounts(only?: (mountPoint: string) => boolean): Promise<void> {
  const mounts = fleetMounts()
    .filter((mountPoint) => !/\/netns\/hm-h\d+$/.test(mountPoint)) // namespaces go with `ip netns delete`
    .filter(only ?? (() => true))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of mounts) {
    try {
      await run('umount', [mountPoint], { timeoutMs: 10_000 });
    } catch {
      // Still busy (a process we could not stop yet): detach it so that it goes when released.
      await run('umount', ['-l', mountPoint], { timeoutMs: 10_000 }).catch(() => undefined);
    }
  }
}

/** SIGKILLs every process left in a fleet namespace and waits until they are gone. */
export async function killNamespaceProcesses(namespace: string): Promise<void> {
  await killUntilGone(() => namespacePids(namespace));
}

/** SIGKILLs every process of one program in a fleet namespace (sshd: its listener and every connection). */
export async function killNamespaceProgram(namespace: string, executable: string): Promise<void> {
  await killUntilGone(async () => (await namespacePids(namespace)).filter((pid) => executableOf(pid)?.endsWith(executable)));
}

/** SIGKILLs what `listPids` finds until it finds nothing (a few rounds: killing can reveal children). */
async function killUntilGone(listPids: () => number[] | Promise<number[]>): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const pids = (await listPids()).filter((pid) => pid !== process.pid);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    const deadline = Date.now() + 3_000;
    while (pids.some(isAlive) && Date.now() < deadline) await sleep(50);
  }
}

/** Every process inside any fleet namespace (empty when the fleet is down). */
export async function fleetNamespaceProcesses(): Promise<number[]> {
  return (await Promise.all(fleetNamespaces().map(namespacePids))).flat();
}

const CGROUP_ROOT = '/sys/fs/cgroup';

/** Every cgroup directory under `parent` (e.g. /harbormaster-fleet/h1) in every mounted hierarchy, deepest first. */
function cgroupDirs(parent: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(join(dir, entry.name));
    found.push(dir);
  };
  let hierarchies: string[] = [];
  try {
    hierarchies = readdirSync(CGROUP_ROOT).map((name) => join(CGROUP_ROOT, name));
  } catch {
    return [];
  }
  for (const hierarchy of hierarchies) {
    const dir = join(hierarchy, parent);
    try {
      if (statSync(dir).isDirectory()) walk(dir);
    } catch {
      /* not in this hierarchy */
    }
  }
  return found;
}

function cgroupPids(parent: string): number[] {
  const pids = new Set<number>();
  for (const dir of cgroupDirs(parent)) {
    try {
      for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (line) pids.add(Number(line));
    } catch {
      /* gone */
    }
  }
  return [...pids];
}

/** SIGKILLs the processes in the engine's container cgroups (orphans of a killed engine), then removes the cgroups. */
export async function clearCgroups(parent: string): Promise<void> {
  await killUntilGone(() => cgroupPids(parent));
  for (const dir of cgroupDirs(parent)) {
    try {
      rmdirSync(dir);
    } catch {
      /* still busy (a zombie not reaped yet) or already gone */
    }
  }
}
