import type { Command } from 'commander';
import { UsageError } from '../usage-error.js';
import { historyText, historyView } from './history-view.js';
import { withOpsContext, withOpsOptions, type OpsOptions } from './ops-command.js';
import { checkTargets, knownTargets, servedTargets } from './targets.js';

// `harbormaster history TARGET [--limit N]`: the target's releases, newest first, read from the
// release state (one index query and one batch read).

export function limitOf(value: string): number {
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError(`--limit must be a whole number from 1 to 1000, not '${value}'`);
  return limit;
}

export function registerHistory(program: Command): void {
  withOpsOptions(program.command('history'))
    .description('The releases of one target, newest first: image, outcome and reason, who, source, when, how long, hosts.')
    .argument('<target>', 'stack/release/deployment')
    .option('--limit <n>', 'at most this many releases', '20')
    .action(async (target: string, options: OpsOptions & { limit: string }) => {
      const limit = limitOf(options.limit);
      await withOpsContext(options, async (context) => {
        const summaries = await context.state.read('the targets', (history) => history.targetSummaries());
        const served = servedTargets(context.config);
        // A personal deployment with only unfinished releases is not in the summaries yet.
        if (!summaries.some((s) => s.target === target) && !served.fixed.includes(target)) {
          const unfinished = await context.state.read('the unfinished releases', (history) => history.openReleases());
          checkTargets([target], knownTargets(served, [...summaries.map((s) => s.target), ...unfinished.map((r) => r.target)]));
        }
        const records = await context.state.read(`the releases of ${target}`, (history) => history.recent(target, limit));
        const view = historyView(target, records, new Date());
        context.write(context.json ? [JSON.stringify(view, null, 2)] : historyText(view, context.colour));
      });
    });
}
