import { existsSync } from 'node:fs';
import { FLEET_FILE, hostLayout, REGISTRY_ADDRESS } from './layout.js';
import { engineRunning, pingEngine } from './engine.js';
import { sshdRunning } from './sshd.js';
import { registryRunning } from './registry.js';
import { APP_PORT } from './live-container.js';
import { recordedFleet, type Fleet } from './fleet.js';

// What runs right now, looked at from outside (another process than the one that brought the fleet
// up): for `cli.ts status` and for ops. Changes nothing.

export interface HostStatus {
  name: string;
  address: string;
  engine: boolean;
  sshd: boolean;
  /** What GET /version answered on the host's address, if anything. */
  version?: string;
}

export interface FleetStatus {
  up: boolean;
  hosts: HostStatus[];
  registry: { address: string; running: boolean };
  moto?: { endpoint: string };
  bringUpMs?: number;
}

async function version(address: string): Promise<string | undefined> {
  try {
    const response = await fetch(`http://${address}:${APP_PORT}/version`, { signal: AbortSignal.timeout(1_000) });
    return response.ok ? (await response.text()).trim() : `HTTP ${response.status}`;
  } catch {
    return undefined;
  }
}

export async function fleetStatus(): Promise<FleetStatus> {
  const recorded = existsSync(FLEET_FILE) ? recordedFleet() : undefined;
  const hosts = await Promise.all(
    Array.from({ length: recorded?.hosts ?? 0 }, async (_, i) => {
      const host = hostLayout(i + 1);
      const status: HostStatus = { name: host.name, address: host.address, engine: engineRunning(host) && (await pingEngine(host.dockerSocket)), sshd: sshdRunning(host) };
      const answer = await version(host.address);
      return answer === undefined ? status : { ...status, version: answer };
    }),
  );
  return {
    up: recorded !== undefined && hosts.every((host) => host.engine && host.sshd),
    hosts,
    registry: { address: REGISTRY_ADDRESS, running: registryRunning() },
    ...(recorded ? { moto: { endpoint: recorded.motoEndpoint }, bringUpMs: recorded.bringUpMs } : {}),
  };
}

/** The Fleet's data (no functions) as plain JSON. */
export function fleetAsJson(fleet: Fleet): unknown {
  return {
    hosts: fleet.hosts,
    ssh: fleet.ssh,
    registry: fleet.registry,
    images: fleet.images,
    aws: fleet.aws,
    chat: { url: fleet.chat.url, note: 'lives only in the process that brought the fleet up' },
    targets: fleet.targets,
    bringUpMs: fleet.bringUpMs,
    bringUp: fleet.bringUp,
    stateDir: fleet.stateDir,
    runDir: fleet.runDir,
  };
}

export function summarize(status: FleetStatus): string {
  if (!status.up && status.hosts.length === 0) return `fleet is down (registry ${status.registry.running ? 'running' : 'stopped'})`;
  const lines = [
    `fleet ${status.up ? 'up' : 'DEGRADED'}: ${status.hosts.length} host(s), registry ${status.registry.address} ${status.registry.running ? 'running' : 'STOPPED'}, moto ${status.moto?.endpoint ?? '-'}`,
    ...status.hosts.map(
      (host) => `  ${host.name} ${host.address}  engine ${host.engine ? 'up' : 'DOWN'}  sshd ${host.sshd ? 'up' : 'DOWN'}  /version ${host.version ?? 'no answer'}`,
    ),
  ];
  return lines.join('\n');
}
