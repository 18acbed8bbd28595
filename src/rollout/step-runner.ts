import type { Logger } from '../log/logger.js';

// Every step of a release is logged when it starts and when it ends (`step started`, then `step
// done` or `step failed`, with `host`, `step` and `durationMs`), and told to an optional journal.
// These lines are an interface: ops and their tools follow a release with them (see the README).
// A step is either one action (`run`) or a span opened and closed by its caller (`open`), for a
// wait that lasts several observations of a host.

/** What a journal that waits must yield to: the release's stop request, its lease loss, its deadline (epoch ms). */
export interface ReleaseSignals {
  readonly stopRequested?: AbortSignal | undefined;
  readonly leaseLost?: AbortSignal | undefined;
  readonly deadline?: number | undefined;
}

export interface StepJournal {
  begin(entry: { host?: string; step: string }, signals?: ReleaseSignals): Promise<void> | void;
  end(entry: { host?: string; step: string; ok: boolean; durationMs: number; error?: string }, signals?: ReleaseSignals): Promise<void> | void;
}

export class StepFailure extends Error {
  override name = 'StepFailure';
  constructor(
    readonly step: string,
    readonly host: string | undefined,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${host ? `${host}: ` : ''}${step}: ${reason}`, options);
  }
}

export type StepRunner = <T>(step: string, host: string | undefined, action: () => Promise<T>) => Promise<T>;

export interface OpenStep {
  readonly step: string;
  readonly startedAt: number;
  done(): Promise<number>;
  failed(reason: string, error?: unknown): Promise<number>;
}

export interface StepLog {
  readonly run: StepRunner;
  open(step: string, host: string | undefined): Promise<OpenStep>;
}

export function createStepLog(logger: Logger, journal?: StepJournal, signals?: ReleaseSignals): StepLog {
  const open = async (step: string, host: string | undefined): Promise<OpenStep> => {
    const startedAt = Date.now();
    const where = host ? { host } : {};
    logger.info({ ...where, step }, 'step started');
    await journal?.begin({ step, ...where }, signals);
    return {
      step,
      startedAt,
      async done() {
        const durationMs = Date.now() - startedAt;
        logger.info({ ...where, step, durationMs }, 'step done');
        await journal?.end({ step, ok: true, durationMs, ...where }, signals);
        return durationMs;
      },
      async failed(reason, error) {
        const durationMs = Date.now() - startedAt;
        logger.warn({ ...where, step, durationMs, reason, ...(error !== undefined ? { err: error } : {}) }, 'step failed');
        await journal?.end({ step, ok: false, durationMs, error: reason, ...where }, signals);
        return durationMs;
      },
    };
  };
  const run: StepRunner = async (step, host, action) => {
    const span = await open(step, host);
    let result;
    try {
      result = await action();
    } catch (error) {
      const reason = error instanceof StepFailure ? error.reason : (error as Error).message;
      await span.failed(reason, error);
      throw error instanceof StepFailure ? error : new StepFailure(step, host, reason, { cause: error });
    }
    await span.done();
    return result;
  };
  return { run, open };
}

export function createStepRunner(logger: Logger, journal?: StepJournal): StepRunner {
  return createStepLog(logger, journal).run;
}
