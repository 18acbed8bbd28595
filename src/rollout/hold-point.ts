import type { Logger } from '../log/logger.js';
import type { StepJournal } from './step-runner.js';

// A test hook, off unless HARBORMASTER_TEST_HOLD_AT is set: `<host|->:<step>:<begin|end>` (for example
// `h2:stop-old:end`, `-:mute-alarms:end`). When the release reaches that boundary, the worker logs
// `test hold reached` and waits there for ever, so that a test can SIGKILL the real process at exactly
// that point and check what a restart makes of the fleet. Nothing else changes.

export function holdPointJournal(spec: string | undefined, logger: Logger): StepJournal | undefined {
  if (!spec) return undefined;
  const match = /^([^:]+):([a-z-]+):(begin|end)$/.exec(spec);
  if (!match) throw new Error(`HARBORMASTER_TEST_HOLD_AT must be <host|->:<step>:<begin|end>, not ${JSON.stringify(spec)}`);
  const [, host, step, edge] = match as unknown as [string, string, string, 'begin' | 'end'];
  let reached = false;
  const hold = async (entry: { host?: string; step: string }, at: 'begin' | 'end') => {
    if (reached || at !== edge || entry.step !== step || (entry.host ?? '-') !== host) return;
    reached = true;
    logger.warn({ hold: spec }, 'test hold reached');
    await new Promise<never>(() => undefined);
  };
  return { begin: (entry) => hold(entry, 'begin'), end: (entry) => hold(entry, 'end') };
}
