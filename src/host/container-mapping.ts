import type { ContainerCreateOptions, ContainerInspectInfo } from 'dockerode';
import { ContainerSpecError } from './host-errors.js';
import type { ContainerInfo, ContainerSpec } from './host-session.js';

// Translation between the rollout's words (ContainerSpec, ContainerInfo) and the Docker Engine API's
// (create body, inspect body). Pure functions: no I/O, tested without an engine.

interface PortMapping {
  readonly key: string; // "8080/tcp", as ExposedPorts and PortBindings name a container port
  readonly hostIp?: string;
  readonly hostPort: string;
}

const PORT = /^\d{1,5}$/;

/** "hostPort:containerPort[/proto]" or "hostIp:hostPort:containerPort[/proto]". */
export function parsePortMapping(text: string): PortMapping {
  const [ports = '', protocol = 'tcp', ...extra] = text.split('/');
  const parts = ports.split(':');
  const hostIp = parts.length === 3 ? parts[0] : undefined;
  const [hostPort, containerPort] = parts.length === 3 ? parts.slice(1) : parts;
  if (extra.length > 0 || parts.length < 2 || parts.length > 3 || !hostPort || !containerPort || !PORT.test(hostPort) || !PORT.test(containerPort) || !['tcp', 'udp', 'sctp'].includes(protocol)) {
    throw new ContainerSpecError(`port mapping "${text}" is not hostPort:containerPort[/tcp|udp]`);
  }
  return { key: `${containerPort}/${protocol}`, hostPort, ...(hostIp ? { hostIp } : {}) };
}

/** "source:target" or "source:target:ro|rw": passed to the engine as a bind, checked here for a clear error. */
export function checkVolume(text: string): string {
  const parts = text.split(':');
  const [source, target, mode] = parts;
  if (parts.length < 2 || parts.length > 3 || !source || !target?.startsWith('/') || (mode !== undefined && !/^(ro|rw)(,.*)?$/.test(mode))) {
    throw new ContainerSpecError(`volume "${text}" is not source:target[:ro]`);
  }
  return text;
}

export function createOptionsFor(spec: ContainerSpec): ContainerCreateOptions {
  // A container started without a variable it was configured with would fail later and less clearly.
  const unresolved = Object.keys(spec.environmentSources ?? {});
  if (unresolved.length > 0) throw new ContainerSpecError(`environment ${unresolved.join(', ')} not read from its source before the start (no resolving connector)`);
  const exposedPorts: Record<string, Record<string, never>> = {};
  const portBindings: Record<string, Array<{ HostIp?: string; HostPort: string }>> = {};
  for (const mapping of spec.ports.map(parsePortMapping)) {
    exposedPorts[mapping.key] = {};
    (portBindings[mapping.key] ??= []).push({ HostPort: mapping.hostPort, ...(mapping.hostIp ? { HostIp: mapping.hostIp } : {}) });
  }
  return {
    name: spec.name,
    Image: spec.image,
    Env: Object.entries(spec.environment).map(([key, value]) => `${key}=${value}`),
    Labels: { ...spec.labels },
    ...(spec.command ? { Cmd: [...spec.command] } : {}),
    ExposedPorts: exposedPorts,
    StopTimeout: spec.stopTimeoutSeconds,
    HostConfig: {
      PortBindings: portBindings,
      Binds: spec.volumes.map(checkVolume),
      RestartPolicy: { Name: spec.restartPolicy === 'no' ? '' : spec.restartPolicy },
      ...(spec.network === 'none' ? { NetworkMode: 'none' } : {}),
    },
  };
}

function healthOf(info: ContainerInspectInfo): ContainerInfo['health'] {
  const status = info.State.Health?.Status;
  return status === 'starting' || status === 'healthy' || status === 'unhealthy' ? status : 'none';
}

export const STATES: ReadonlySet<string> = new Set(['created', 'running', 'restarting', 'paused', 'exited', 'dead', 'removing']);

export function containerInfoFrom(info: ContainerInspectInfo): ContainerInfo {
  const stopped = info.State.Status === 'exited' || info.State.Status === 'dead';
  const state = (STATES.has(info.State.Status) ? info.State.Status : 'dead') as ContainerInfo['state'];
  // The engine writes 0001-01-01T00:00:00Z for a container never started.
  const startedAt = Date.parse(info.State.StartedAt);
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    // The reference it was created from (what the rollout compares), not the image's sha256 id.
    image: info.Config.Image,
    running: info.State.Running,
    state,
    restartCount: info.RestartCount ?? 0,
    ...(startedAt > 0 ? { startedAt } : {}),
    health: healthOf(info),
    ...(stopped ? { exitCode: info.State.ExitCode } : {}),
    labels: { ...(info.Config.Labels ?? {}) },
    createdAt: info.Created,
    // The engine writes '' for no policy; an inspect that does not say leaves it unknown.
    ...(info.HostConfig?.RestartPolicy ? { restartPolicy: info.HostConfig.RestartPolicy.Name || 'no' } : {}),
  };
}

/** The engine's label filter: every label as key=value, all of which must match. */
export function labelFilter(labels: Readonly<Record<string, string>>): { label: string[] } {
  return { label: Object.entries(labels).map(([key, value]) => `${key}=${value}`) };
}
