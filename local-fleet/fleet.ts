import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { BRIDGE_ADDRESS, BUILDER, CGROUP_PARENT, DEPLOY_USERS, FLEET_FILE, HOST_ENGINE_SOCKET, hostLayout, MAX_HOSTS, REGISTRY, REGISTRY_ADDRESS, RUN_DIR, SSH, STATE_DIR, type HostLayout } from './layout.js';
import { livePid } from './processes.js';
import { assertPrerequisites } from './prerequisites.js';
import { ensureBridge, fleetLinks, fleetNamespaces, releaseNamespaceDirectory, removeBridge, setHostLink } from './network.js';
import { bringUpHost, hostFromName, tearDownHost } from './hosts.js';
import { ensureClientKey, rotateHostKey, writeKnownHosts } from './ssh-keys.js';
import { ensureDeployUsers } from './deploy-users.js';
import { startRegistry, stopRegistry, type RegistryCredentials } from './registry.js';
import { ensureTestImages, imageRefs, type ImageRefs } from './test-images.js';
import { stopEngine, startEngine } from './engine.js';
import { startSshd, stopSshd } from './sshd.js';
import { ensureLiveContainer } from './live-container.js';
import { awsEndpoint, createAwsResources, RELEASE, STACK, type AwsEndpoint, type AwsResources, type TargetResources } from './aws-resources.js';
import { ensureMoto, stopMoto } from './moto-process.js';
import type { MotoServer } from './moto.js';
import { startChatServer, type ChatServer } from './chat-server.js';
import { clearCgroups, killNamespaceProgram, unmountFleetMounts } from './leftovers.js';

// The local fleet as one object: bring it up with fleetUp(), take it down with fleetDown(). Both are
// idempotent and both repair what a killed run left behind. See local-fleet/README.md.

export const DEFAULT_HOSTS = 3;
export const STAGING = 'staging';
/** With 3 hosts or more, the last host is this personal deployment (its own target, own AWS resources). */
export const PERSONAL = 'personal-alice';

export interface FleetHost {
  /** h1, h2, ... (the EC2 Name tag). */
  readonly name: string;
  readonly address: string;
  readonly instanceId: string;
  /** The host's engine socket, reachable from the root namespace (the worker uses SSH instead). */
  readonly dockerSocket: string;
  /** Its deployment tag: staging, or personal-alice for the last host of a fleet of 3 or more. */
  readonly deployment: string;
  /** stack/release/deployment, as in the live container's harbormaster.target label. */
  readonly target: string;
}

export type HostRef = string | { readonly name: string };

export interface FleetAws extends AwsEndpoint, AwsResources {
  /** The staging target's resources, flattened for the common case. */
  readonly classicLoadBalancer: string;
  readonly targetGroupArn: string;
  readonly autoScalingGroup: string;
  readonly alarmNames: string[];
  readonly stagingInstanceIds: string[];
}

export interface FleetFaults {
  stopSsh(host: HostRef): Promise<void>;
  startSsh(host: HostRef): Promise<void>;
  /** Stops the host's engine gracefully (its containers stop with it); startDocker brings it back with them. */
  stopDocker(host: HostRef): Promise<void>;
  startDocker(host: HostRef): Promise<void>;
  /** Sets the host's bridge port down: nothing reaches it (SSH, HTTP) and it reaches nothing (registry). */
  cutNetwork(host: HostRef): Promise<void>;
  restoreNetwork(host: HostRef): Promise<void>;
  /** on: the registry is restarted with a password file that refuses the fleet's user (401); off: normal again. */
  registryRefuse(on: boolean): Promise<void>;
  /** Kills the host's sshd, its listener and every open connection (as a crash or a package upgrade would), then starts it again. */
  restartSsh(host: HostRef): Promise<void>;
  /** Freezes the host's engine (SIGSTOP): its socket still accepts, nothing answers; containers keep running. */
  pauseDocker(host: HostRef): Promise<void>;
  resumeDocker(host: HostRef): Promise<void>;
  /** Freezes the registry (SIGSTOP): pulls stall without an error. */
  pauseRegistry(): Promise<void>;
  resumeRegistry(): Promise<void>;
  /**
   * Gives the host a new SSH host key and restarts its sshd. publish: the new key is written into the
   * fleet's known_hosts (what provisioning does); otherwise known_hosts still has the old one.
   */
  rotateHostKey(host: HostRef, options: { publish: boolean }): Promise<void>;
}

