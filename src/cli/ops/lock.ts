import type { Command } from 'commander';
import { askedBy, lockInForce, type TargetLock } from '../../state/control.js';
import { MAX_REASON, operatorText, parseDuration } from './operator.js';
import { withSteerContext, withSteerOptions, writeControl, type SteerOptions } from './steer.js';

// `harbormaster lock TARGET --reason TEXT [--for DURATION]` and `harbormaster unlock TARGET`: while a
// target is locked, releases that have not started wait in the release state (never refused, never
// expiring); a release under way goes on (stopping it is `harbormaster stop`). A lock ends by itself
// at its `until`, so one nobody lifts does not hold the target for ever.

export const DEFAULT_LOCK = '4h';

const describeLock = (lock: TargetLock) => `locked by ${askedBy(lock)} until ${lock.until}: ${lock.reason}`;

export function registerLock(program: Command): void {
  withSteerOptions(program.command('lock'))
    .description('Hold a target: releases that have not started wait (never refused) until it is unlocked or the lock ends.')
    .argument('<target>', 'stack/release/deployment')
    .requiredOption('--reason <text>', `why (shown in status, chat and to whoever enqueues; at most ${MAX_REASON} characters)`)
    .option('--for <duration>', `how long, e.g. 30m, 4h, 2d (at most 30d); the lock ends by itself then`, DEFAULT_LOCK)
    .action(async (target: string, options: SteerOptions & { reason: string; for: string }) => {
      const reason = operatorText('--reason', options.reason, MAX_REASON);
      const ms = parseDuration('--for', options.for);
      await withSteerContext(target, options, async (context) => {
        const now = new Date();
        const lock: TargetLock = { ...context.mark(now), reason, until: new Date(now.getTime() + ms).toISOString() };
        let replaced: TargetLock | undefined;
        const stored = await writeControl(context, (current) => {
          replaced = lockInForce(current, now);
          return { ...current, lock };
        });
        if (replaced) context.say(`replaced the lock ${describeLock(replaced)}`);
        context.write(context.json ? [JSON.stringify({ target, revision: stored.revision, lock })] : [`${target} ${describeLock(lock)}`]);
      });
    });

  withSteerOptions(program.command('unlock'))
    .description('Lift the lock on a target: releases waiting for it are taken up by the worker\'s next sweep.')
    .argument('<target>', 'stack/release/deployment')
    .action(async (target: string, options: SteerOptions) => {
      await withSteerContext(target, options, async (context) => {
        const now = new Date();
        let lifted: TargetLock | undefined;
        const stored = await writeControl(context, (current) => {
          lifted = current.lock;
          if (!current.lock) return undefined;
          const { lock, ...rest } = current;
          return { ...rest, unlocked: { ...context.mark(now), lock } };
        });
        const active = lifted && lockInForce({ target, revision: 0, lock: lifted }, now);
        const line = !lifted ? `${target} was not locked; nothing changed` : active ? `${target} unlocked (it was ${describeLock(lifted)}); unlocked by ${askedBy(context.mark(now))}` : `${target}: removed a lock that had already ended (${describeLock(lifted)})`;
        context.write(context.json ? [JSON.stringify({ target, revision: stored.revision, unlocked: lifted ?? null, by: context.who, note: context.note ?? null })] : [line]);
      });
    });
}
