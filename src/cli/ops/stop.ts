import type { Command } from 'commander';
import { askedBy, stopOf, type StopRequest } from '../../state/control.js';
import type { ReleaseRecord } from '../../state/release-record.js';
import { releaseInProgress, SteerRefusedError, waitForEnd, waitMinutes, withSteerContext, withSteerOptions, writeControl, type SteerContext, type SteerOptions } from './steer.js';

// `harbormaster stop TARGET [--rollback]`: records a stop request for the target's release in
// progress; the worker stops it at its next safe point (every host whole and in service, Auto Scaling
// and alarms restored), and with --rollback puts the hosts it released back too. A second stop of the
// same release is the same request (a later --rollback turns it into a stop with rollback). Waits
// until the release has ended unless --no-wait.

/** Exit codes of stop and rollback once they waited (the README's "Steering a target"). */
export const STEER_EXIT = { asked: 0, otherwise: 3, timedOut: 5 } as const;

export function endedAsAsked(record: ReleaseRecord, rollback: boolean): boolean {
  return rollback ? record.status === 'rolled-back' : record.status === 'stopped' || record.status === 'rolled-back';
}

/** Waits for the release to end; prints how, sets the exit code. */
export async function waitAndReport(context: SteerContext, releaseId: string, minutes: number, asked: (record: ReleaseRecord) => boolean, refusedBeforeRecorded?: () => Promise<string | undefined>): Promise<void> {
  const ended = await waitForEnd(context, releaseId, minutes * 60_000, refusedBeforeRecorded);
  if (ended && 'refused' in ended) {
    const line = `release ${releaseId} refused by the worker, nothing changed: ${ended.refused}`;
    context.write(context.json ? [JSON.stringify({ releaseId, status: 'refused', reason: ended.refused, finishedAt: null })] : [line]);
    process.exitCode = STEER_EXIT.otherwise;
    return;
  }
  if (!ended) {
    context.say(`release ${releaseId} has not ended after ${minutes} min; stopped waiting (the request stays recorded)`);
    process.exitCode = STEER_EXIT.timedOut;
    return;
  }
  const line = `release ${releaseId} ${ended.status}${ended.reason ? `: ${ended.reason}` : ''}`;
  context.write(context.json ? [JSON.stringify({ releaseId, status: ended.status, reason: ended.reason ?? null, finishedAt: ended.finishedAt ?? null })] : [line]);
  process.exitCode = asked(ended) ? STEER_EXIT.asked : STEER_EXIT.otherwise;
}

export function registerStop(program: Command): void {
  withSteerOptions(program.command('stop'))
    .description('Stop the target\'s release in progress at its next safe point (every host whole, Auto Scaling and alarms restored); --rollback puts its released hosts back too.')
    .argument('<target>', 'stack/release/deployment')
    .option('--rollback', 'also put back the hosts the release has changed (it ends rolled-back)')
    .option('--no-wait', 'return once the stop is recorded')
    .option('--wait-minutes <minutes>', 'how long to wait for the release to end at most', '60')
    .action(async (target: string, options: SteerOptions & { rollback?: boolean; wait: boolean; waitMinutes: string }) => {
      const minutes = waitMinutes(options.waitMinutes);
      const rollback = options.rollback === true;
      await withSteerContext(target, options, async (context) => {
        const release = await releaseInProgress(context);
        if (!release) throw new SteerRefusedError(`no release of ${target} is in progress: nothing to stop (see \`harbormaster status ${target}\`)`);
        const request: StopRequest = { ...context.mark(new Date()), releaseId: release.releaseId, rollback };
        let already: StopRequest | undefined;
        const stored = await writeControl(context, (current) => {
          already = stopOf(current, release.releaseId);
          if (already && (already.rollback || !rollback)) return undefined;
          return { ...current, stops: [...(current.stops ?? []).filter((s) => s.releaseId !== release.releaseId), request] };
        });
        const recorded = stopOf(stored, release.releaseId)!;
        const what = `stop${recorded.rollback ? ' with rollback' : ''} of release ${release.releaseId} (${release.request.image}, ${release.status})`;
        if (recorded !== request && already && recorded.at === already.at) context.say(`${what} was already asked by ${askedBy(already)} at ${already.at}; nothing changed`);
        context.write(context.json ? [JSON.stringify({ target, revision: stored.revision, stop: recorded })] : [`recorded: ${what}, by ${askedBy(recorded)}`]);
        if (!options.wait) return;
        await waitAndReport(context, release.releaseId, minutes, (ended) => endedAsAsked(ended, recorded.rollback));
      });
    });
}
