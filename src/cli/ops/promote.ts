import type { Command } from 'commander';
import { askedBy, promotionOf, type PromoteRequest } from '../../state/control.js';
import { gateWaiting } from '../../state/release-record.js';
import { releaseInProgress, SteerRefusedError, withSteerContext, withSteerOptions, writeControl, type SteerOptions } from './steer.js';

// `harbormaster promote TARGET`: records a promotion of the target's release in progress; the rollout
// passes the pause it waits at when the worker first saw the promotion after the release reached that
// pause, by the worker's clock (so a release with two pauses is promoted twice, and a promotion made
// before a pause does not pass it, whatever time it carries). Each promote replaces the release's
// previous promotion.

export function registerPromote(program: Command): void {
  withSteerOptions(program.command('promote'))
    .description('Let the target\'s release in progress go on past the pause it waits at (a `pause` step of policy.steps); a promotion made before the release reaches a pause does not pass it.')
    .argument('<target>', 'stack/release/deployment')
    .action(async (target: string, options: SteerOptions) => {
      await withSteerContext(target, options, async (context) => {
        const release = await releaseInProgress(context);
        if (!release) throw new SteerRefusedError(`no release of ${target} is in progress: nothing to promote (see \`harbormaster status ${target}\`)`);
        const request: PromoteRequest = { ...context.mark(new Date()), releaseId: release.releaseId };
        const stored = await writeControl(context, (current) => ({ ...current, promotions: [...(current.promotions ?? []).filter((p) => p.releaseId !== release.releaseId), request] }));
        const recorded = promotionOf(stored, release.releaseId)!;
        const waiting = gateWaiting(release);
        if (waiting !== 'paused until `harbormaster promote`') context.say(`release ${release.releaseId} is not waiting at a pause now (${waiting ?? release.status}): a promotion counts only for a pause the release already waits at; promote again once \`harbormaster status ${target}\` says it waits`);
        context.write(context.json ? [JSON.stringify({ target, revision: stored.revision, promotion: recorded })] : [`recorded: promotion of release ${release.releaseId} (${release.request.image}, ${release.status}), by ${askedBy(recorded)}`]);
      });
    });
}
