import { createHash, randomUUID } from 'node:crypto';
import { link, mkdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { emptyControl, type ControlChange, type TargetControl } from './control.js';
import { namesIn, syncDirectory, writeDurably } from './durable-files.js';

// The file store's control documents (control.ts): `<stateDirectory>/control/<sha1(target)>.r<N>.json`,
// one file per revision. The operator's CLI and the worker are separate processes on the bastion and
// the CLI never takes the worker's directory lock, so a write claims its revision by name: the new
// document goes to a temporary file that is flushed, then is linked to `.r<N+1>.json`; link() creates
// the name only if it is free, so of two writers working from revision N exactly one wins, and the
// other reads again and applies its change to what the winner wrote (no lost update, no lock file that
// a killed process could leave behind). The current document is the highest revision; the one before
// it is kept as a fallback should the newest file be damaged, older ones are removed.

const FILE_FORMAT = 'harbormaster.control-file/1';
/** Rounds of read, change, claim before giving up: each lost round means another writer came first. */
const WRITE_ROUNDS = 50;

interface ControlEnvelope {
  readonly format: typeof FILE_FORMAT;
  readonly sha256: string;
  readonly control: TargetControl;
}

const digest = (control: TargetControl) => createHash('sha256').update(JSON.stringify(control)).digest('hex');

function decode(text: string): TargetControl | undefined {
  try {
    const envelope = JSON.parse(text) as Partial<ControlEnvelope>;
    if (envelope.format !== FILE_FORMAT || !envelope.control || digest(envelope.control) !== envelope.sha256) return undefined;
    return envelope.control;
  } catch {
    return undefined;
  }
}

export class ControlFiles {
  private readonly directory: string;

  constructor(stateDirectory: string) {
    this.directory = join(stateDirectory, 'control');
  }

  private prefix(target: string): string {
    return createHash('sha1').update(target).digest('hex');
  }

  /** The revisions on disk for a target, newest first. */
  private async revisions(target: string): Promise<number[]> {
    const names = await namesIn(this.directory);
    const pattern = new RegExp(`^${this.prefix(target)}\\.r(\\d+)\\.json$`);
    return names
      .map((name) => pattern.exec(name)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => b - a);
  }

  private path(target: string, revision: number): string {
    return join(this.directory, `${this.prefix(target)}.r${revision}.json`);
  }

  /**
   * The newest readable document, and the highest revision on disk (a write claims the one above it,
   * even when the newest file is damaged and an older copy is used).
   */
  private async current(target: string): Promise<{ control: TargetControl; highest: number }> {
    for (let round = 0; ; round++) {
      const revisions = await this.revisions(target);
      const highest = revisions[0] ?? 0;
      let vanished = false;
      for (const revision of revisions) {
        let text: string;
        try {
          text = await readFile(this.path(target, revision), 'utf8');
        } catch (error) {
          // Removed by a writer two revisions ahead between the listing and the read: list again.
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
            vanished = true;
            break;
          }
          throw error;
        }
        const control = decode(text);
        if (control && control.target === target) return { control: { ...control, revision: highest }, highest };
      }
      if (!vanished || round >= 5) return { control: { ...emptyControl(target), revision: highest }, highest };
    }
  }

  async read(target: string): Promise<TargetControl> {
    return (await this.current(target)).control;
  }

  async update(target: string, change: ControlChange): Promise<TargetControl> {
    for (let round = 0; round < WRITE_ROUNDS; round++) {
      const { control, highest } = await this.current(target);
      const next = change(control);
      if (next === undefined) return control;
      const stored: TargetControl = { ...structuredClone(next), target, revision: highest + 1 };
      await mkdir(this.directory, { recursive: true, mode: 0o700 });
      const path = this.path(target, stored.revision);
      // Random: several store instances (processes, or one process's) may write the same revision at once.
      const temporary = `${path}.tmp-${randomUUID()}`;
      const envelope: ControlEnvelope = { format: FILE_FORMAT, sha256: digest(stored), control: stored };
      await writeDurably(temporary, `${JSON.stringify(envelope)}\n`);
      let won = true;
      try {
        await link(temporary, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        won = false; // another writer claimed this revision first: read again and redo the change
      } finally {
        await unlink(temporary).catch(() => undefined);
      }
      if (!won) continue;
      await syncDirectory(this.directory);
      for (const older of (await this.revisions(target)).filter((revision) => revision < stored.revision - 1)) {
        await unlink(this.path(target, older)).catch(() => undefined);
      }
      return stored;
    }
    throw new Error(`the control of ${target}: ${WRITE_ROUNDS} writes in a row lost to other writers; try again`);
  }
}
