import type { Client } from 'ssh2';

// Where the host's Docker engine listens. The Docker API is carried over stream-local forwards of the
// one SSH connection, and a forward names a socket path: no shell runs on the host, ever. The path is
// the configured one (ssh.engineSocket, or a release's rollout.engineSocket), or else the first of
// Docker's usual sockets that answers. Either way it is confirmed by the engine answering GET /_ping
// over a forward, before the session is used. Nothing here runs the login shell: its startup files
// (pyenv, profile scripts, network home directories) can take seconds on a busy host, and a shell
// that answered late used to send the worker to a default socket that was not the engine's.
// No answer at any path is EngineSocketNotFound: the host does not answer now, for the caller to try
// again within its window; there is no silent fallback.

/** Docker's own default socket, and where a systemd-socket-activated engine listens on newer distributions. */
export const ENGINE_SOCKET_CANDIDATES: readonly string[] = ['/var/run/docker.sock', '/run/docker.sock'];

export type EngineSocketSource = 'configured' | 'found';

export interface EngineSocket {
  readonly path: string;
  /** configured: named by the configuration and confirmed; found: the first usual socket that answered. */
  readonly source: EngineSocketSource;
}

/** No engine answered at any path tried; `tried` says what each path gave. */
export class EngineSocketNotFound extends Error {
  override name = 'EngineSocketNotFound';
  constructor(readonly tried: ReadonlyArray<{ readonly path: string; readonly reason: string }>) {
    super(`no Docker engine answers at ${tried.map((t) => `${t.path} (${t.reason})`).join(', ')}`);
  }
}

/** GET /_ping on the socket through a forward of `client`; resolves with why it is not the engine, or undefined when it answered OK. */
export function pingOverForward(client: Client, path: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    let channel: (NodeJS.ReadWriteStream & { destroy?: () => void; close?: () => void }) | undefined;
    const settle = (reason: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      channel?.removeAllListeners('data');
      try {
        channel?.close?.();
      } catch {
        // already closed
      }
      resolve(reason);
    };
    const timer = setTimeout(() => settle(`no answer in ${timeoutMs} ms`), timeoutMs);
    try {
      client.openssh_forwardOutStreamLocal(path, (error, opened) => {
        if (error) return settle(error.message || 'the forward was refused');
        channel = opened as typeof channel;
        let answer = '';
        opened.on('data', (chunk: Buffer) => {
          answer += chunk.toString('latin1');
          if (answer.length > 4096) settle('not an HTTP answer');
        });
        opened.once('close', () => {
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1];
          const body = answer.split('\r\n\r\n').slice(1).join('\r\n\r\n');
          if (status === '200' && body.trim() === 'OK') settle(undefined);
          else settle(status ? `answered HTTP ${status}, not a Docker engine's ping` : 'closed without an HTTP answer');
        });
        opened.on('error', (e: Error) => settle(e.message));
        opened.end('GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n');
      });
    } catch (error) {
      // ssh2 throws synchronously when the connection is already closed.
      settle((error as Error).message);
    }
  });
}

/** The configured socket confirmed, or the first usual one that answers; EngineSocketNotFound otherwise. */
export async function findEngineSocket(client: Client, configured: string | undefined, timeoutMs: number, candidates = ENGINE_SOCKET_CANDIDATES): Promise<EngineSocket> {
  const paths = configured ? [configured] : candidates;
  const tried: { path: string; reason: string }[] = [];
  for (const path of paths) {
    const reason = await pingOverForward(client, path, timeoutMs);
    if (reason === undefined) return { path, source: configured ? 'configured' : 'found' };
    tried.push({ path, reason });
  }
  throw new EngineSocketNotFound(tried);
}
