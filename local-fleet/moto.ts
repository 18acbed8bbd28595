import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';

// moto_server on a free loopback port, started through the project's launcher (which fills in what
// moto lacks or does unlike AWS: CloudWatch alarm actions and mute rules, ELBv2 deregistration of an
// unregistered target). Every AWS API the worker uses is served by this process.

/** How long moto_server may take to answer after it is spawned. */
const STARTUP_SECONDS = 120;

export const MOTO_REGION = 'us-west-2';
export const MOTO_CREDENTIALS = { accessKeyId: 'harbormaster-local', secretAccessKey: 'harbormaster-local' };
const LAUNCHER = fileURLToPath(new URL('./moto-server.py', import.meta.url));

export interface MotoServer {
  readonly endpoint: string;
  readonly port: number;
  readonly pid: number;
  /** Wipes all state (queues, instances, load balancers...). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMoto(
  options: {
    logFile?: string;
    python?: string;
    /** Told the PID as soon as the process exists (before it answers), so a caller killed meanwhile leaves a trace to clean up. */
    onSpawn?: (pid: number) => void;
    /** Outlive this process (the fleet's moto, found again through its PID file); by default it ends with it. */
    keepAfterParent?: boolean;
  } = {},
): Promise<MotoServer> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const output = options.logFile ? openSync(options.logFile, 'a') : 'ignore';
  const child: ChildProcess = spawn(options.python ?? process.env.HARBORMASTER_PYTHON ?? 'python3', [LAUNCHER, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', output, output],
    detached: false,
    env: { ...process.env, HARBORMASTER_MOTO_EXIT_WITH_PARENT: options.keepAfterParent ? '0' : '1' },
  });
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `moto_server exited (${code ?? signal})`));
  child.once('error', (error) => (exited = `cannot start moto_server: ${error.message}`));

  // Importing moto takes seconds of CPU: on a busy 2-core machine (other suites starting their own) it can take far longer.
  const deadline = Date.now() + STARTUP_SECONDS * 1000;
  for (;;) {
    if (exited) throw new Error(`${exited}; is moto installed? (pip install "moto[server]")`);
    try {
      // Our own PID must answer, not another moto already on a reused port.
      const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
      if (response.ok && child.exitCode === null) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`moto_server did not answer on ${endpoint} within ${STARTUP_SECONDS} s`);
    }
    await sleep(100);
  }

  // A moto that outlives this process must not hold this process's event loop open either.
  if (options.keepAfterParent) child.unref();

  return {
    endpoint,
    port,
    pid: child.pid!,
    async reset() {
      const response = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!response.ok) throw new Error(`moto reset failed: ${response.status}`);
    },
    stop() {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      });
    },
  };
}
