import { Option, type Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadWorkerConfig, type WorkerConfig } from '../../config/worker-config.js';
import { UsageError } from '../usage-error.js';
import { openReleaseState, type ReleaseState } from './release-state.js';
import { useColour } from './table.js';

// What the read-only ops commands share: `--config` (the worker's file, the worker's loader), `--json`,
// the release state opened read-only, colour only on a terminal without NO_COLOR, and `--watch`.

export interface OpsOptions {
  readonly config: string;
  readonly json?: boolean;
}

export interface OpsContext {
  readonly config: WorkerConfig;
  readonly state: ReleaseState;
  readonly colour: boolean;
  readonly json: boolean;
  write(lines: readonly string[]): void;
}

export function withOpsOptions(command: Command): Command {
  return command
    .addOption(new Option('-c, --config <file>', 'the worker configuration (YAML), as `harbormaster worker` reads it').env('HARBORMASTER_CONFIG').makeOptionMandatory())
    .option('--json', 'print JSON (the shape the README documents) instead of a table');
}

export async function withOpsContext<T>(options: OpsOptions, body: (context: OpsContext) => Promise<T>): Promise<T> {
  const config = loadWorkerConfig(options.config);
  const state = await openReleaseState(config, (line) => process.stderr.write(`harbormaster: warning: ${line}\n`));
  try {
    return await body({
      config,
      state,
      colour: !options.json && useColour(process.stdout, process.env),
      json: options.json === true,
      write: (lines) => process.stdout.write(lines.map((line) => `${line}\n`).join('')),
    });
  } finally {
    state.close();
  }
}

/** `--interval` in seconds, checked: a mistake in the call is a UsageError. */
export function intervalMs(value: string | undefined): number {
  const seconds = Number(value ?? '2');
  if (!(seconds >= 0.2 && seconds <= 3600)) throw new UsageError(`--interval must be a number of seconds from 0.2 to 3600, not '${value}'`);
  return seconds * 1000;
}

export interface Frame {
  readonly lines: readonly string[];
  /** Nothing more will change: the watch ends after this frame. */
  readonly ended: boolean;
}

/**
 * Prints a frame, then again every `interval` until a frame says it ended. On a terminal each frame
 * replaces the last; elsewhere (and with --json, one document per line) frames follow each other.
 */
export async function watchFrames(next: () => Promise<Frame>, context: Pick<OpsContext, 'write' | 'json'>, interval: number): Promise<void> {
  const clear = process.stdout.isTTY === true && !context.json;
  for (;;) {
    const frame = await next();
    if (clear) process.stdout.write('\x1b[H\x1b[2J');
    context.write(frame.lines);
    if (frame.ended) return;
    await sleep(interval);
  }
}
