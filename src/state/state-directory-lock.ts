import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';

// One worker per state directory: the file store assumes it is the only writer. A second worker
// started on the same directory (a second unit on the bastion, a manual run beside the service) is
// refused at start. The lock is a file holding the PID; a lock left by a killed worker is taken over.

export class StateDirectoryBusyError extends Error {
  override name = 'StateDirectoryBusyError';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface StateDirectoryLock {
  release(): Promise<void>;
}

export async function lockStateDirectory(directory: string): Promise<StateDirectoryLock> {
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const path = join(directory, 'worker.lock');
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const file = await open(path, 'wx', 0o600);
      await file.writeFile(`${process.pid}\n`);
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
      const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(holder) && holder > 0 && alive(holder)) {
        throw new StateDirectoryBusyError(`state directory ${directory} is in use by another worker (pid ${holder}); one worker per state directory: stop it, or give this one its own stateDirectory`);
      }
      // Left by a worker that is gone (killed): its releases are this worker's to finish.
      await unlink(path).catch(() => undefined);
    }
  }
  throw new StateDirectoryBusyError(`cannot take the lock on state directory ${directory}`);
}
