import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { BRIDGE, BRIDGE_ADDRESS, SUBNET_PREFIX, type HostLayout } from './layout.js';
import { run, succeeds } from './processes.js';

// The fleet's private network: bridge hmbr0 (10.77.0.1/24) in the root namespace and, per host, a
// network namespace hm-hN joined to it by a veth pair (hmvN on the bridge, eth0 inside with
// 10.77.0.(10+N)/24 and a default route to the bridge). Nothing routes beyond 10.77.0.0/24: the root
// namespace does not forward, so a host can reach only the bridge address and its peers.

const NAMESPACE_PREFIX = 'hm-h';
const PORT_PREFIX = 'hmv';

const ip = (...args: string[]) => run('ip', args, { timeoutMs: 15_000 });

export async function ensureBridge(): Promise<void> {
  if (!(await succeeds('ip', ['link', 'show', BRIDGE]))) await ip('link', 'add', BRIDGE, 'type', 'bridge');
  const { stdout } = await ip('-o', '-4', 'addr', 'show', 'dev', BRIDGE);
  if (!stdout.includes(`${BRIDGE_ADDRESS}/${SUBNET_PREFIX}`)) await ip('addr', 'add', `${BRIDGE_ADDRESS}/${SUBNET_PREFIX}`, 'dev', BRIDGE);
  await ip('link', 'set', BRIDGE, 'up');
}

/** True when the host's namespace exists and its eth0 carries its address. */
export async function hostNetworkReady(host: HostLayout): Promise<boolean> {
  if (!existsSync(host.namespacePath)) return false;
  try {
    const { stdout } = await ip('-n', host.namespace, '-o', '-4', 'addr', 'show', 'dev', 'eth0');
    return stdout.includes(`${host.address}/${SUBNET_PREFIX}`) && (await succeeds('ip', ['link', 'show', host.bridgePort]));
  } catch {
    return false;
  }
}

export async function createHostNetwork(host: HostLayout): Promise<void> {
  await removeHostNetwork(host);
  await ip('netns', 'add', host.namespace);
  await ip('link', 'add', host.bridgePort, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.namespace);
  await ip('link', 'set', host.bridgePort, 'master', BRIDGE, 'up');
  await ip('-n', host.namespace, 'link', 'set', 'lo', 'up');
  await ip('-n', host.namespace, 'addr', 'add', `${host.address}/${SUBNET_PREFIX}`, 'dev', 'eth0');
  await ip('-n', host.namespace, 'link', 'set', 'eth0', 'up');
  await ip('-n', host.namespace, 'route', 'add', 'default', 'via', BRIDGE_ADDRESS);
}

export async function removeHostNetwork(host: Pick<HostLayout, 'namespace' | 'bridgePort'>): Promise<void> {
  // Deleting the namespace destroys eth0 and with it the veth peer; a port left on the bridge by a
  // half-made host is removed explicitly.
  if (existsSync(`/var/run/netns/${host.namespace}`)) await ip('netns', 'delete', host.namespace);
  // The kernel destroys the peer asynchronously after the namespace goes: it may vanish under us.
  if (await succeeds('ip', ['link', 'show', host.bridgePort])) await ip('link', 'delete', host.bridgePort).catch(ignoreMissingDevice);
}

function ignoreMissingDevice(error: unknown): void {
  if (!String(error).includes('Cannot find device')) throw error;
}

export async function removeBridge(): Promise<void> {
  if (await succeeds('ip', ['link', 'show', BRIDGE])) await ip('link', 'delete', BRIDGE).catch(ignoreMissingDevice);
}

/** Every fleet namespace present, including those of a larger fleet or of a killed run. */
export function fleetNamespaces(): string[] {
  if (!existsSync('/var/run/netns')) return [];
  return readdirSync('/var/run/netns').filter((name) => name.startsWith(NAMESPACE_PREFIX));
}

/** Every fleet link in the root namespace (bridge and veth ends). */
export async function fleetLinks(): Promise<string[]> {
  const { stdout } = await ip('-o', 'link', 'show');
  return stdout
    .split('\n')
    .map((line) => line.split(':')[1]?.trim().split('@')[0] ?? '')
    .filter((name) => name === BRIDGE || name.startsWith(PORT_PREFIX));
}

/** PIDs of every process inside a namespace (the engine, its containerd, shims, containers, sshd). */
export async function namespacePids(namespace: string): Promise<number[]> {
  try {
    const { stdout } = await ip('netns', 'pids', namespace);
    return stdout.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A host "loses its network cable": its bridge port goes down, nothing reaches it, it reaches nothing. */
export async function setHostLink(host: HostLayout, up: boolean): Promise<void> {
  await ip('link', 'set', host.bridgePort, up ? 'up' : 'down');
}

/**
 * `ip netns add` turns /run/netns into a (shared) bind mount of itself the first time it runs. Once no
 * namespace at all is left there, that mount goes too, so the machine is as before the first bring-up.
 * Namespaces of anyone else keep it in place.
 */
export async function releaseNamespaceDirectory(): Promise<void> {
  for (const dir of ['/run/netns', '/var/run/netns']) {
    if (!existsSync(dir) || readdirSync(dir).length > 0) continue;
    const mounted = readFileSync('/proc/mounts', 'utf8').split('\n').some((line) => line.split(' ')[1] === dir);
    if (mounted) await run('umount', [dir], { timeoutMs: 10_000 }).catch(() => undefined);
    try {
      rmdirSync(dir); // `ip netns add` made it; empty now
    } catch {
      /* /var/run is a link to /run: already gone */
    }
  }
}
