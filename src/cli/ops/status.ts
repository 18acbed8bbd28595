import type { Command } from 'commander';
import { checkTargets, knownTargets, servedTargets } from './targets.js';
import { intervalMs, watchFrames, withOpsContext, withOpsOptions, type Frame, type OpsContext, type OpsOptions } from './ops-command.js';
import { statusStillMoving, statusView, type StatusView } from './status-view.js';
import { statusText } from './status-text.js';

// `harbormaster status [TARGET...]`: every target the configuration serves (and personal deployments
// that have releases), read from the release state: two reads, whatever the history's length, and
// one read of each shown target's control (its lock).

export async function readStatus(context: Pick<OpsContext, 'config' | 'state'>, asked: readonly string[], now = new Date()): Promise<StatusView> {
  const [summaries, unfinished] = await Promise.all([
    context.state.read('the targets', (history) => history.targetSummaries()),
    context.state.read('the unfinished releases', (history) => history.openReleases()),
  ]);
  const known = knownTargets(servedTargets(context.config), [...summaries.map((s) => s.target), ...unfinished.map((r) => r.target)]);
  checkTargets(asked, known);
  const targets = asked.length > 0 ? asked : known;
  const controls = new Map(await Promise.all(targets.map(async (target) => [target, await context.state.read(`the control of ${target}`, (history) => history.control(target))] as const)));
  return statusView({ targets, summaries, unfinished, controls, now });
}

export function registerStatus(program: Command): void {
  withOpsOptions(program.command('status'))
    .description('What every target runs, what is in progress, waiting or left to restore, and the last failure.')
    .argument('[target...]', 'stack/release/deployment; default every target')
    .option('--watch', 'refresh until no shown target has a release in progress or waiting')
    .option('--interval <seconds>', 'how often --watch refreshes', '2')
    .action(async (targets: string[], options: OpsOptions & { watch?: boolean; interval: string }) => {
      const interval = intervalMs(options.interval);
      await withOpsContext(options, async (context) => {
        const frame = async (): Promise<Frame> => {
          const view = await readStatus(context, targets);
          return { lines: context.json ? [JSON.stringify(view, null, options.watch ? undefined : 2)] : statusText(view, context.colour), ended: !options.watch || !statusStillMoving(view) };
        };
        await watchFrames(frame, context, interval);
      });
    });
}
