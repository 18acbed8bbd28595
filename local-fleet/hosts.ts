import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostLayout, type HostLayout } from './layout.js';
import { engineRunning, pingEngine, startEngine, stopEngine } from './engine.js';
import { createHostNetwork, hostNetworkReady, removeHostNetwork, setHostLink } from './network.js';
import { ensureHostKey } from './ssh-keys.js';
import { sshdRunning, startSshd, stopSshd } from './sshd.js';
import { clearCgroups, killNamespaceProcesses, unmountFleetMounts } from './leftovers.js';

// One simulated EC2 instance: its namespace and veth, its own Docker engine and SSH server.
// A host that is already whole (a re-entrant bring-up) is kept as it is; a host that is not (killed
// run, half-made) is torn down completely and made again, which is quick because its engine's data
// root, with the images it pulled, lives in the state directory.

export async function hostIsWhole(host: HostLayout): Promise<boolean> {
  return (await hostNetworkReady(host)) && engineRunning(host) && (await pingEngine(host.dockerSocket)) && sshdRunning(host);
}

export async function bringUpHost(host: HostLayout): Promise<'reused' | 'started'> {
  await ensureHostKey(host);
  if (await hostIsWhole(host)) {
    await setHostLink(host, true); // a cut network left by a test is not "whole", but costs nothing to mend
    return 'reused';
  }
  await tearDownHost(host);
  await createHostNetwork(host);
  await startEngine(host, { namespacePath: host.namespacePath, cgroupParent: host.cgroupParent });
  await startSshd(host);
  return 'started';
}

/** Stops the host's daemons (engine gracefully, so its containers stop), then removes every trace. */
export async function tearDownHost(host: HostLayout): Promise<void> {
  await stopSshd(host);
  await stopEngine(host);
  await killNamespaceProcesses(host.namespace);
  await clearCgroups(host.cgroupParent);
  const runDir = dirname(host.dockerSocket);
  await unmountFleetMounts((mountPoint) => mountPoint.startsWith(`${runDir}/`) || mountPoint === host.dockerDataRoot || mountPoint.startsWith(`${host.dockerDataRoot}/`));
  await removeHostNetwork(host);
  rmSync(runDir, { recursive: true, force: true });
}

/** Host indexes from a namespace or link name such as hm-h3 / hmv3. */
export function hostFromName(name: string): HostLayout | undefined {
  const match = /^(?:hm-h|hmv|h)(\d+)$/.exec(name);
  return match ? hostLayout(Number(match[1])) : undefined;
}
