import type { Command } from 'commander';
import { silentChat } from '../../chat/chat.js';
import { probeHttp } from '../../health/http-probe.js';
import { createLogger } from '../../log/logger.js';
import type { ReleaseRequest } from '../../request/release-request.js';
import { createRollout } from '../../rollout/create-rollout.js';
import type { WorkerConfig } from '../../config/worker-config.js';
import { UsageError } from '../usage-error.js';
import { hostsText, hostsView } from './hosts-view.js';
import { observeHosts } from './observe-hosts.js';
import { withOpsContext, withOpsOptions, type OpsOptions } from './ops-command.js';
import { checkTargets, knownTargets, servedTargets } from './targets.js';

// `harbormaster hosts TARGET`: the live view, read now from AWS (instances by tags, load balancer
// health) and the bastion's HTTP check, beside the target's current release from the release state;
// with --ssh also each host's containers, over SSH with the worker's key. Without --ssh it reads no
// secret of the worker's (neither its SSH key nor a registry password), so the ops read policy is enough.

/** The configuration without what only the worker may read: no SSH, no registry login. */
function withoutWorkerSecrets(config: WorkerConfig): WorkerConfig {
  return { ...config, ssh: undefined, releases: config.releases.map((r) => (r.rollout ? { ...r, rollout: { ...r.rollout, registry: undefined } } : r)) };
}

export function registerHosts(program: Command): void {
  withOpsOptions(program.command('hosts'))
    .description('Each instance of a target now: load balancer health, live container, image and health, kept copies, and whether it runs the current release.')
    .argument('<target>', 'stack/release/deployment')
    .option('--ssh', "also read each host's containers over SSH (needs the worker's SSH key: run it as the worker's user)")
    .action(async (target: string, options: OpsOptions & { ssh?: boolean }) => {
      await withOpsContext(options, async (context) => {
        const summaries = await context.state.read('the targets', (history) => history.targetSummaries());
        const served = servedTargets(context.config);
        if (!served.serves(target)) checkTargets([target], knownTargets(served, summaries.map((s) => s.target)));
        const [stack, release, deployment] = target.split('/') as [string, string, string];
        const settings = context.config.releases.find((r) => r.stack === stack && r.release === release)?.rollout;
        if (!settings) throw new UsageError(`no rollout is configured for ${stack}/${release}: its hosts are not known to this configuration`);
        const logger = createLogger({ level: 'error', toStderr: true });
        const ssh = options.ssh === true;
        const wiring = createRollout(ssh ? context.config : withoutWorkerSecrets(context.config), logger, silentChat, process.env);
        try {
          const instances = await wiring.effects.instances.find({ stack, release, deployment });
          // Resolved as a release resolves them: configured and discovered load balancers.
          const request = { target: { stack, release, deployment } } as unknown as ReleaseRequest;
          const resolved = instances.length > 0 ? await wiring.runner.resolve(request, deployment, settings) : { hosts: [], loadBalancers: [] };
          const facts = await observeHosts(
            { loadBalancers: wiring.effects.loadBalancers, connector: wiring.effects.connector, probe: wiring.effects.probe ?? probeHttp },
            { target, hosts: resolved.hosts, loadBalancers: resolved.loadBalancers, settings, connectTimeoutMs: (context.config.ssh?.connectTimeoutSeconds ?? 10) * 1000 + 5_000, containers: ssh },
          );
          const view = hostsView(target, summaries.find((s) => s.target === target)?.current ?? null, facts, new Date());
          context.write(context.json ? [JSON.stringify(view, null, 2)] : hostsText(view, context.colour));
        } finally {
          wiring.close();
        }
      });
    });
}
