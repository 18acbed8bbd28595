import { createHash } from 'node:crypto';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReleaseRecord } from './release-record.js';
import { foldTargetSummary, TARGET_SUMMARY_FORMAT, type TargetSummary } from './target-summary.js';
import { namesIn, syncDirectory, writeDurably } from './durable-files.js';

// The file store's target summaries: `<stateDirectory>/targets/<sha1(target)>.json`, one per target
// with a finished release, written after each final record (temporary file, fsync, rename, directory
// fsync) and never removed, so a target's current release outlives its record files.


export class TargetSummaryFiles {
  private readonly directory: string;
  /** Writes to one target's file are serialised here. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private tmpCounter = 0;

  constructor(stateDirectory: string) {
    this.directory = join(stateDirectory, 'targets');
  }

  private path(target: string): string {
    return join(this.directory, `${createHash('sha1').update(target).digest('hex')}.json`);
  }

  private async read(path: string): Promise<TargetSummary | undefined> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      const parsed = JSON.parse(text) as TargetSummary;
      return parsed.format === TARGET_SUMMARY_FORMAT ? parsed : undefined;
    } catch {
      // Written by rename, so never torn by a crash; a file altered by hand is left out.
      return undefined;
    }
  }

  /** Folds a final record into its target's file. */
  note(record: ReleaseRecord): Promise<void> {
    const previous = this.queues.get(record.target) ?? Promise.resolve();
    const work = async () => {
      await mkdir(this.directory, { recursive: true, mode: 0o700 });
      const path = this.path(record.target);
      const next = foldTargetSummary(await this.read(path), record, new Date());
      const temporary = `${path}.tmp-${process.pid}-${++this.tmpCounter}`;
      await writeDurably(temporary, `${JSON.stringify(next)}\n`);
      await rename(temporary, path);
      await syncDirectory(this.directory);
    };
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.queues.set(record.target, settled);
    void settled.then(() => {
      if (this.queues.get(record.target) === settled) this.queues.delete(record.target);
    });
    return next;
  }

  async all(): Promise<TargetSummary[]> {
    const names = await namesIn(this.directory);
    const summaries = await Promise.all(names.filter((name) => /^[0-9a-f]{40}\.json$/.test(name)).map((name) => this.read(join(this.directory, name))));
    return summaries.filter((summary): summary is TargetSummary => summary !== undefined).sort((a, b) => a.target.localeCompare(b.target));
  }
}
