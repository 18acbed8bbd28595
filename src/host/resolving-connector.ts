import type { ReleaseEnvironments } from '../environment/container-environment.js';
import { RenewableRegistryAuth } from '../registry/renewable-auth.js';
import { PullError } from './host-errors.js';
import type { ConnectOptions, ContainerSpec, HostConnector, HostSession, RegistryAuth } from './host-session.js';

// A connector whose sessions fetch, at the moment of use, what the worker reads from AWS for a
// release: a pull with renewable registry credentials (ECR) gets the current token, and once more a
// new one if the registry refused it; a container start gets the values of its sourced environment
// (SSM, Secrets Manager, the worker's environment or files), read once per release, and so does a
// container created ahead of its start. Everything
// else goes straight to the session underneath.

type Broken = { readonly broken?: boolean };

class ResolvingSession implements HostSession {
  constructor(
    private readonly inner: HostSession & Broken,
    private readonly environments: ReleaseEnvironments,
    /** Ends the reads of a start too (the lease, as for the engine calls). */
    private signal: AbortSignal | undefined,
  ) {}

  get address(): string {
    return this.inner.address;
  }

  /** The session underneath is gone: a reconnecting session looks at this. */
  get broken(): boolean | undefined {
    return this.inner.broken;
  }

  async pull(image: string, auth?: RegistryAuth): Promise<void> {
    if (!(auth instanceof RenewableRegistryAuth)) return this.inner.pull(image, auth);
    const first = await this.unlessAborted(auth.current());
    // Not the token's registry: pulled without credentials.
    if (!first) return this.inner.pull(image, undefined);
    try {
      return await this.inner.pull(image, first);
    } catch (error) {
      if (!(error instanceof PullError) || error.reason !== 'unauthorised') throw error;
      // A token revoked or expired early: one new token, one more try; a second refusal is the answer.
      auth.refused(first);
      return this.inner.pull(image, await this.unlessAborted(auth.current()));
    }
  }

  /** A token is shared by every release's pulls: one that is given up stops waiting for it, without ending the call. */
  private unlessAborted<T>(work: Promise<T>): Promise<T> {
    const signal = this.signal;
    if (!signal) return work;
    signal.throwIfAborted();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => signal.addEventListener('abort', (onAbort = () => reject(signal.reason)), { once: true }));
    return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', onAbort!));
  }

  async run(spec: ContainerSpec): Promise<string> {
    return this.inner.run(await this.environments.complete(spec, this.signal));
  }

  async create(spec: ContainerSpec): Promise<string> {
    return this.inner.create(await this.environments.complete(spec, this.signal));
  }

  abortOn(signal: AbortSignal): void {
    this.signal = signal;
    this.inner.abortOn?.(signal);
  }

  ping = () => this.inner.ping();
  inspect = (nameOrId: string) => this.inner.inspect(nameOrId);
  list = (labels: Readonly<Record<string, string>>) => this.inner.list(labels);
  summaries = (labels: Readonly<Record<string, string>>) => this.inner.summaries(labels);
  rename = (nameOrId: string, newName: string) => this.inner.rename(nameOrId, newName);
  stop = (nameOrId: string, timeoutSeconds: number) => this.inner.stop(nameOrId, timeoutSeconds);
  start = (nameOrId: string) => this.inner.start(nameOrId);
  setRestartPolicy = (nameOrId: string, policy: ContainerSpec['restartPolicy']) => this.inner.setRestartPolicy(nameOrId, policy);
  remove = (nameOrId: string) => this.inner.remove(nameOrId);
  logs = (nameOrId: string, tail: number) => this.inner.logs(nameOrId, tail);
  imageDigest = (image: string) => this.inner.imageDigest?.(image) ?? Promise.resolve(undefined);
  close = () => this.inner.close();
}

export class ResolvingConnector implements HostConnector {
  constructor(
    private readonly inner: HostConnector,
    private readonly environments: ReleaseEnvironments,
  ) {}

  async connect(address: string, signal?: AbortSignal, options?: ConnectOptions): Promise<HostSession> {
    return new ResolvingSession(await this.inner.connect(address, signal, options), this.environments, signal);
  }
}
