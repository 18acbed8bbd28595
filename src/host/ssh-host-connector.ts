import type { Logger } from 'pino';
import { DockerHostSession, type EngineDeadlines } from './docker-host-session.js';
import { EngineSocketNotFound, findEngineSocket, type EngineSocket } from './engine-socket.js';
import { EngineUnavailableError, HostUnreachableError } from './host-errors.js';
import type { ConnectOptions, HostConnector } from './host-session.js';
import { KnownHosts } from './known-hosts.js';
import { openSshConnection } from './ssh-connection.js';

// Connects to a host's Docker engine over ONE SSH connection, kept for the whole session: every Docker
// API call is an HTTP request on a stream-local forward (a channel of that connection) to the engine's
// unix socket. No new handshake per call, unlike dockerode's `protocol: 'ssh'`.
//
// Engine socket: the one a connect names (a release's rollout.engineSocket), else `engineSocket` (the
// worker's ssh.engineSocket), else the first of Docker's usual sockets that answers; in every case
// confirmed by a ping over a forward before the session is handed out (engine-socket.ts). No shell
// runs on the host. No engine answering is EngineUnavailableError: a host that does not answer now.
//
// Host keys: only a key that `knownHosts` lists for the address (`[address]:port` when the port is not
// 22; plain, hashed and wildcard names) is accepted; an unknown host or a different key is refused with
// HostKeyError naming the address and the presented key's SHA256 fingerprint. No trust on first use.
// known_hosts is read again for every connection: a host that Auto Scaling launched, or whose key
// was changed, is reached as soon as provisioning has written its key there, without a restart.

export interface SshHostConnectorOptions {
  readonly user: string;
  readonly privateKey: Buffer | string;
  /**
   * The OpenSSH known_hosts the host keys are checked against: its contents, or a function that reads
   * them, called for every connection (so a file that provisioning keeps current is read anew).
   */
  readonly knownHosts: string | (() => string);
  /** Deadlines of the engine calls made over the connection. */
  readonly deadlines?: EngineDeadlines;
  /** SSH port; default 22. */
  readonly port?: number;
  /** TCP connect, handshake and authentication together; default 10 s. */
  readonly connectTimeoutMs?: number;
  /** The engine's socket on every host; default: the first of Docker's usual sockets that answers. */
  readonly engineSocket?: string;
  /** Where to look, in order, when no socket is configured; default Docker's usual sockets. */
  readonly engineSocketCandidates?: readonly string[];
  readonly logger?: Logger;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
// An idle connection to a host that vanished (no RST, e.g. cut network) is noticed after about 3 × 10 s.
const KEEPALIVE_INTERVAL_MS = 10_000;
const KEEPALIVE_COUNT_MAX = 3;

export class SshHostConnector implements HostConnector {
  private parsed: { readonly text: string; readonly hosts: KnownHosts } | undefined;
  private readonly port: number;
  private readonly connectTimeoutMs: number;

  constructor(private readonly options: SshHostConnectorOptions) {
    this.knownHostsNow();
    this.port = options.port ?? 22;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  /** known_hosts as it is now; parsed again only when its text changed. */
  private knownHostsNow(): KnownHosts {
    const text = typeof this.options.knownHosts === 'string' ? this.options.knownHosts : this.options.knownHosts();
    if (this.parsed?.text !== text) this.parsed = { text, hosts: KnownHosts.parse(text) };
    return this.parsed.hosts;
  }

  async connect(address: string, signal?: AbortSignal, options: ConnectOptions = {}): Promise<DockerHostSession> {
    const log = this.options.logger?.child({ host: address });
    const started = performance.now();
    const client = await openSshConnection({
      address,
      port: this.port,
      user: this.options.user,
      privateKey: this.options.privateKey,
      knownHosts: this.knownHostsNow(),
      connectTimeoutMs: this.connectTimeoutMs,
      keepaliveIntervalMs: KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      ...(signal ? { signal } : {}),
    });
    // Until the session owns the connection, a late error must not crash the process, and a connection
    // that dies meanwhile must not become a session (its calls would blame the engine).
    let failure: Error | undefined;
    const onError = (error: Error) => void (failure ??= error);
    const onClose = () => void (failure ??= new Error('the server closed the connection'));
    client.on('error', onError);
    client.once('close', onClose);
    let engineSocket: EngineSocket;
    try {
      engineSocket = await findEngineSocket(client, options.engineSocket ?? this.options.engineSocket, this.connectTimeoutMs, this.options.engineSocketCandidates);
      signal?.throwIfAborted();
      if (failure) throw new HostUnreachableError(address, `connection lost right after the handshake: ${failure.message}`, failure);
    } catch (error) {
      client.on('error', () => undefined);
      client.destroy();
      if (failure) throw new HostUnreachableError(address, `connection lost right after the handshake: ${failure.message}`, failure);
      if (error instanceof EngineSocketNotFound) throw new EngineUnavailableError(address, 'ping', `${error.message}; is the engine running? (set ssh.engineSocket if it listens elsewhere)`, error);
      throw error;
    } finally {
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
    }
    const session = new DockerHostSession(address, client, engineSocket, log, this.options.deadlines);
    log?.info({ ms: Math.round(performance.now() - started), engineSocket: engineSocket.path, engineSocketFrom: engineSocket.source }, 'SSH session open');
    return session;
  }
}