export interface Fleet {
  readonly hosts: FleetHost[];
  readonly ssh: {
    /** The deploy user (docker group, plain shell) every worker logs in as. */
    readonly user: string;
    /** A deploy user whose login shell takes longer than a connection's deadline. */
    readonly slowLoginUser: string;
    readonly privateKeyPath: string;
    readonly publicKeyPath: string;
    readonly knownHostsPath: string;
    /** Where each host's engine is, seen over SSH (ssh.engineSocket). */
    readonly engineSocket: string;
  };
  readonly registry: { readonly address: string; readonly username: string; readonly password: string };
  readonly images: ImageRefs;
  /** Replaced by resetAws() (instance IDs and ARNs change); read it again after a reset. */
  readonly aws: FleetAws;
  readonly chat: ChatServer;
  readonly faults: FleetFaults;
  /** How hosts were split into targets, for readers of the fleet (documented choice). */
  readonly targets: { readonly stack: string; readonly release: string; readonly deployments: Record<string, string[]> };
  /** moto reset, then every AWS resource created again. */
  resetAws(): Promise<FleetAws>;
  /** Mends faults (network, engines, SSH, registry), then every host back to one healthy live `ingest` on v1. */
  resetHosts(): Promise<void>;
  /** Wall time of the bring-up that made this object. */
  readonly bringUpMs: number;
  /** What the bring-up reused and what it had to make. */
  readonly bringUp: { readonly hostsStarted: number; readonly hostsReused: number; readonly imagesBuilt: string[] };
  readonly stateDir: string;
  readonly runDir: string;
}

export interface FleetUpOptions {
  /** Number of hosts, 1..20; default 3. */
  hosts?: number;
  /**
   * The deployment tag of each host, in order (one entry per host; one of them must be staging). By
   * default hosts 1..N-1 are staging and host N is personal-alice (with 3 hosts or more).
   */
  deployments?: readonly string[];
  log?: (line: string) => void;
}

function defaultDeployment(index: number, count: number): string {
  return count >= 3 && index === count ? PERSONAL : STAGING;
}

function flattenAws(endpoint: AwsEndpoint, resources: AwsResources): FleetAws {
  const staging = resources.targets[STAGING] as TargetResources;
  return {
    ...endpoint,
    ...resources,
    classicLoadBalancer: staging.classicLoadBalancer,
    targetGroupArn: staging.targetGroupArn,
    autoScalingGroup: staging.autoScalingGroup,
    alarmNames: staging.alarmNames,
    stagingInstanceIds: staging.instanceIds,
  };
}

/** Sends a signal to one of the fleet's daemons, found by its PID file; nothing if it is not running. */
function signalDaemon(pidFile: string, executable: string, signal: NodeJS.Signals): void {
  const pid = livePid(pidFile, executable);
  if (pid !== undefined) process.kill(pid, signal);
}

function resolveHost(layouts: HostLayout[], ref: HostRef): HostLayout {
  const name = typeof ref === 'string' ? ref : ref.name;
  const host = layouts.find((layout) => layout.name === name || layout.address === name);
  if (!host) throw new Error(`no host ${name} in the fleet (${layouts.map((layout) => layout.name).join(', ')})`);
  return host;
}

/** Indexes of every host something is left of: namespaces, links, run directories. */
async function hostsPresent(): Promise<HostLayout[]> {
  const names = [...fleetNamespaces(), ...(await fleetLinks())];
  if (existsSync(RUN_DIR)) names.push(...readdirSync(RUN_DIR));
  const indexes = new Set(names.map((name) => hostFromName(name)?.index).filter((index): index is number => index !== undefined));
  return [...indexes].sort((a, b) => a - b).map(hostLayout);
}

// The fleet object of this process, so that a second fleetUp() here returns the same chat server
// and a fleetDown() here stops it.
let current: { fleet: Fleet; moto: MotoServer; hostCount: number } | undefined;

