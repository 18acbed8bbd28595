import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { releaseIdPattern } from '../request/names.js';

// Which releases this worker has finished, kept on disk so that a request delivered again (SQS is
// at-least-once) is acknowledged without a second rollout, also after a restart.

export interface FinishedRelease {
  readonly releaseId: string;
  readonly target: string;
  readonly image: string;
  readonly outcome: string;
  readonly finishedAt: string;
}

export interface ReleaseLedger {
  finished(releaseId: string): Promise<FinishedRelease | undefined>;
  record(entry: FinishedRelease): Promise<void>;
}

export class FileReleaseLedger implements ReleaseLedger {
  private readonly directory: string;

  constructor(stateDirectory: string) {
    this.directory = join(stateDirectory, 'releases');
  }

  private path(releaseId: string): string {
    // Release ids were validated as UUIDs; checked again because this names a file.
    if (!releaseIdPattern.test(releaseId)) throw new Error(`not a release id: ${releaseId}`);
    return join(this.directory, `${releaseId}.json`);
  }

  async finished(releaseId: string): Promise<FinishedRelease | undefined> {
    try {
      return JSON.parse(await readFile(this.path(releaseId), 'utf8')) as FinishedRelease;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async record(entry: FinishedRelease): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    const path = this.path(entry.releaseId);
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
    await rename(temporary, path);
  }
}

export class MemoryReleaseLedger implements ReleaseLedger {
  readonly entries = new Map<string, FinishedRelease>();
  async finished(releaseId: string) {
    return this.entries.get(releaseId);
  }
  async record(entry: FinishedRelease) {
    this.entries.set(entry.releaseId, entry);
  }
}
