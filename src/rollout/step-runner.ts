import type { Logger } from '../log/logger.js';

// Every step of a release goes through here: logged before and after with host, step and duration,
// and told to an optional journal, so that a record of each step exists before it has any effect.

export interface StepJournal {
  begin(entry: { host?: string; step: string }): Promise<void> | void;
  end(entry: { host?: string; step: string; ok: boolean; durationMs: number; error?: string }): Promise<void> | void;
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

export function createStepRunner(logger: Logger, journal?: StepJournal): StepRunner {
  return async (step, host, action) => {
    const started = Date.now();
    await journal?.begin({ step, ...(host ? { host } : {}) });
    logger.debug({ host, step }, 'step started');
    try {
      const result = await action();
      const durationMs = Date.now() - started;
      logger.info({ host, step, durationMs }, 'step done');
      await journal?.end({ step, ok: true, durationMs, ...(host ? { host } : {}) });
      return result;
    } catch (error) {
      const durationMs = Date.now() - started;
      const reason = error instanceof StepFailure ? error.reason : (error as Error).message;
      logger.warn({ host, step, durationMs, err: error }, 'step failed');
      await journal?.end({ step, ok: false, durationMs, error: reason, ...(host ? { host } : {}) });
      throw error instanceof StepFailure ? error : new StepFailure(step, host, reason, { cause: error });
    }
  };
}
