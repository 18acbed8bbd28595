import type { Command } from 'commander';
import { releaseIdPattern } from '../../request/names.js';
import { UsageError } from '../usage-error.js';
import { intervalMs, watchFrames, withOpsContext, withOpsOptions, type Frame, type OpsOptions } from './ops-command.js';
import { StoreUnreadableError } from './release-state.js';
import { showText, showView } from './show-view.js';

// `harbormaster show RELEASE_ID`: one release's whole record, host by host; --watch until it ends.

export function registerShow(program: Command): void {
  withOpsOptions(program.command('show'))
    .description('One release, whole: the request, the plan, every host\'s steps with times, what it changed and restored, the outcome.')
    .argument('<release-id>', 'the release id (a UUID, as enqueue printed it)')
    .option('--watch', 'refresh until the release ends')
    .option('--interval <seconds>', 'how often --watch refreshes', '2')
    .action(async (releaseId: string, options: OpsOptions & { watch?: boolean; interval: string }) => {
      if (!releaseIdPattern.test(releaseId)) throw new UsageError(`not a release id: '${releaseId.slice(0, 80)}' (a UUID, as enqueue printed it)`);
      const interval = intervalMs(options.interval);
      await withOpsContext(options, async (context) => {
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
