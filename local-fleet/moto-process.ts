import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { MOTO } from './layout.js';
import { startMoto, type MotoServer } from './moto.js';
import { isAlive, stopProcess } from './processes.js';

// The fleet's moto_server, started through moto.ts, with its PID and endpoint recorded in the run
// directory: a later bring-up (another process, e.g. the CLI after `up`) finds it and reuses it, and
// tear-down stops exactly that process.

async function answers(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

function isMoto(pid: number): boolean {
  try {
    return isAlive(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('moto-server.py');
  } catch {
    return false;
  }
}

function recorded(): { pid: number; endpoint: string } | undefined {
  const pid = recordedPid();
  if (pid === undefined || !existsSync(MOTO.endpointFile)) return undefined;
  return { pid, endpoint: readFileSync(MOTO.endpointFile, 'utf8').trim() };
}

/** A handle on a moto_server this process did not start (found through the PID file). */
function attached(pid: number, endpoint: string): MotoServer {
  return {
    endpoint,
    port: Number(new URL(endpoint).port),
    pid,
    async reset() {
      const response = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!response.ok) throw new Error(`moto reset failed: ${response.status}`);
    },
    stop: () => stopProcess(pid, 5_000),
  };
}

export async function ensureMoto(): Promise<MotoServer> {
  const running = recorded();
  if (running && (await answers(running.endpoint))) return attached(running.pid, running.endpoint);
  await stopMoto();
  mkdirSync(dirname(MOTO.pidFile), { recursive: true });
  // The PID is recorded at once: a bring-up killed while moto starts must not leave it unknown.
  const moto = await startMoto({ logFile: MOTO.log, onSpawn: (pid) => writeFileSync(MOTO.pidFile, `${pid}\n`), keepAfterParent: true });
  writeFileSync(MOTO.endpointFile, `${moto.endpoint}\n`);
  return moto;
}

function recordedPid(): number | undefined {
  if (!existsSync(MOTO.pidFile)) return undefined;
  const pid = Number(readFileSync(MOTO.pidFile, 'utf8').trim());
  return isMoto(pid) ? pid : undefined;
}

/** Stops the recorded moto_server, whoever started it (and even if it never answered). */
export async function stopMoto(moto?: MotoServer): Promise<void> {
  if (moto) await moto.stop();
  const pid = recordedPid();
  if (pid !== undefined) await stopProcess(pid, 5_000);
  rmSync(MOTO.pidFile, { force: true });
  rmSync(MOTO.endpointFile, { force: true });
}
