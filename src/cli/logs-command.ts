import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { prettyLine } from '../log/pretty-line.js';
import { useColour } from './ops/table.js';
import { UsageError } from './usage-error.js';

// `harbormaster logs`: the worker's log as people read it, with no npm on the bastion: the systemd
// journal (`journalctl -u harbormaster -o cat`) or a file, each pino JSON line on one readable line,
// optionally only one release's lines, optionally following.

interface LogsOptions {
  readonly release?: string;
  readonly follow?: boolean;
  readonly file?: string;
  readonly unit: string;
}

/** The command that prints the log: journalctl for the unit, or tail for a file. */
export function logSource(options: LogsOptions): { command: string; args: string[] } {
  if (options.file) return { command: 'tail', args: options.follow ? ['-n', '+1', '-F', options.file] : ['-n', '+1', options.file] };
  return { command: 'journalctl', args: ['-u', options.unit, '-o', 'cat', '--no-pager', ...(options.follow ? ['--follow'] : [])] };
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description('The worker\'s log, one readable line per event: the systemd journal (or a file), optionally one release\'s lines, optionally following.')
    .option('--release <id>', 'only the lines of this release (its id, or its first 8 or more characters)')
    .option('-f, --follow', 'keep printing lines as they come')
    .option('--file <path>', 'read this file (e.g. `docker logs harbormaster > FILE`) instead of the journal')
    .option('--unit <unit>', 'the systemd unit of the worker', 'harbormaster')
    .action(async (options: LogsOptions) => {
      const release = options.release?.trim().toLowerCase();
      if (release !== undefined && !/^[0-9a-f][0-9a-f-]{7,35}$/.test(release)) throw new UsageError(`--release must be a release id or its first 8 or more characters, not '${options.release!.slice(0, 80)}'`);
      const colour = useColour(process.stdout, process.env);
      const { command, args } = logSource(options);
      const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
      const started = new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', (error: NodeJS.ErrnoException) =>
          reject(error.code === 'ENOENT' ? new UsageError(`${command} is not installed here: give --file with the worker's log`) : error),
        );
      });
      await started;
      for await (const line of createInterface({ input: child.stdout! })) {
        const pretty = prettyLine(line, colour);
        if (release !== undefined && !pretty.releaseId?.startsWith(release)) continue;
        process.stdout.write(`${pretty.text}\n`);
      }
      const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
      if (code !== 0) process.exitCode = 1;
    });
}