export async function fleetUp(options: FleetUpOptions = {}): Promise<Fleet> {
  const count = options.hosts ?? DEFAULT_HOSTS;
  if (!Number.isInteger(count) || count < 1 || count > MAX_HOSTS) throw new Error(`hosts must be 1..${MAX_HOSTS}, not ${count}`);
  if (options.deployments && (options.deployments.length !== count || !options.deployments.includes(STAGING))) {
    throw new Error(`deployments must name one deployment per host (${count}), staging among them`);
  }
  const deploymentOf = (index: number, total: number) => options.deployments?.[index - 1] ?? defaultDeployment(index, total);
  assertPrerequisites();
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const step = (what: string) => log(`[fleet +${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`);

  mkdirSync(STATE_DIR, { recursive: true, mode: 0o755 });
  mkdirSync(RUN_DIR, { recursive: true, mode: 0o755 });
  const layouts = Array.from({ length: count }, (_, i) => hostLayout(i + 1));

  // Hosts of a larger earlier fleet (or of a killed run) that this one does not have.
  await Promise.all((await hostsPresent()).filter((host) => host.index > count).map(tearDownHost));
  await stopEngine(BUILDER); // only ever running during an image build
  await ensureBridge();
  await ensureClientKey();
  await ensureDeployUsers();
  step('network ready');

  // Independent parts side by side: moto, the registry and its images, the hosts.
  const motoStarting = ensureMoto();
  const imagesReady = (async () => {
    const credentials = await startRegistry();
    const built = await ensureTestImages(credentials);
    step(built.length ? `images built: ${built.join(', ')}` : 'images already in the registry');
    return { credentials, built };
  })();
  const hostsReady = Promise.all(layouts.map(bringUpHost)).then((outcomes) => {
    step(`hosts ready (${outcomes.filter((o) => o === 'started').length} started, ${outcomes.filter((o) => o === 'reused').length} reused)`);
    return outcomes;
  });
  const [moto, { credentials, built }, outcomes] = await Promise.all([motoStarting, imagesReady, hostsReady]);
  writeKnownHosts(layouts);

  const images = imageRefs();
  const specFor = (host: HostLayout) => ({ image: images.v1, target: `${STACK}/${RELEASE}/${deploymentOf(host.index, count)}` });
  // v1 built again (its recipe changed): a live container from the previous build is made again too.
  const placeLiveContainers = (creds: RegistryCredentials) => Promise.all(layouts.map((host) => ensureLiveContainer(host, specFor(host), creds, { imageRebuilt: built.includes('v1') })));
  const createAws = async () => {
    await moto.reset();
    const endpoint = awsEndpoint(moto.endpoint);
    return flattenAws(endpoint, await createAwsResources(endpoint, layouts.map((host) => ({ name: host.name, address: host.address, deployment: deploymentOf(host.index, count) }))));
  };
  const [aws] = await Promise.all([createAws(), placeLiveContainers(credentials)]);
  step('AWS resources created, v1 live and answering on every host');

  const chat = current?.fleet.chat ?? (await startChatServer());
  let currentAws = aws;
  const faults: FleetFaults = {
    stopSsh: (ref) => stopSshd(resolveHost(layouts, ref)),
    startSsh: (ref) => startSshd(resolveHost(layouts, ref)),
    stopDocker: (ref) => stopEngine(resolveHost(layouts, ref)),
    startDocker: (ref) => {
      const host = resolveHost(layouts, ref);
      return startEngine(host, { namespacePath: host.namespacePath, cgroupParent: host.cgroupParent });
    },
    cutNetwork: (ref) => setHostLink(resolveHost(layouts, ref), false),
    restoreNetwork: (ref) => setHostLink(resolveHost(layouts, ref), true),
    registryRefuse: async (on) => void (await startRegistry({ refusing: on })),
    restartSsh: async (ref) => {
      const host = resolveHost(layouts, ref);
      await killNamespaceProgram(host.namespace, 'sshd');
      await startSshd(host);
    },
    pauseDocker: async (ref) => signalDaemon(resolveHost(layouts, ref).dockerPidFile, 'dockerd', 'SIGSTOP'),
    resumeDocker: async (ref) => signalDaemon(resolveHost(layouts, ref).dockerPidFile, 'dockerd', 'SIGCONT'),
    pauseRegistry: async () => signalDaemon(REGISTRY.pidFile, 'docker-registry', 'SIGSTOP'),
    resumeRegistry: async () => signalDaemon(REGISTRY.pidFile, 'docker-registry', 'SIGCONT'),
    rotateHostKey: async (ref, { publish }) => {
      const host = resolveHost(layouts, ref);
      await rotateHostKey(host);
      await stopSshd(host);
      await startSshd(host);
      if (publish) writeKnownHosts(layouts);
    },
  };

  const deployments: Record<string, string[]> = {};
  for (const host of layouts) (deployments[deploymentOf(host.index, count)] ??= []).push(host.name);

  const fleet: Fleet = {
    get hosts() {
      return layouts.map((host, i) => ({
        name: host.name,
        address: host.address,
        instanceId: currentAws.instanceIds[i]!,
        dockerSocket: host.dockerSocket,
        deployment: deploymentOf(host.index, count),
        target: specFor(host).target,
      }));
    },
    ssh: {
      user: DEPLOY_USERS.deploy,
      slowLoginUser: DEPLOY_USERS.slowLogin,
      privateKeyPath: SSH.clientKey,
      publicKeyPath: `${SSH.clientKey}.pub`,
      knownHostsPath: SSH.knownHosts,
      engineSocket: HOST_ENGINE_SOCKET,
    },
    registry: { address: REGISTRY_ADDRESS, username: credentials.username, password: credentials.password },
    images,
    get aws() {
      return currentAws;
    },
    chat,
    faults,
    targets: { stack: STACK, release: RELEASE, deployments },
    async resetAws() {
      currentAws = await createAws();
      return currentAws;
    },
    async resetHosts() {
      signalDaemon(REGISTRY.pidFile, 'docker-registry', 'SIGCONT');
      await startRegistry();
      // known_hosts as the hosts' keys are now (a test may have rotated one without publishing it).
      writeKnownHosts(layouts);
      await Promise.all(
        layouts.map(async (host) => {
          signalDaemon(host.dockerPidFile, 'dockerd', 'SIGCONT');
          await setHostLink(host, true);
          await startEngine(host, { namespacePath: host.namespacePath, cgroupParent: host.cgroupParent });
          await startSshd(host);
        }),
      );
      await placeLiveContainers(credentials);
    },
    bringUpMs: Date.now() - started,
    bringUp: { hostsStarted: outcomes.filter((o) => o === 'started').length, hostsReused: outcomes.filter((o) => o === 'reused').length, imagesBuilt: built },
    stateDir: STATE_DIR,
    runDir: RUN_DIR,
  };
  writeFileSync(FLEET_FILE, JSON.stringify({ hosts: count, bringUpMs: fleet.bringUpMs, motoEndpoint: moto.endpoint, bridge: BRIDGE_ADDRESS }, null, 2));
  current = { fleet, moto, hostCount: count };
  step(`fleet up in ${fleet.bringUpMs} ms`);
  return fleet;
}

