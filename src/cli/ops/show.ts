import type { Command } from 'commander';
import { intervalMs, watchFrames, withOpsContext, withOpsOptions, type Frame, type OpsOptions } from './ops-command.js';
import { readThrough, resolveReleaseId } from './release-id.js';
import { StoreUnreadableError } from './release-state.js';
import { showText, showView } from './show-view.js';

// `harbormaster show RELEASE_ID`: one release's whole record, host by host; --watch until it ends.

export function registerShow(program: Command): void {
  withOpsOptions(program.command('show'))
    .description('One release, whole: the request, the plan, every host\'s steps with times, what it changed and restored, the outcome.')
    .argument('<release-id>', 'the release id (the UUID enqueue printed, or its first 8 or more characters)')
    .option('--watch', 'refresh until the release ends')
    .option('--interval <seconds>', 'how often --watch refreshes', '2')
    .action(async (given: string, options: OpsOptions & { watch?: boolean; interval: string }) => {
      const interval = intervalMs(options.interval);
      await withOpsContext(options, async (context) => {
        const releaseId = await resolveReleaseId(readThrough(context.state), given);
        const frame = async (): Promise<Frame> => {
          const record = await context.state.read(`release ${releaseId}`, (history) => history.get(releaseId));
          if (!record) throw new StoreUnreadableError(`no release ${releaseId} in the release state (${context.state.history.description}): never accepted here, or past its retention`);
          const view = showView(record, new Date());
          const ended = !options.watch || view.ended;
          return { lines: context.json ? [JSON.stringify(view, null, options.watch ? undefined : 2)] : showText(view, context.colour), ended };
        };
        await watchFrames(frame, context, interval);
      });
    });
}
