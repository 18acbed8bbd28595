import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { CLI } from './cli.js';

// `harbormaster worker` as ops run it: the built executable in its own process, its JSON log lines
// read as they come. For tests that kill the real worker and start it again.

/** The test hold (./hold-point.ts), loaded before the CLI; tsx first, to load it as TypeScript. */
const HOLD_PRELOAD = ['--import', import.meta.resolve('tsx'), '--import', import.meta.resolve('./hold-preload.ts')];

export interface WorkerProcessOptions {
  /** The user and group to run as (the worker's own user, as systemd's User= runs it). */
  readonly as?: { readonly uid: number; readonly gid: number };
  /** Hold the release at this boundary (`<host|->:<step>:<begin|end>`, ./hold-point.ts), through ./hold-preload.ts. */
  readonly holdAt?: string;
}

export type LogLine = Record<string, unknown>;

/** Every worker a test started, killed when the test process exits however it exits (a timeout included). */
const started = new Set<ChildProcess>();
process.once('exit', () => started.forEach((child) => child.kill('SIGKILL')));

export class WorkerProcess {
  readonly lines: LogLine[] = [];
  stderr = '';
  private readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters = new Set<() => void>();

  constructor(configPath: string, env: NodeJS.ProcessEnv, options: WorkerProcessOptions = {}) {
    const preload = options.holdAt === undefined ? [] : HOLD_PRELOAD;
    const environment = options.holdAt === undefined ? env : { ...env, HARBORMASTER_TEST_HOLD_AT: options.holdAt };
    const as = options.as;
    this.child = spawn(process.execPath, [...preload, CLI, 'worker', '--config', configPath], { env: environment, stdio: ['ignore', 'pipe', 'pipe'], ...(as ? { uid: as.uid, gid: as.gid } : {}) });
    started.add(this.child);
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line) as LogLine);
      } catch {
        this.lines.push({ msg: line, raw: true });
      }
      this.waiters.forEach((wake) => wake());
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        started.delete(this.child);
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The first log line matching, waiting for it; fails with the log's tail if it does not come. */
  async waitFor(what: string, match: (line: LogLine) => boolean, timeoutMs = 60_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(match);
      if (found) return found;
      if (Date.now() > deadline || this.child.exitCode !== null || this.child.signalCode !== null) {
        const tail = this.lines.slice(-15).map((l) => JSON.stringify(l)).join('\n');
        throw new Error(`worker: no ${what} within ${timeoutMs} ms (exit ${this.child.exitCode ?? this.child.signalCode ?? 'none'})\n${tail}\nstderr: ${this.stderr.slice(-2000)}`);
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, 200);
        this.waiters.add(wake);
      });
    }
  }

  async kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}
