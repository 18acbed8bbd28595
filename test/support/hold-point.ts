import type { Logger } from '../../src/log/logger.js';
import type { ReleaseSignals, StepJournal } from '../../src/rollout/step-runner.js';

// A test hook: a step journal that holds a release at one boundary, `<host|->:<step>:<begin|end>` (for
// example `h2:stop-old:end`, `-:mute-alarms:end`). Tests hand it to the rollout directly, or to the
// built `harbormaster worker` through the preload module ./hold-preload.ts (WorkerProcess's `holdAt`).
// When the release reaches that boundary, the worker logs `test hold reached` and waits there, so that
// a test can SIGKILL the real process at exactly that point and check what a restart makes of the
// fleet. The wait still yields to the release: a stop request or the release deadline ends it and the
// release goes on to handle them as it would at that boundary; a lost lease ends it by throwing, so
// that no effect follows. Nothing else changes.

export const holdHookWarning = (spec: string) => `TEST HOLD HOOK SET (${spec}): this worker will stop at ${spec} and wait`;

/** Undefined when `spec` is unset; otherwise says so at once, loudly (a warn log line and stderr). */
export function holdPointJournal(spec: string | undefined, logger: Logger, stderr: (line: string) => void = (line) => void process.stderr.write(line)): StepJournal | undefined {
  if (!spec) return undefined;
  const match = /^([^:]+):([a-z-]+):(begin|end)$/.exec(spec);
  if (!match) throw new Error(`a hold point must be <host|->:<step>:<begin|end>, not ${JSON.stringify(spec)}`);
  const [, host, step, edge] = match as unknown as [string, string, string, 'begin' | 'end'];
  logger.warn({ hold: spec }, holdHookWarning(spec));
  stderr(`harbormaster: ${holdHookWarning(spec)}\n`);
  let reached = false;
  const hold = async (entry: { host?: string; step: string }, at: 'begin' | 'end', signals: ReleaseSignals = {}) => {
    if (reached || at !== edge || entry.step !== step || (entry.host ?? '-') !== host) return;
    reached = true;
    logger.warn({ hold: spec }, 'test hold reached');
    const why = await heldUntil(signals);
    if (why === 'lease lost') {
      logger.warn({ hold: spec }, 'test hold ended: the lease was lost');
      throw signals.leaseLost!.reason ?? new Error('the lease was lost');
    }
    logger.warn({ hold: spec, why }, 'test hold ended; the release goes on');
  };
  return { begin: (entry, signals) => hold(entry, 'begin', signals), end: (entry, signals) => hold(entry, 'end', signals) };
}

/** Waits until one of the release's signals fires (for ever when it has none), and says which. */
function heldUntil(signals: ReleaseSignals): Promise<'stop requested' | 'lease lost' | 'deadline'> {
  return new Promise((resolve) => {
    const cleanups: Array<() => void> = [];
    let ended = false;
    const end = (why: 'stop requested' | 'lease lost' | 'deadline') => {
      ended = true;
      for (const cleanup of cleanups.splice(0)) cleanup();
      resolve(why);
    };
    const on = (signal: AbortSignal | undefined, why: 'stop requested' | 'lease lost') => {
      if (!signal || ended) return;
      if (signal.aborted) return end(why);
      const listener = () => end(why);
      signal.addEventListener('abort', listener, { once: true });
      cleanups.push(() => signal.removeEventListener('abort', listener));
    };
    on(signals.leaseLost, 'lease lost');
    on(signals.stopRequested, 'stop requested');
    if (signals.deadline !== undefined && !ended) {
      const timer = setTimeout(() => end('deadline'), Math.max(0, signals.deadline - Date.now()));
      cleanups.push(() => clearTimeout(timer));
    }
  });
}
