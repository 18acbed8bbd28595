import Docker from 'dockerode';
import type { Client } from 'ssh2';
import type { Logger } from 'pino';
import { createOptionsFor, containerInfoFrom, labelFilter, STATES } from './container-mapping.js';
import type { EngineSocket } from './engine-socket.js';
import { ContainerNotFoundError, EngineError, EngineTimeoutError, EngineUnavailableError, HostUnreachableError, PullError } from './host-errors.js';
import type { ContainerInfo, ContainerSpec, ContainerSummary, HostSession, RegistryAuth } from './host-session.js';
import { classifyPullFailure, progressEventError } from './pull-failure.js';
import { ForwardOpenError, StreamLocalAgent } from './stream-local-agent.js';

// A host session: the Docker Engine API of one host, carried over the one SSH connection the
// connector opened. Each call is an HTTP request on a fresh stream-local channel of that connection
// (see StreamLocalAgent). Engine answers become ContainerInfo or typed errors naming the host.

/** What docker-modem puts on an error when the engine answered with an error status. */
interface EngineHttpError extends Error {
  statusCode?: number;
  json?: { message?: string } | null;
}

/** How long close() waits for the server to acknowledge the disconnect before dropping the socket. */
const CLOSE_GRACE_MS = 2_000;

/** Deadlines of the engine calls: every call has one, so a wedged engine never holds a release. */
export interface EngineDeadlines {
  /** Any call; a stop gets the container's own stop timeout on top. Default 30 s. */
  readonly callMs: number;
  /** A whole pull. Default 10 min. */
  readonly pullMs: number;
  /** A pull with no progress from the registry for this long is abandoned. Default 2 min. */
  readonly pullStallMs: number;
}

export const DEFAULT_ENGINE_DEADLINES: EngineDeadlines = { callMs: 30_000, pullMs: 600_000, pullStallMs: 120_000 };

