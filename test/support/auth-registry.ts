import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../local-fleet/free-port.js';

// A real Docker registry (Debian's docker-registry, as in the local fleet) on a loopback port, with
// htpasswd authentication that accepts exactly the given users: what the engine's pull meets.

export interface AuthRegistry {
  /** host:port, as in an image reference. */
  readonly address: string;
  /** GET /v2/ with these Basic credentials (none: no Authorization header): the registry's status. */
  status(credentials?: { username: string; password: string }): Promise<number>;
  stop(): Promise<void>;
}

export async function startAuthRegistry(users: ReadonlyArray<{ username: string; password: string }>): Promise<AuthRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'hm-registry-'));
  const htpasswd = join(dir, 'htpasswd');
  users.forEach((user, i) => execFileSync('htpasswd', ['-B', '-b', ...(i === 0 ? ['-c'] : []), htpasswd, user.username, user.password], { stdio: 'ignore' }));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    ['version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true', 'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`, 'http:', `  addr: ${address}`, 'auth:', '  htpasswd:', '    realm: test', `    path: ${htpasswd}`, ''].join('\n'),
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  const status = async (credentials?: { username: string; password: string }) => {
    const headers: Record<string, string> = credentials ? { authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` } : {};
    const response = await fetch(`http://${address}/v2/`, { headers, signal: AbortSignal.timeout(2_000) });
    await response.body?.cancel();
    return response.status;
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode})`);
    if (await status().catch(() => undefined)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not answer on ${address}`);
    }
    await sleep(100);
  }
  return {
    address,
    status,
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGTERM');
      }),
  };
}
