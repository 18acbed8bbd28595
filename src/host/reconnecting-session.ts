import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger.js';
import { EngineTimeoutError, EngineUnavailableError, HostUnreachableError } from './host-errors.js';
import type { ConnectOptions, ContainerInfo, ContainerSpec, ContainerSummary, HostConnector, HostSession, RegistryAuth } from './host-session.js';

// A host session that outlives its SSH connection. A dropped connection (a network blip, sshd or the
// engine restarted) is opened again on the next call, a few times with backoff; a call that timed out
// drops the connection too, since a cut-off host looks the same. Reads (ping, inspect, list) are safe
// to repeat and are tried once more on a fresh connection; an effect that failed is not repeated here:
// the reconciler looks at the host again and decides what is still to do.

export interface ReconnectOptions {
  /** Attempts to open a new connection before a call fails with the last reason. Default 3. */
  readonly attempts?: number;
  /** Backoff before the second attempt, doubled after each. Default 1 s. */
  readonly backoffMs?: number;
  readonly logger?: Logger;
  /** Told when a lost connection is open again after failed attempts, or is given up on (chat). */
  readonly onReconnect?: (event: { address: string; ok: boolean; attempts: number; reason: string }) => void;
  /** What every connection of the session is opened with (the release's engine socket). */
  readonly connectWith?: ConnectOptions;
}

type Broken = { readonly broken?: boolean };

const isLoss = (error: unknown) => error instanceof HostUnreachableError || error instanceof EngineTimeoutError || error instanceof EngineUnavailableError;

export class ReconnectingHostSession implements HostSession {
  private current: (HostSession & Broken) | undefined;
  private opening: Promise<HostSession & Broken> | undefined;
  private closed = false;
  private stopSignal: AbortSignal | undefined;

  /** `first` may be left out: the first call then opens the connection (a host not reachable yet). */
  constructor(
    readonly address: string,
    first: HostSession | undefined,
    private readonly connector: HostConnector,
    private readonly options: ReconnectOptions = {},
  ) {
    this.current = first;
  }

  /** Every session, the one open now and those opened later, is abandoned when `signal` aborts. */
  abortOn(signal: AbortSignal): void {
    this.stopSignal = signal;
    this.current?.abortOn?.(signal);
  }

  private async session(): Promise<HostSession & Broken> {
    this.stopSignal?.throwIfAborted();
    if (this.closed) throw new HostUnreachableError(this.address, 'session closed');
    if (this.current && !this.current.broken) return this.current;
    this.opening ??= this.reopen().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async reopen(): Promise<HostSession & Broken> {
    const stale = this.current;
    this.current = undefined;
    await stale?.close().catch(() => undefined);
    const attempts = this.options.attempts ?? 3;
    let delay = this.options.backoffMs ?? 1_000;
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      try {
        this.current = (await this.connector.connect(this.address, this.stopSignal, this.options.connectWith)) as HostSession & Broken;
        if (this.stopSignal) this.current.abortOn?.(this.stopSignal);
        this.options.logger?.info({ host: this.address, attempt }, 'SSH session opened again');
        if (attempt > 1) this.options.onReconnect?.({ address: this.address, ok: true, attempts: attempt, reason: (lastError as Error).message });
        return this.current;
      } catch (error) {
        lastError = error;
        this.options.logger?.warn({ host: this.address, attempt, attempts, err: error }, 'opening the SSH session again failed');
        this.stopSignal?.throwIfAborted();
        if (attempt < attempts) await sleep(delay, undefined, this.stopSignal ? { signal: this.stopSignal } : {}).catch(() => this.stopSignal?.throwIfAborted());
        delay *= 2;
      }
    }
    this.options.onReconnect?.({ address: this.address, ok: false, attempts, reason: (lastError as Error).message });
    throw lastError;
  }

  /** Runs a call; on a lost connection drops it, and repeats the call once more if it is safe to. */
  private async use<T>(work: (session: HostSession) => Promise<T>, repeatable: boolean): Promise<T> {
    const session = await this.session();
    try {
      return await work(session);
    } catch (error) {
      if (!isLoss(error)) throw error;
      if (this.current === session) {
        this.current = undefined;
        void session.close().catch(() => undefined);
      }
      if (!repeatable) throw error;
      return work(await this.session());
    }
  }

  ping() {
    return this.use((s) => s.ping(), true);
  }
  pull(image: string, auth?: RegistryAuth) {
    return this.use((s) => s.pull(image, auth), true);
  }
  inspect(nameOrId: string): Promise<ContainerInfo | undefined> {
    return this.use((s) => s.inspect(nameOrId), true);
  }
  list(labels: Readonly<Record<string, string>>) {
    return this.use((s) => s.list(labels), true);
  }
  summaries(labels: Readonly<Record<string, string>>): Promise<ContainerSummary[]> {
    return this.use((s) => s.summaries(labels), true);
  }
  rename(nameOrId: string, newName: string) {
    return this.use((s) => s.rename(nameOrId, newName), false);
  }
  stop(nameOrId: string, timeoutSeconds: number) {
    return this.use((s) => s.stop(nameOrId, timeoutSeconds), false);
  }
  start(nameOrId: string) {
    return this.use((s) => s.start(nameOrId), false);
  }
  async setRestartPolicy(nameOrId: string, policy: ContainerSpec['restartPolicy']) {
    return this.use((s) => s.setRestartPolicy(nameOrId, policy), true);
  }
  run(spec: ContainerSpec) {
    return this.use((s) => s.run(spec), false);
  }
  create(spec: ContainerSpec) {
    return this.use((s) => s.create(spec), false);
  }
  imageDigest(image: string) {
    return this.use((s) => s.imageDigest?.(image) ?? Promise.resolve(undefined), true);
  }
  logs(nameOrId: string, tail: number) {
    return this.use((s) => s.logs(nameOrId, tail), true);
  }
  remove(nameOrId: string) {
    return this.use((s) => s.remove(nameOrId), false);
  }
  async close() {
    this.closed = true;
    await this.current?.close();
  }
}

/** Connects as `connector` does; the sessions it gives open their connection again when it is lost. */
export class ReconnectingConnector implements HostConnector {
  constructor(
    private readonly connector: HostConnector,
    private readonly options: ReconnectOptions = {},
  ) {}

  async connect(address: string, signal?: AbortSignal, options?: ConnectOptions): Promise<HostSession> {
    const first = await this.connector.connect(address, signal, options);
    return new ReconnectingHostSession(address, first, this.connector, { ...this.options, ...(options ? { connectWith: options } : {}) });
  }
}
