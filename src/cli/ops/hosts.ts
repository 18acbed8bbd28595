import type { Command } from 'commander';
import { silentChat } from '../../chat/chat.js';
import { probeHttp } from '../../health/http-probe.js';
import { createLogger } from '../../log/logger.js';
import type { ReleaseRequest } from '../../request/release-request.js';
import { createRollout } from '../../rollout/create-rollout.js';
import { UsageError } from '../usage-error.js';
import { hostsText, hostsView } from './hosts-view.js';
import { observeHosts } from './observe-hosts.js';
import { withOpsContext, withOpsOptions, type OpsOptions } from './ops-command.js';
import { checkTargets, knownTargets, servedTargets } from './targets.js';

// `harbormaster hosts TARGET`: the live view, read now from AWS (instances by tags, load balancer
// health) and over SSH (containers), beside the target's current release from the release state.

export function registerHosts(program: Command): void {
  withOpsOptions(program.command('hosts'))
    .description('Each instance of a target now: load balancer health, live container, image and health, kept copies, and whether it runs the current release.')
    .argument('<target>', 'stack/release/deployment')
    .action(async (target: string, options: OpsOptions) => {
      await withOpsContext(options, async (context) => {
        const summaries = await context.state.read('the targets', (history) => history.targetSummaries());
        const served = servedTargets(context.config);
        if (!served.serves(target)) checkTargets([target], knownTargets(served, summaries.map((s) => s.target)));
        const [stack, release, deployment] = target.split('/') as [string, string, string];
        const settings = context.config.releases.find((r) => r.stack === stack && r.release === release)?.rollout;
        if (!settings) throw new UsageError(`no rollout is configured for ${stack}/${release}: its hosts are not known to this configuration`);
        const logger = createLogger({ level: 'error', toStderr: true });
        const wiring = createRollout(context.config, logger, silentChat, process.env);
        try {
          const instances = await wiring.effects.instances.find({ stack, release, deployment });
          // Resolved as a release resolves them: configured and discovered load balancers.
          const request = { target: { stack, release, deployment } } as unknown as ReleaseRequest;
          const resolved = instances.length > 0 ? await wiring.runner.resolve(request, deployment, settings) : { hosts: [], loadBalancers: [] };
          const facts = await observeHosts(
            { loadBalancers: wiring.effects.loadBalancers, connector: wiring.effects.connector, probe: wiring.effects.probe ?? probeHttp },
            { target, hosts: resolved.hosts, loadBalancers: resolved.loadBalancers, settings, connectTimeoutMs: (context.config.ssh?.connectTimeoutSeconds ?? 10) * 1000 + 5_000 },
          );
          const view = hostsView(target, summaries.find((s) => s.target === target)?.current ?? null, facts, new Date());
          context.write(context.json ? [JSON.stringify(view, null, 2)] : hostsText(view, context.colour));
        } finally {
          wiring.close();
        }
      });
    });
}
