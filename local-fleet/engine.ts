import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { REGISTRY_ADDRESS } from './layout.js';
import { livePid, spawnDaemon, stopByPidFile, waitFor } from './processes.js';

// A Docker engine (Debian's dockerd) with its own socket, data root, exec root and PID file, so that
// several run side by side. A host's engine runs inside the host's network namespace; the image
// builder's runs in the root namespace with networking switched off so it never touches the
// machine's own bridges, iptables or forwarding.

export interface EngineLayout {
  readonly dockerSocket: string;
  readonly dockerDataRoot: string;
  readonly dockerExecRoot: string;
  readonly dockerPidFile: string;
  readonly dockerConfigFile: string;
  readonly dockerLog: string;
}

export interface EngineOptions {
  /** nsenter --net into this namespace file first (a host); absent for the builder. */
  namespacePath?: string;
  /** No bridge, no iptables, no forwarding: for an engine in the root namespace. */
  withoutNetworking?: boolean;
  /**
   * Where the engine puts its containers' cgroups. Containers run in network namespaces of their own,
   * so a container orphaned by a killed engine is found by its cgroup (see leftovers.ts), not by the
   * host's namespace; a parent per engine tells whose it is.
   */
  cgroupParent: string;
}

/** GET /_ping on the engine's socket. */
export function pingEngine(socketPath: string, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

export function engineRunning(engine: EngineLayout): boolean {
  return livePid(engine.dockerPidFile, 'dockerd') !== undefined;
}

export async function startEngine(engine: EngineLayout, options: EngineOptions): Promise<void> {
  if (engineRunning(engine) && (await pingEngine(engine.dockerSocket))) return;
  await stopEngine(engine);
  for (const dir of [dirname(engine.dockerSocket), engine.dockerDataRoot, engine.dockerExecRoot]) mkdirSync(dir, { recursive: true });
  // Our own daemon.json, so a machine's /etc/docker/daemon.json cannot leak in. It also moves the
  // engine's identity key (the ID in `docker info`) out of the shared /etc/docker/key.json: each
  // engine is its own, and keeps its ID across bring-ups since the key lives beside its data root.
  const keyFile = join(dirname(engine.dockerDataRoot), 'engine-key.json');
  writeFileSync(engine.dockerConfigFile, `${JSON.stringify({ 'deprecated-key-path': keyFile })}\n`);
  const dockerd = [
    'dockerd',
    `--host=unix://${engine.dockerSocket}`,
    `--data-root=${engine.dockerDataRoot}`,
    `--exec-root=${engine.dockerExecRoot}`,
    `--pidfile=${engine.dockerPidFile}`,
    `--config-file=${engine.dockerConfigFile}`,
    `--insecure-registry=${REGISTRY_ADDRESS}`,
    `--cgroup-parent=${options.cgroupParent}`,
    '--log-level=warn',
    ...(options.withoutNetworking ? ['--bridge=none', '--iptables=false', '--ip-forward=false', '--ip-masq=false'] : []),
  ];
  const [file, ...args] = options.namespacePath ? ['nsenter', `--net=${options.namespacePath}`, ...dockerd] : dockerd;
  const pid = spawnDaemon(file!, args, engine.dockerLog);
  await waitFor(
    `dockerd on ${engine.dockerSocket} (log: ${engine.dockerLog})`,
    async () => {
      // Fail fast when dockerd died at start instead of waiting out the timeout.
      try {
        process.kill(pid, 0);
      } catch {
        throw new Error(`dockerd exited at start; see ${engine.dockerLog}`);
      }
      return pingEngine(engine.dockerSocket, 1_000);
    },
    60_000,
    100,
  );
}

/** Stops the engine; dockerd stops its containers (then its containerd) on SIGTERM. */
export async function stopEngine(engine: EngineLayout): Promise<void> {
  await stopByPidFile(engine.dockerPidFile, 'dockerd', 20_000);
}
