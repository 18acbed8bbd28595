import { readFileSync } from 'node:fs';
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';

// One worker per state directory: the file store assumes it is the only writer. A second worker
// started on the same directory (a second unit on the bastion, a manual run beside the service) is
// refused at start. The lock names its holder by PID, the machine's boot id and the process's start
// time, so that a lock left by a killed worker is taken over even when its PID was reused since (a
// container's PID 1, a reboot): only a live process that is that same process holds it.

export class StateDirectoryBusyError extends Error {
  override name = 'StateDirectoryBusyError';
}

interface Holder {
  readonly pid: number;
  readonly bootId?: string;
  readonly startTime?: string;
}

function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), which a reused PID does not share. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function holdsIt(holder: Holder): boolean {
  if (!Number.isInteger(holder.pid) || holder.pid <= 0 || holder.pid === process.pid) return false;
  if (holder.bootId !== undefined && holder.bootId !== bootId()) return false;
  const started = startTimeOf(holder.pid);
  if (started === undefined) return false;
  return holder.startTime === undefined || holder.startTime === started;
}

function parseHolder(text: string): Holder {
  try {
    const parsed = JSON.parse(text) as Holder | number;
    // A bare PID names no boot and no start time: only the PID is checked.
    return typeof parsed === 'number' ? { pid: parsed } : parsed;
  } catch {
    return { pid: 0 };
  }
}

export interface StateDirectoryLock {
  release(): Promise<void>;
}

export async function lockStateDirectory(directory: string): Promise<StateDirectoryLock> {
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const path = join(directory, 'worker.lock');
  const me: Holder = { pid: process.pid, ...(bootId() ? { bootId: bootId()! } : {}), ...(startTimeOf(process.pid) ? { startTime: startTimeOf(process.pid)! } : {}) };
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const file = await open(path, 'wx', 0o600);
      await file.writeFile(`${JSON.stringify(me)}\n`);
      await file.close();
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          await unlink(path).catch(() => undefined);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = parseHolder(await readFile(path, 'utf8').catch(() => ''));
      if (holdsIt(holder)) {
        throw new StateDirectoryBusyError(`state directory ${directory} is in use by another worker (pid ${holder.pid}); one worker per state directory: stop it, or give this one its own stateDirectory`);
      }
      // Left by a worker that is gone (killed): its releases are this worker's to finish.
      await unlink(path).catch(() => undefined);
    }
  }
  throw new StateDirectoryBusyError(`cannot take the lock on state directory ${directory}`);
}
