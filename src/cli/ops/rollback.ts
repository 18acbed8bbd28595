import type { Command } from 'commander';
import { askedBy, type RollbackRequest, type StopRequest, type TargetLock } from '../../state/control.js';
import { UsageError } from '../usage-error.js';
import { DEFAULT_LOCK } from './lock.js';
import { MAX_REASON, operatorText, parseDuration } from './operator.js';
import { randomUUID } from 'node:crypto';
import { chooseRollback } from '../../worker/rollback-choice.js';
import { releaseInProgress, SteerRefusedError, waitMinutes, withSteerContext, withSteerOptions, writeControl, type SteerOptions } from './steer.js';
import { readThrough, ReleaseNotFoundError, resolveReleaseId } from './release-id.js';
import { waitAndReport } from './stop.js';

// `harbormaster rollback TARGET [--to RELEASE_ID]`: writes a rollback request into the target's
// control, never a release: the worker checks it against its own history and turns it into a release
// of the previous succeeded image (or of the release named) by its recorded digest, under the id this
// command chose (rollback-requests.ts). The command asks the same question first (chooseRollback), so
// a rollback that cannot be met is refused here with nothing written. A release in progress on the
// target is asked to stop and put its hosts back; and unless --no-lock, the same control write locks
// the target, admitting the rollback release itself, so nothing else starts after it until someone unlocks.

const RECENT = 50;

export function registerRollback(program: Command): void {
  withSteerOptions(program.command('rollback'))
    .description('Release the previous succeeded image again (or the one --to names) as a new release, stop the release in progress with rollback, and lock the target.')
    .argument('<target>', 'stack/release/deployment')
    .option('--to <release-id>', 'go back to the image of this release (it must have succeeded on the target); its id or a unique prefix of 8 or more characters')
    .option('--reason <text>', `why (recorded with the rollback and the lock; at most ${MAX_REASON} characters)`)
    .option('--no-lock', 'do not lock the target afterwards')
    .option('--lock-for <duration>', `how long the lock holds, e.g. 30m, 4h, 2d`, DEFAULT_LOCK)
    .option('--no-wait', 'return once the rollback is recorded')
    .option('--wait-minutes <minutes>', 'how long to wait for the rollback release to end at most', '60')
    .action(async (target: string, options: SteerOptions & { to?: string; reason?: string; lock: boolean; lockFor: string; wait: boolean; waitMinutes: string }) => {
      if (options.to !== undefined && !/^[0-9a-fA-F][0-9a-fA-F-]{7,35}$/.test(options.to)) throw new UsageError(`--to must be a release id (the UUID enqueue printed, or its first 8 or more characters as the tables show them), not '${options.to.slice(0, 80).replace(/[^\x20-\x7e]/g, '?')}'`);
      const reason = options.reason === undefined ? undefined : operatorText('--reason', options.reason, MAX_REASON);
      const lockMs = parseDuration('--lock-for', options.lockFor);
      const minutes = waitMinutes(options.waitMinutes);
      await withSteerContext(target, options, async (context) => {
        const recent = await context.state.read(`the releases of ${target}`, (h) => h.recent(target, RECENT));
        const to = options.to === undefined ? undefined : await resolveReleaseId(readThrough(context.state), options.to).catch((error: unknown) => (error instanceof ReleaseNotFoundError ? options.to! : Promise.reject(error)));
        const named = to === undefined ? undefined : ((await context.state.read(`release ${to}`, (h) => h.get(to))) ?? to);
        const choice = chooseRollback(target, recent, named);
        if (!choice.ok) throw new SteerRefusedError(`cannot roll ${target} back: ${choice.reason}`);
        // One rollback request at a time: a second would replace the first, whose caller waits for it.
        const pending = (await context.state.read(`the control of ${target}`, (h) => h.control(target))).rollback;
        if (pending) throw new SteerRefusedError(`a rollback of ${target} asked by ${askedBy(pending)} at ${pending.at} waits for the worker's next sweep (it becomes release ${pending.releaseId}); see \`harbormaster status ${target}\`, and run this again once it has started`);
        const inProgress = await releaseInProgress(context);
        const now = new Date();
        const mark = context.mark(now);
        const rollback: RollbackRequest = { ...mark, releaseId: randomUUID(), to: choice.to.releaseId, ...(reason ? { reason } : {}) };
        const stop: StopRequest | undefined = inProgress ? { ...mark, releaseId: inProgress.releaseId, rollback: true } : undefined;
        const lock: TargetLock | undefined = options.lock
          ? { ...mark, reason: `rolled back by ${askedBy(mark)}${reason ? `: ${reason}` : ''}`.slice(0, MAX_REASON + 100), until: new Date(now.getTime() + lockMs).toISOString(), admits: rollback.releaseId }
          : undefined;
        // One write: the request, the stop and the lock land together or not at all.
        const stored = await writeControl(context, (current) => ({
          ...current,
          rollback,
          ...(lock ? { lock } : {}),
          ...(stop ? { stops: [...(current.stops ?? []).filter((s) => s.releaseId !== stop.releaseId), stop] } : {}),
        }));
        const lines = [
          `recorded: a rollback request of ${target} to ${choice.to.request.image} (the image of release ${choice.to.releaseId}), by ${askedBy(mark)}; the worker releases it as ${rollback.releaseId}`,
          ...(stop ? [`recorded: stop with rollback of release ${stop.releaseId} (${inProgress!.request.image}, ${inProgress!.status})`] : []),
          ...(lock ? [`recorded: ${target} locked by ${askedBy(lock)} until ${lock.until}; \`harbormaster unlock ${target}\` lifts it`] : []),
        ];
        context.write(context.json ? [JSON.stringify({ target, releaseId: rollback.releaseId, rollback, to: { releaseId: choice.to.releaseId, image: choice.to.request.image }, stop: stop ?? null, lock: lock ?? null, revision: stored.revision })] : lines);
        if (!options.wait) return;
        await waitAndReport(context, rollback.releaseId, minutes, (ended) => ended.status === 'succeeded', async () => {
          const refused = (await context.state.read(`the control of ${target}`, (h) => h.control(target))).refusedRollback;
          return refused?.releaseId === rollback.releaseId ? refused.reason : undefined;
        });
      });
    });
}