function engineMessage(error: unknown): string {
  const { json, message } = error as EngineHttpError;
  if (typeof json?.message === 'string') return json.message;
  // Streamed endpoints (pull) have no json: the engine's words are after docker-modem's prefix.
  return String(message ?? error).replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

function statusOf(error: unknown): number | undefined {
  const status = (error as EngineHttpError | undefined)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

export class DockerHostSession implements HostSession {
  private readonly agent: StreamLocalAgent;
  private readonly docker: Docker;
  private closing: Promise<void> | undefined;
  /** The SSH connection has ended (asked or not). */
  private ended = false;
  /** Why it ended or failed, when close() was not asked. */
  private lost: Error | undefined;
  /** When aborted, every call is abandoned and none is made (abortOn). */
  private stopSignal: AbortSignal | undefined;

  constructor(
    readonly address: string,
    private readonly client: Client,
    /** Where the engine listens on the host, and how that was learnt. */
    readonly engineSocket: EngineSocket,
    private readonly log: Logger | undefined,
    private readonly deadlines: EngineDeadlines = DEFAULT_ENGINE_DEADLINES,
  ) {
    this.agent = new StreamLocalAgent(client, engineSocket.path);
    // docker-modem honours `agent` (its typings in dockerode omit it). `host` only names the engine in
    // the Host header: the agent makes every connection. `timeout` is pinned unset so that no
    // DOCKER_CLIENT_TIMEOUT in the environment makes docker-modem call setTimeout on a channel.
    const options: Docker.DockerOptions & { agent: StreamLocalAgent } = { protocol: 'http', host: address, port: 2375, agent: this.agent, timeout: undefined };
    this.docker = new Docker(options);
    client.on('error', (error: Error) => {
      if (!this.closing) this.lost ??= error;
      this.log?.warn({ err: error }, 'SSH connection error');
    });
    client.once('close', () => {
      this.ended = true;
      this.agent.destroy();
      if (this.closing) return;
      this.lost ??= new Error('the server closed the connection');
      this.log?.warn({ reason: this.lost.message }, 'SSH connection lost');
    });
  }

  /** Turns any failure of a Docker call into the typed error that says whose fault it was. */
  private failure(operation: string, error: unknown): Error {
    if (this.closing) return new HostUnreachableError(this.address, `session closed (docker ${operation} not done)`, error);
    if (this.lost) return new HostUnreachableError(this.address, `SSH connection lost during docker ${operation}: ${this.lost.message}`, error);
    if (error instanceof ForwardOpenError) {
      const reason = (error.cause as Error | undefined)?.message ?? error.message;
      return new EngineUnavailableError(this.address, operation, `engine socket ${error.socketPath} not reachable over SSH (${reason}); is the engine running?`, error);
    }
    return new EngineError(this.address, operation, engineMessage(error), statusOf(error), error);
  }

  /** The connection is gone (lost or closed): a new session is needed. */
  get broken(): boolean {
    return this.ended || this.lost !== undefined || this.closing !== undefined;
  }

  abortOn(signal: AbortSignal): void {
    this.stopSignal = signal;
  }

  /**
   * One Docker call, under a deadline: past it the request is aborted (its channel closed) and the
   * call fails with EngineTimeoutError. When the session's stop signal aborts (abortOn), the request
   * is aborted the same way and the call rejects with the signal's reason.
   */
  private async call<T>(operation: string, work: (signal: AbortSignal) => Promise<T>, timeoutMs = this.deadlines.callMs): Promise<T> {
    const stop = this.stopSignal;
    stop?.throwIfAborted();
    if (this.closing) throw new HostUnreachableError(this.address, `session closed (docker ${operation} not done)`);
    if (this.lost) throw new HostUnreachableError(this.address, `SSH connection lost: ${this.lost.message}`);
    const started = performance.now();
    const deadline = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let onStop: (() => void) | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        deadline.abort();
        reject(new EngineTimeoutError(this.address, operation, timeoutMs));
      }, timeoutMs);
      onStop = () => {
        deadline.abort();
        reject(stop!.reason);
      };
      stop?.addEventListener('abort', onStop, { once: true });
    });
    try {
      // The race is the deadline's guarantee: a request that ignores the abort still stops being waited for.
      return await Promise.race([work(deadline.signal), expired]);
    } catch (error) {
      if (stop?.aborted) throw stop.reason;
      if (error instanceof EngineTimeoutError) throw error;
      if (deadline.signal.aborted) throw new EngineTimeoutError(this.address, operation, timeoutMs);
      throw this.failure(operation, error);
    } finally {
      clearTimeout(timer);
      if (onStop) stop?.removeEventListener('abort', onStop);
      this.log?.debug({ operation, ms: Math.round(performance.now() - started) }, 'docker call');
    }
  }

  /**
   * A call on a named container. `done` lists engine statuses that mean the wanted state already holds
   * (resolves undefined); any other 404 becomes ContainerNotFoundError.
   */
  private async onContainer<T>(operation: string, nameOrId: string, work: (signal: AbortSignal) => Promise<T>, done: readonly number[] = [], timeoutMs?: number): Promise<T | undefined> {
    try {
      return await this.call(operation, work, timeoutMs);
    } catch (error) {
      if (!(error instanceof EngineError) || error.statusCode === undefined) throw error;
      if (done.includes(error.statusCode)) return undefined;
      if (error.statusCode === 404) throw new ContainerNotFoundError(this.address, operation, nameOrId, error.cause);
      throw error;
    }
  }

  async ping(): Promise<{ engineId: string }> {
    const info = (await this.call('info', (abortSignal) => (this.docker as unknown as { info(opts: { abortSignal: AbortSignal }): Promise<unknown> }).info({ abortSignal }))) as { ID?: string };
    if (!info.ID) throw new EngineError(this.address, 'info', 'the engine did not report its ID');
    return { engineId: info.ID };
  }

  async pull(image: string, auth?: RegistryAuth): Promise<void> {
    const authconfig = auth ? { username: auth.username, password: auth.password, serveraddress: auth.serveraddress } : undefined;
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.call('pull', (abortSignal) => this.docker.pull(image, { ...(authconfig ? { authconfig } : {}), abortSignal }));
    } catch (error) {
      // The engine asks the registry before it starts streaming: an error status carries the registry's answer.
      if (error instanceof EngineError && error.statusCode !== undefined) {
        const message = engineMessage(error.cause);
        throw new PullError(this.address, image, classifyPullFailure(message), message, error);
      }
      throw error;
    }
    const failure = await this.followPull(image, stream);
    if (failure) throw failure;
  }

  /**
   * Reads the progress stream to its end; resolves with the failure it reported, if any. A pull that
   * goes past its deadline, or that gets no progress for pullStallMs (a stalled registry), or whose
   * session's stop signal aborts, is abandoned: its stream is destroyed and it fails.
   */
  private followPull(image: string, stream: NodeJS.ReadableStream): Promise<Error | undefined> {
    return new Promise((resolve) => {
      let reported: string | undefined;
      let settled = false;
      let lastProgress = Date.now();
      const started = Date.now();
      const stop = this.stopSignal;
      const onStop = () => {
        (stream as NodeJS.ReadableStream & { destroy?: (error?: Error) => void }).destroy?.();
        finish(stop!.reason as Error);
      };
      const finish = (result: Error | undefined) => {
        if (settled) return;
        settled = true;
        clearInterval(watchdog);
        stop?.removeEventListener('abort', onStop);
        resolve(result);
      };
      stop?.addEventListener('abort', onStop, { once: true });
      const watchdog = setInterval(() => {
        const now = Date.now();
        const stalled = now - lastProgress >= this.deadlines.pullStallMs;
        const late = now - started >= this.deadlines.pullMs;
        if (!stalled && !late) return;
        const why = late ? `the pull took longer than ${Math.round(this.deadlines.pullMs / 1000)} s` : `no progress from the registry for ${Math.round(this.deadlines.pullStallMs / 1000)} s`;
        (stream as NodeJS.ReadableStream & { destroy?: (error?: Error) => void }).destroy?.();
        finish(new PullError(this.address, image, 'interrupted', why));
      }, Math.min(1_000, this.deadlines.pullStallMs));
      const onProgress = (event: unknown) => {
        lastProgress = Date.now();
        reported ??= progressEventError(event);
      };
      const onFinished = (error: Error | null) => {
        if (reported !== undefined) return finish(new PullError(this.address, image, classifyPullFailure(reported), reported));
        if (error) return finish(this.failure('pull', error));
        // followProgress treats a stream cut short (connection lost) as finished: an incomplete body is no pull.
        if ((stream as { complete?: boolean }).complete === false) {
          return finish(this.lost ? this.failure('pull', this.lost) : new PullError(this.address, image, 'interrupted', 'the engine stopped sending progress before the end'));
        }
        finish(undefined);
      };
      try {
        this.docker.modem.followProgress(stream, onFinished, onProgress);
      } catch (error) {
        finish(this.failure('pull', error));
      }
    });
  }

  async inspect(nameOrId: string): Promise<ContainerInfo | undefined> {
    // 404 is the answer "no such container", not a failure.
    const info = await this.onContainer('inspect', nameOrId, (abortSignal) => this.docker.getContainer(nameOrId).inspect({ abortSignal }), [404]);
    return info && containerInfoFrom(info);
  }

  async list(labels: Readonly<Record<string, string>>): Promise<ContainerInfo[]> {
    const summaries = await this.call('list', (abortSignal) => this.docker.listContainers({ all: true, filters: labelFilter(labels), abortSignal }));
    // Inspect each for health and exit code, which the list summary only has as prose. One that was
    // removed in between is simply not there any more.
    const infos = await Promise.all(summaries.map((summary) => this.inspect(summary.Id)));
    return infos.filter((info): info is ContainerInfo => info !== undefined);
  }

  async summaries(labels: Readonly<Record<string, string>>): Promise<ContainerSummary[]> {
    const summaries = await this.call('list', (abortSignal) => this.docker.listContainers({ all: true, filters: labelFilter(labels), abortSignal }));
    return summaries.map((summary) => ({
      id: summary.Id,
      name: (summary.Names[0] ?? '').replace(/^\//, ''),
      state: (STATES.has(summary.State) ? summary.State : 'dead') as ContainerSummary['state'],
      labels: { ...(summary.Labels ?? {}) },
    }));
  }

  async rename(nameOrId: string, newName: string): Promise<void> {
    await this.onContainer('rename', nameOrId, (abortSignal) => this.docker.getContainer(nameOrId).rename({ name: newName, abortSignal }));
  }

  async stop(nameOrId: string, timeoutSeconds: number): Promise<void> {
    // 304: already stopped, which is what was asked.
    // The container's own stop timeout is part of the call: the engine waits it out before SIGKILL.
    await this.onContainer('stop', nameOrId, (abortSignal) => this.docker.getContainer(nameOrId).stop({ t: timeoutSeconds, abortSignal }), [304], this.deadlines.callMs + timeoutSeconds * 1000);
  }

  async setRestartPolicy(nameOrId: string, policy: ContainerSpec['restartPolicy']): Promise<void> {
    await this.onContainer('update', nameOrId, (abortSignal) => this.docker.getContainer(nameOrId).update({ RestartPolicy: { Name: policy }, abortSignal }));
  }

  async start(nameOrId: string): Promise<void> {
    // 304: already running.
    await this.onContainer('start', nameOrId, (abortSignal) => this.docker.getContainer(nameOrId).start({ abortSignal }), [304]);
  }

  async run(spec: ContainerSpec): Promise<string> {
    const options = createOptionsFor(spec);
    const container = await this.call('create', (abortSignal) => this.docker.createContainer({ ...options, abortSignal } as typeof options));
    try {
      await this.call('start', (abortSignal) => container.start({ abortSignal }));
    } catch (error) {
      // A created-but-never-started container would hold the name and block the next attempt.
      await this.call('remove', (abortSignal) => container.remove({ force: true, v: true, abortSignal })).catch((cleanup: unknown) =>
        this.log?.warn({ err: cleanup, container: spec.name }, 'could not remove the container that failed to start'),
      );
      throw error;
    }
    return container.id;
  }

  async imageDigest(image: string): Promise<string | undefined> {
    const info = await this.call('image inspect', (abortSignal) => this.docker.getImage(image).inspect({ abortSignal } as Parameters<Docker.Image['inspect']>[0] & object));
    // The digest the engine recorded for the image's own repository (an image can carry several).
    const repository = image.replace(/@.*$/, '').replace(/:[^/:]+$/, '');
    return (info.RepoDigests ?? []).find((digest) => digest.startsWith(`${repository}@`));
  }

  async logs(nameOrId: string, tail: number): Promise<string> {
    const raw = await this.onContainer('logs', nameOrId, (abortSignal) => this.docker.getContainer(nameOrId).logs({ stdout: true, stderr: true, follow: false, tail, abortSignal }) as unknown as Promise<Buffer>, [404]);
    return raw ? demultiplex(raw) : '';
  }

  async create(spec: ContainerSpec): Promise<string> {
    const options = createOptionsFor(spec);
    const container = await this.call('create', (abortSignal) => this.docker.createContainer({ ...options, abortSignal } as typeof options));
    return container.id;
  }

  async remove(nameOrId: string): Promise<void> {
    // 404: already gone, which is what was asked (a repair after a crash may remove twice).
    await this.onContainer('remove', nameOrId, (abortSignal) => this.docker.getContainer(nameOrId).remove({ force: true, v: true, abortSignal }), [404]);
  }

  /** Ends the SSH connection (and with it any call in flight); resolves once its socket is closed. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.agent.destroy();
      if (this.ended) return resolve();
      // A server that never answers the disconnect must not keep the socket (and the process) alive.
      const grace = setTimeout(() => this.client.destroy(), CLOSE_GRACE_MS);
      this.client.once('close', () => {
        clearTimeout(grace);
        resolve();
      });
      this.client.end();
    });
    return this.closing;
  }
}

/** A container's log without a TTY comes in frames (1 byte stream, 3 zero, 4 bytes length, then the text); with a TTY, as it is. */
export function demultiplex(raw: Buffer): string {
  const parts: Buffer[] = [];
  let at = 0;
  while (at + 8 <= raw.length && raw[at]! <= 2 && raw[at + 1] === 0 && raw[at + 2] === 0 && raw[at + 3] === 0) {
    const size = raw.readUInt32BE(at + 4);
    parts.push(raw.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  if (at === 0) return raw.toString('utf8');
  return Buffer.concat(parts).toString('utf8');
}
