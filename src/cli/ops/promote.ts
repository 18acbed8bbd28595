import type { Command } from 'commander';
import { promotionOf, type PromoteRequest } from '../../state/control.js';
import { releaseInProgress, SteerRefusedError, withSteerContext, withSteerOptions, writeControl, type SteerOptions } from './steer.js';

// `harbormaster promote TARGET`: records a promote request for the target's release in progress; the
// rollout reads it at a pause of policy.steps and goes on. A second promote of the same release is the
// same request.

export function registerPromote(program: Command): void {
  withSteerOptions(program.command('promote'))
    .description('Let the target\'s release in progress go on past the pause it waits at (a `pause` step of policy.steps); recorded at once, taken when the release is at a pause.')
    .argument('<target>', 'stack/release/deployment')
    .action(async (target: string, options: SteerOptions) => {
      await withSteerContext(target, options, async (context) => {
        const release = await releaseInProgress(context);
        if (!release) throw new SteerRefusedError(`no release of ${target} is in progress: nothing to promote (see \`harbormaster status ${target}\`)`);
        const request: PromoteRequest = { by: context.who, at: new Date().toISOString(), releaseId: release.releaseId };
        const stored = await writeControl(context, (current) => (promotionOf(current, release.releaseId) ? undefined : { ...current, promotions: [...(current.promotions ?? []), request] }));
        const recorded = promotionOf(stored, release.releaseId)!;
        if (recorded.at !== request.at) context.say(`release ${release.releaseId} was already promoted by ${recorded.by} at ${recorded.at}; nothing changed`);
        context.write(context.json ? [JSON.stringify({ target, revision: stored.revision, promotion: recorded })] : [`recorded: promotion of release ${release.releaseId} (${release.request.image}, ${release.status}), by ${recorded.by}`]);
      });
    });
}
