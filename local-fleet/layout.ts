import { join } from 'node:path';
import type { EngineLayout } from './engine.js';

// Where the fleet keeps its files. Two roots on purpose:
// - STATE_DIR persists between bring-ups (engine data roots with their pulled images, registry
//   storage, keys, credentials), so a second bring-up pulls and builds nothing;
// - RUN_DIR holds what only makes sense while the fleet runs (sockets, exec roots, PID files,
//   generated configs); tear-down empties it.
// Both are overridable so that a user can keep them elsewhere; the defaults are not on tmpfs.

export const STATE_DIR = process.env.HARBORMASTER_FLEET_STATE ?? '/var/lib/harbormaster-fleet';
export const RUN_DIR = process.env.HARBORMASTER_FLEET_RUN ?? '/run/harbormaster-fleet';

/** The private network: a bridge in the root namespace, one namespace per host. */
export const BRIDGE = 'hmbr0';
export const BRIDGE_ADDRESS = '10.77.0.1';
export const SUBNET_PREFIX = 24;
export const REGISTRY_ADDRESS = `${BRIDGE_ADDRESS}:5000`;
/** 30 staging hosts and one personal host fit: addresses .11-.42 of the /24, one engine (about 50 MB) and one sshd each. */
export const MAX_HOSTS = 32;
/** Every fleet engine's containers live in cgroups under this parent. */
export const CGROUP_PARENT = '/harbormaster-fleet';

export interface HostLayout extends EngineLayout {
  /** h1, h2, ... as in the EC2 Name tag. */
  readonly name: string;
  readonly index: number;
  readonly address: string;
  readonly namespace: string;
  /** The namespace's file, as nsenter --net wants it. */
  readonly namespacePath: string;
  /** The veth end on the bridge (the other end is eth0 inside the namespace). */
  readonly bridgePort: string;
  /** cgroup parent of the engine's containers (in every cgroup hierarchy). */
  readonly cgroupParent: string;
  readonly sshHostKey: string;
  readonly sshdConfig: string;
  readonly sshdPidFile: string;
  readonly sshdLog: string;
}

export function hostLayout(index: number): HostLayout {
  const name = `h${index}`;
  const run = join(RUN_DIR, name);
  const state = join(STATE_DIR, 'hosts', name);
  return {
    name,
    index,
    address: `10.77.0.${10 + index}`,
    namespace: `hm-${name}`,
    namespacePath: `/var/run/netns/hm-${name}`,
    bridgePort: `hmv${index}`,
    dockerSocket: join(run, 'docker.sock'),
    dockerDataRoot: join(state, 'docker'),
    dockerExecRoot: join(run, 'docker-exec'),
    dockerPidFile: join(run, 'dockerd.pid'),
    dockerConfigFile: join(run, 'daemon.json'),
    dockerLog: join(run, 'dockerd.log'),
    cgroupParent: `${CGROUP_PARENT}/${name}`,
    sshHostKey: join(state, 'ssh_host_ed25519_key'),
    sshdConfig: join(run, 'sshd_config'),
    sshdPidFile: join(run, 'sshd.pid'),
    sshdLog: join(run, 'sshd.log'),
  };
}

/** The engine that builds the test images: root namespace, no networking of its own. */
export const BUILDER = {
  dockerSocket: join(RUN_DIR, 'builder', 'docker.sock'),
  dockerDataRoot: join(STATE_DIR, 'builder', 'docker'),
  dockerExecRoot: join(RUN_DIR, 'builder', 'docker-exec'),
  dockerPidFile: join(RUN_DIR, 'builder', 'dockerd.pid'),
  dockerConfigFile: join(RUN_DIR, 'builder', 'daemon.json'),
  dockerLog: join(RUN_DIR, 'builder', 'dockerd.log'),
  cgroupParent: '/harbormaster-fleet/builder',
  /** The docker CLI's own config (registry login), kept away from ~/.docker. */
  cliConfigDir: join(STATE_DIR, 'builder', 'cli'),
  contextDir: join(STATE_DIR, 'builder', 'context'),
} as const;

export const REGISTRY = {
  storage: join(STATE_DIR, 'registry', 'data'),
  credentials: join(STATE_DIR, 'registry', 'credentials.json'),
  htpasswd: join(STATE_DIR, 'registry', 'htpasswd'),
  /** A password file that does not know the fleet's user: how the registry "refuses". */
  refusingHtpasswd: join(STATE_DIR, 'registry', 'htpasswd-refusing'),
  config: join(RUN_DIR, 'registry', 'config.yml'),
  pidFile: join(RUN_DIR, 'registry', 'registry.pid'),
  log: join(RUN_DIR, 'registry', 'registry.log'),
} as const;

export const SSH = {
  clientKey: join(STATE_DIR, 'ssh', 'id_ed25519'),
  /** One authorized_keys per user (named after it), readable by that user. */
  authorizedKeysDir: join(STATE_DIR, 'ssh-authorized-keys'),
  knownHosts: join(STATE_DIR, 'ssh', 'known_hosts'),
} as const;

/** The accounts the worker logs in as: a deploy user in the docker group, and one with a slow login shell. */
export const DEPLOY_USERS = { deploy: 'hm-deploy', slowLogin: 'hm-deploy-slow' } as const;

/**
 * Where every host's engine socket is, as seen by what runs under its sshd: each sshd has a mount
 * namespace of its own in which this folder is the host's run folder, so one configured path
 * (ssh.engineSocket) reaches each host's own engine, as /var/run/docker.sock does on real hosts.
 */
export const HOST_ENGINE_DIR = join(RUN_DIR, 'engine');
export const HOST_ENGINE_SOCKET = join(HOST_ENGINE_DIR, 'docker.sock');

export const MOTO = {
  pidFile: join(RUN_DIR, 'moto', 'moto.pid'),
  endpointFile: join(RUN_DIR, 'moto', 'endpoint'),
  log: join(RUN_DIR, 'moto', 'moto.log'),
} as const;

/** What the last bring-up made (host count), read by `status` and by a re-entrant bring-up. */
export const FLEET_FILE = join(RUN_DIR, 'fleet.json');
