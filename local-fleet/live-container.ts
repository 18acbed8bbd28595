import Docker from 'dockerode';
import type { HostLayout } from './layout.js';
import { REGISTRY_ADDRESS } from './layout.js';
import type { RegistryCredentials } from './registry.js';
import { waitFor } from './processes.js';

// The state every release starts from: on each host exactly one live container, named `ingest`, from
// the v1 image, published on 8080, answering on /health, labelled the way the worker labels what it manages.
// The fleet talks to each host's engine through the engine's socket file directly (the root namespace
// can open it); the worker reaches the same engines over SSH.

export const LIVE_CONTAINER = 'ingest';
export const APP_PORT = 8080;

export interface LiveContainerSpec {
  readonly image: string;
  /** stack/release/deployment, as in the label harbormaster.target. */
  readonly target: string;
}

export function hostEngine(host: Pick<HostLayout, 'dockerSocket'>): Docker {
  return new Docker({ socketPath: host.dockerSocket });
}

/**
 * Pulls through the fleet registry with its credentials (the engines hold no login of their own); a
 * pull that fails is tried twice more: on a loaded 2-core machine the registry may miss an engine's
 * deadline once, and one such miss must not cancel a whole test file's bring-up.
 */
export async function pullImage(docker: Docker, image: string, credentials: RegistryCredentials): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await pullOnce(docker, image, credentials);
    } catch (error) {
      if (attempt >= 3) throw error;
      await new Promise((resolve) => setTimeout(resolve, 2_000 * attempt));
    }
  }
}

async function pullOnce(docker: Docker, image: string, credentials: RegistryCredentials): Promise<void> {
  const stream = await docker.pull(image, { authconfig: { ...credentials, serveraddress: REGISTRY_ADDRESS } });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (error: Error | null, events: Array<{ error?: string }>) => {
      const failed = error ?? events.find((event) => event.error);
      if (failed) reject(new Error(`pull ${image}: ${failed instanceof Error ? failed.message : failed.error}`));
      else resolve();
    });
  });
}

async function isExpectedLiveContainer(docker: Docker, spec: LiveContainerSpec): Promise<boolean> {
  const containers = await docker.listContainers({ all: true });
  if (containers.length !== 1) return false;
  const [only] = containers;
  return (
    only!.Names.includes(`/${LIVE_CONTAINER}`) &&
    only!.Image === spec.image &&
    only!.State === 'running' &&
    only!.Labels['harbormaster.target'] === spec.target
  );
}

/** Running and answering on /health: what the worker's probe asks too (Docker's own verdict comes 30 s after the start). */
async function waitHealthy(docker: Docker, host: HostLayout): Promise<void> {
  await waitFor(`container ${LIVE_CONTAINER} on ${host.name} to answer on /health`, async () => {
    const state = (await docker.getContainer(LIVE_CONTAINER).inspect()).State;
    if (!state.Running) throw new Error(`container ${LIVE_CONTAINER} on ${host.name} is not running (${state.Status}, exit ${state.ExitCode})`);
    try {
      const response = await fetch(`http://${host.address}:${APP_PORT}/health`, { signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      return response.ok;
    } catch {
      return false;
    }
  }, 30_000);
}

/**
 * Puts the host back to exactly one live container from spec.image, answering on /health; keeps the one already
 * there when it is exactly that (the usual case at a second bring-up: unless-stopped restarted it).
 */
export async function ensureLiveContainer(host: HostLayout, spec: LiveContainerSpec, credentials: RegistryCredentials, options: { imageRebuilt?: boolean } = {}): Promise<void> {
  const docker = hostEngine(host);
  if (options.imageRebuilt || !(await isExpectedLiveContainer(docker, spec))) {
    for (const container of await docker.listContainers({ all: true })) {
      await docker.getContainer(container.Id).remove({ force: true });
    }
    await pullImage(docker, spec.image, credentials);
    const container = await docker.createContainer({
      name: LIVE_CONTAINER,
      Image: spec.image,
      Labels: { 'harbormaster.managed': 'true', 'harbormaster.target': spec.target, 'harbormaster.image': spec.image },
      ExposedPorts: { [`${APP_PORT}/tcp`]: {} },
      HostConfig: {
        PortBindings: { [`${APP_PORT}/tcp`]: [{ HostPort: String(APP_PORT) }] },
        RestartPolicy: { Name: 'unless-stopped' },
      },
    });
    await container.start();
  }
  await waitHealthy(docker, host);
}
