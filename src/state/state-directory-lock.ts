import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, mkdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// One worker per state directory: the file store assumes it is the only writer. A second worker
// started on the same directory (a second unit on the bastion, a manual run beside the service, a
// second container on the same volume) is refused at start.
//
// The lock names its holder by PID, the machine's boot id, the process's start time and its PID
// namespace, and the holder touches the file every few seconds. A holder in this PID namespace is
// judged by its process: a lock left by a killed worker is taken over at once, even when its PID was
// reused since (a reboot, another process). A holder this process cannot see (another container's
// PID namespace) is judged by its heartbeat: taken over once the file has not been touched for
// `staleMs`, refused while it still is.

export class StateDirectoryBusyError extends Error {
  override name = 'StateDirectoryBusyError';
}

interface Holder {
  readonly pid: number;
  readonly bootId?: string;
  readonly startTime?: string;
  readonly pidNamespace?: string;
}

export interface LockOptions {
  /**
   * Told when the lock is found to be another worker's (this one was paused past `staleMs`, and the
   * other took it over), by the heartbeat or by verify(): this worker must stop at once, since the
   * store assumes one writer.
   */
  readonly onLost?: (reason: string) => void;
}

export interface LockTimings {
  /** How often the holder touches the lock. Default 2 s. */
  readonly heartbeatMs?: number;
  /** A lock whose holder cannot be seen is taken over once untouched this long. Default 10 s. */
  readonly staleMs?: number;
}

function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
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

/** alive / dead when the holder's process can be looked at; unseen when it lives in another PID namespace. */
function judge(holder: Holder): 'alive' | 'dead' | 'unseen' {
  if (!Number.isInteger(holder.pid) || holder.pid <= 0) return 'dead';
  // Another boot id is a reboot since, or another machine on a shared volume: judged by the heartbeat.
  if (holder.bootId !== undefined && holder.bootId !== bootId()) return 'unseen';
  if (holder.pidNamespace !== undefined && holder.pidNamespace !== pidNamespace()) return 'unseen';
  // Our own PID in a lock from this namespace is a previous life of this PID, never a live holder.
  if (holder.pid === process.pid) return 'dead';
  const started = startTimeOf(holder.pid);
  if (started === undefined) return 'dead';
  return holder.startTime === undefined || holder.startTime === started ? 'alive' : 'dead';
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

const touchedAt = async (path: string) => (await stat(path).catch(() => undefined))?.mtimeMs;

/** Whether a holder this process cannot see still touches the lock: watched until it is stale. */
async function stillTouched(path: string, timings: Required<LockTimings>): Promise<boolean> {
  const first = await touchedAt(path);
  if (first === undefined) return false;
  for (;;) {
    const now = await touchedAt(path);
    if (now === undefined) return false;
    if (now !== first) return true;
    if (Date.now() - now > timings.staleMs) return false;
    await sleep(Math.min(timings.heartbeatMs, timings.staleMs / 4));
  }
}

/** This worker's lock on the state directory was taken over by another worker. */
export class StateDirectoryLostError extends Error {
  override name = 'StateDirectoryLostError';
}

export interface StateDirectoryLock {
  /** Aborted (reason: StateDirectoryLostError) once the lock is found to be another worker's. */
  readonly lost: AbortSignal;
  /** Reads the lock back: rejects with StateDirectoryLostError (and aborts `lost`) when it is no longer this worker's. */
  verify(): Promise<void>;
  release(): Promise<void>;
}

export async function lockStateDirectory(directory: string, options: LockTimings & LockOptions = {}): Promise<StateDirectoryLock> {
  const timings = { heartbeatMs: options.heartbeatMs ?? 2_000, staleMs: options.staleMs ?? 10_000 };
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const path = join(directory, 'worker.lock');
  const ns = pidNamespace();
  const me: Holder = { pid: process.pid, ...(bootId() ? { bootId: bootId()! } : {}), ...(startTimeOf(process.pid) ? { startTime: startTimeOf(process.pid)! } : {}), ...(ns ? { pidNamespace: ns } : {}) };
  const content = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    // Written whole, then linked into place: the lock is never seen empty or half-written.
    const draft = `${path}.${process.pid}.${randomUUID()}`;
    await writeFile(draft, content, { mode: 0o600 });
    try {
      await link(draft, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const text = await readFile(path, 'utf8').catch(() => '');
      const holder = parseHolder(text);
      const verdict = judge(holder);
      const busy = new StateDirectoryBusyError(
        `state directory ${directory} is in use by another worker (pid ${holder.pid}${verdict === 'unseen' ? ' in another PID namespace' : ''}); one worker per state directory: stop it, or give this one its own stateDirectory`,
      );
      if (verdict === 'alive') throw busy;
      if (verdict === 'unseen' && (await stillTouched(path, timings))) throw busy;
      // Left by a worker that is gone (killed): its releases are this worker's to finish. Moved aside
      // first (of two workers starting at once, one rename wins), and put back if what was moved is
      // not the lock that was judged (another starting worker took over meanwhile).
      const aside = `${path}.stale.${randomUUID()}`;
      const moved = await rename(path, aside).then(
        () => true,
        () => false,
      );
      if (moved) {
        if ((await readFile(aside, 'utf8').catch(() => undefined)) !== text) await link(aside, path).catch(() => undefined);
        await unlink(aside).catch(() => undefined);
      }
      continue;
    } finally {
      await unlink(draft).catch(() => undefined);
    }
    const lost = new AbortController();
    const loseIt = (held: string | undefined) => {
      if (lost.signal.aborted) return;
      clearInterval(heartbeat);
      const reason = held === undefined ? 'the lock file is gone' : `the lock now names another worker (${held.trim().slice(0, 200)})`;
      lost.abort(new StateDirectoryLostError(`state directory ${directory}: ${reason}`));
      options.onLost?.(reason);
    };
    const heartbeat = setInterval(() => {
      void (async () => {
        const now = new Date();
        const held = await readFile(path, 'utf8').catch(() => undefined);
        if (held === content) return void (await utimes(path, now, now).catch(() => undefined));
        loseIt(held);
      })();
    }, timings.heartbeatMs);
    heartbeat.unref();
    let released = false;
    return {
      lost: lost.signal,
      async verify() {
        if (!lost.signal.aborted) {
          const held = await readFile(path, 'utf8').catch(() => undefined);
          if (held !== content) loseIt(held);
        }
        lost.signal.throwIfAborted();
      },
      async release() {
        if (released) return;
        released = true;
        clearInterval(heartbeat);
        if ((await readFile(path, 'utf8').catch(() => undefined)) === content) await unlink(path).catch(() => undefined);
      },
    };
  }
  throw new StateDirectoryBusyError(`cannot take the lock on state directory ${directory}: other workers keep taking it; one worker per state directory`);
}
