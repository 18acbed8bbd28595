import type { Client } from 'ssh2';

// Where the host's Docker engine listens. A stream-local forward names a socket path and does not read
// the login environment, so when the connector is not told the path it asks the host once per
// connection, over the same SSH connection: `echo "$DOCKER_HOST"` in an exec channel sees what the
// login environment sets (sshd `SetEnv`, ~/.ssh/environment, ...). A unix:// value gives the path;
// anything else (empty, or an exec that fails) falls back to Docker's default socket.

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export type EngineSocketSource = 'option' | 'DOCKER_HOST' | 'default';

export interface EngineSocket {
  readonly path: string;
  readonly source: EngineSocketSource;
  /** Why the default was used, when it was. */
  readonly note?: string;
}

/** The unix socket path in a DOCKER_HOST value, or undefined for an empty or non-unix value. */
export function socketPathFromDockerHost(value: string): string | undefined {
  const trimmed = value.trim();
  if (!trimmed.startsWith('unix://')) return undefined;
  const path = trimmed.slice('unix://'.length);
  return path.startsWith('/') ? path : undefined;
}

function runCommand(client: Client, command: string, timeoutMs: number): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`"${command}" gave no answer in ${timeoutMs} ms`)), timeoutMs);
    client.exec(command, (error, channel) => {
      if (error) {
        clearTimeout(timer);
        return reject(error);
      }
      let stdout = '';
      channel.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      channel.stderr.resume();
      channel.once('close', (code: number | null) => {
        clearTimeout(timer);
        resolve({ code, stdout });
      });
    });
  });
}

export async function discoverEngineSocket(client: Client, timeoutMs: number): Promise<EngineSocket> {
  let answer: { code: number | null; stdout: string };
  try {
    answer = await runCommand(client, 'echo "$DOCKER_HOST"', timeoutMs);
  } catch (error) {
    return { path: DEFAULT_DOCKER_SOCKET, source: 'default', note: `could not read DOCKER_HOST: ${(error as Error).message}` };
  }
  const value = answer.stdout.trim();
  const path = socketPathFromDockerHost(value);
  if (path) return { path, source: 'DOCKER_HOST' };
  return {
    path: DEFAULT_DOCKER_SOCKET,
    source: 'default',
    note: value === '' ? 'DOCKER_HOST is not set on the host' : `DOCKER_HOST=${value} is not a unix socket; pass dockerSocket to use another socket`,
  };
}
