import { Client, type ConnectConfig } from 'ssh2';
import { HostAuthenticationError, HostKeyError, HostUnreachableError } from './host-errors.js';
import { fingerprintOf, hostKeyAlgorithmsFor, keyTypeOf, type KnownHosts } from './known-hosts.js';

// Opens one ssh2 connection to a host, accepting only a host key that known_hosts lists for that
// address, and turns every way it can fail into a typed error naming the host. The connection is
// then kept by the session for the whole release.

export interface SshConnectionOptions {
  readonly address: string;
  readonly port: number;
  readonly user: string;
  readonly privateKey: Buffer | string;
  readonly knownHosts: KnownHosts;
  /** TCP connect plus SSH handshake plus authentication. */
  readonly connectTimeoutMs: number;
  /** Keepalive probes so that a host that vanished is noticed while the connection sits idle. */
  readonly keepaliveIntervalMs: number;
  readonly keepaliveCountMax: number;
  readonly signal?: AbortSignal;
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EHOSTDOWN', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

function describeUnreachable(error: Error & { code?: unknown; level?: unknown }, port: number): string {
  if (error.code === 'ECONNREFUSED') return `connection to port ${port} refused (sshd not running?)`;
  if (error.code === 'ETIMEDOUT' || /timed out/i.test(error.message)) return `no answer on port ${port} in time (${error.message})`;
  if (typeof error.code === 'string') return `${error.code}: ${error.message}`;
  return error.message;
}

export function openSshConnection(options: SshConnectionOptions): Promise<Client> {
  const { address, port, user, signal } = options;
  signal?.throwIfAborted();
  const client = new Client();
  // Set by the host verifier when it refuses: ssh2 then reports only "verification failed".
  let refusedKey: HostKeyError | undefined;

  const config: ConnectConfig = {
    host: address,
    port,
    username: user,
    privateKey: options.privateKey,
    readyTimeout: options.connectTimeoutMs,
    keepaliveInterval: options.keepaliveIntervalMs,
    keepaliveCountMax: options.keepaliveCountMax,
    algorithms: { serverHostKey: hostKeyAlgorithmsFor(options.knownHosts.keysFor(address, port)) },
    hostVerifier: (key: Buffer): boolean => {
      const verdict = options.knownHosts.verify(address, port, key);
      if (verdict.accepted) return true;
      refusedKey = new HostKeyError(address, verdict.problem, keyTypeOf(key), fingerprintOf(key), verdict.known.map((known) => `${known.keyType} ${fingerprintOf(known.blob)}`));
      return false;
    },
  };

  return new Promise<Client>((resolve, reject) => {
    const settle = (error?: Error) => {
      client.removeListener('ready', onReady);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (error) {
        // Late errors of a connection we gave up on must not crash the process; end() alone leaves a
        // half-open TCP socket when the handshake never finished.
        client.on('error', () => undefined);
        client.destroy();
        reject(error);
      } else {
        resolve(client);
      }
    };
    const onReady = () => {
      // Each Docker call is a few small writes (channel open, request, close) waiting on the answer:
      // with Nagle's algorithm on, every call stalls on delayed ACKs (measured ~25 ms a call instead of ~7).
      client.setNoDelay(true);
      settle();
    };
    const onError = (error: Error & { code?: unknown; level?: unknown }) => {
      if (refusedKey) return settle(refusedKey);
      if (error.level === 'client-authentication') return settle(new HostAuthenticationError(address, user, error));
      if (error.level === 'client-timeout' || error.level === 'client-socket' || (typeof error.code === 'string' && UNREACHABLE_CODES.has(error.code))) {
        return settle(new HostUnreachableError(address, describeUnreachable(error, port), error));
      }
      return settle(new HostUnreachableError(address, `SSH handshake failed: ${error.message}`, error));
    };
    const onClose = () => settle(refusedKey ?? new HostUnreachableError(address, 'connection closed during the SSH handshake'));
    const onAbort = () => settle(signal?.reason instanceof Error ? signal.reason : new Error(`connect to ${address} aborted`));

    client.once('ready', onReady);
    client.on('error', onError);
    client.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      client.connect(config);
    } catch (error) {
      // Synchronous throws are configuration errors (e.g. an unreadable private key): not the host's fault.
      settle(error instanceof Error ? error : new Error(String(error)));
    }
  });
}