/** The fleet a previous bring-up recorded (for `status`), without changing anything. */
export function recordedFleet(): { hosts: number; bringUpMs: number; motoEndpoint: string } | undefined {
  return existsSync(FLEET_FILE) ? (JSON.parse(readFileSync(FLEET_FILE, 'utf8')) as { hosts: number; bringUpMs: number; motoEndpoint: string }) : undefined;
}

/**
 * Stops every process the fleet started (by the PIDs it recorded, then whatever is left inside its
 * namespaces), unmounts what its engines mounted, deletes its namespaces and links and its run
 * directory. The state directory (keys, engine data, registry storage) stays for the next bring-up.
 */
export async function fleetDown(options: { log?: (line: string) => void } = {}): Promise<void> {
  const log = options.log ?? (() => undefined);
  if (process.platform !== 'linux' || process.getuid?.() !== 0) throw new Error('fleetDown needs root on Linux');
  const here = current;
  current = undefined;
  await here?.fleet.chat.stop();
  await stopMoto(here?.moto);

  const hosts = await hostsPresent();
  await Promise.all(hosts.map(tearDownHost));
  log(`hosts down: ${hosts.map((host) => host.name).join(', ') || 'none'}`);
  await stopRegistry();
  await stopEngine(BUILDER);
  await clearCgroups(CGROUP_PARENT); // the builder's, and the fleet's parent itself
  await unmountFleetMounts();
  await removeBridge();
  await releaseNamespaceDirectory();
  rmSync(RUN_DIR, { recursive: true, force: true });
  log('fleet down');
}
