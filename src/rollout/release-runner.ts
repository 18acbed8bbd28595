import type { AlarmActions } from '../alarms/alarm-actions.js';
import type { AutoScaling, AutoScalingGroupFacts } from '../autoscaling/process-suspension.js';
import * as say from '../chat/release-messages.js';
import type { Chat } from '../chat/chat.js';
import type { RolloutSettings } from '../config/worker-config.js';
import type { ContainerSpec, HostConnector, HostSession, RegistryAuth } from '../host/host-session.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadBalancerRef, LoadBalancers } from '../loadbalancer/load-balancers.js';
import type { Logger } from '../log/logger.js';
import type { AcceptedRelease } from '../request/acceptance.js';
import type { InstanceFinder, TargetInstance } from '../target/target-instances.js';
import { containerSpec, previousContainerName } from './container-spec.js';
import { pruneOldContainers, restoreHost, swapHost, type HostContext, type HostTimings } from './host-procedures.js';
import { planRelease, type HostStep, type ReleasePlan } from './plan.js';
import type { Rollout, RolloutContext, RolloutOutcome } from './rollout.js';
import { createStepRunner, StepFailure, type StepJournal, type StepRunner } from './step-runner.js';

// The executor: resolves the target, plans, and carries the plan out through narrow interfaces to
// AWS, the hosts and chat. Whatever happens after Auto Scaling and alarms are touched, they are put
// back exactly as they were (and checked) before the release returns.

export interface RolloutEffects {
  readonly instances: InstanceFinder;
  readonly loadBalancers: LoadBalancers;
  readonly autoScaling: AutoScaling;
  readonly alarms: AlarmActions;
  readonly connector: HostConnector;
  readonly chat: Chat;
  /** Registry credentials for an image, from the release's configuration and secrets. */
  readonly registryAuth: (release: AcceptedRelease) => RegistryAuth | undefined;
  readonly journal?: StepJournal;
  /** Poll interval of the waits; tests shorten it. */
  readonly pollMs?: number;
}

export interface HostReport extends HostTimings {
  readonly instanceId: string;
  readonly address: string;
}

export interface ResolvedTarget {
  readonly target: string;
  readonly hosts: TargetInstance[];
  readonly loadBalancers: LoadBalancerRef[];
  readonly groups: AutoScalingGroupFacts[];
  readonly alarms: Array<{ name: string; actionsEnabled: boolean }>;
}

/** Everything the host phase of a release works from, settled before any host leaves service. */
interface ReleaseInHand {
  readonly release: AcceptedRelease;
  readonly settings: RolloutSettings;
  readonly resolved: ResolvedTarget;
  readonly plan: ReleasePlan;
  readonly sessions: ReadonlyMap<string, HostSession>;
  readonly spec: ContainerSpec;
  readonly run: StepRunner;
  readonly log: Logger;
  readonly stopRequested: AbortSignal;
  readonly started: number;
}

class Refusal extends Error {
  override name = 'Refusal';
}

const hostLabel = (host: TargetInstance) => host.name ?? host.address;

/** Runs `work` over items with at most `limit` at once; rejects with the first failure after all settle. */
async function bounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      try {
        results[index] = { status: 'fulfilled', value: await work(items[index]!) };
      } catch (reason) {
        results[index] = { status: 'rejected', reason };
      }
    }
  });
  await Promise.all(lanes);
  return results;
}

export class ReleaseRunner implements Rollout {
  constructor(private readonly effects: RolloutEffects) {}

  /** Step 3: the target's hosts, load balancers, groups and alarms, from configuration and discovery. */
  async resolve(release: AcceptedRelease, settings: RolloutSettings): Promise<ResolvedTarget> {
    const { stack, release: name } = release.request.target;
    const target = describe(release);
    const hosts = await this.effects.instances.find({ stack, release: name, deployment: release.deployment });
    if (hosts.length === 0) throw new Refusal(`no running instance is tagged stack=${stack}, release=${name}, deployment=${release.deployment}`);
    const forDeployment = (names: readonly string[]) => names.map((n) => n.replaceAll('{deployment}', release.deployment));
    const groupNames = new Set(forDeployment(settings.autoScaling.groups));
    if (settings.autoScaling.discover) for (const group of await this.effects.autoScaling.groupsOf(hosts.map((h) => h.instanceId))) groupNames.add(group);
    const groups = await Promise.all([...groupNames].sort().map((group) => this.effects.autoScaling.describe(group)));
    const classic = new Set(forDeployment(settings.loadBalancers.classic));
    const targetGroups = new Set(await Promise.all(forDeployment(settings.loadBalancers.targetGroups).map((tg) => this.effects.loadBalancers.targetGroupArn(tg))));
    if (settings.autoScaling.discover) {
      for (const group of groups) {
        group.loadBalancerNames.forEach((lb) => classic.add(lb));
        group.targetGroupArns.forEach((tg) => targetGroups.add(tg));
      }
    }
    const loadBalancers: LoadBalancerRef[] = [
      ...[...classic].map((id) => ({ kind: 'classic' as const, id })),
      ...[...targetGroups].map((id) => ({ kind: 'target-group' as const, id })),
    ];
    const alarms = forDeployment(settings.alarms);
    const alarmStates = alarms.length > 0 ? await this.effects.alarms.actionsEnabled(alarms) : new Map<string, boolean>();
    return { target, hosts, loadBalancers, groups, alarms: [...alarmStates].map(([alarm, actionsEnabled]) => ({ name: alarm, actionsEnabled })) };
  }

  plan(resolved: ResolvedTarget, settings: RolloutSettings): ReleasePlan {
    const planned = planRelease(
      { hosts: resolved.hosts, loadBalancers: resolved.loadBalancers, autoScalingGroups: resolved.groups, alarms: resolved.alarms },
      { ...settings.policy, suspendProcesses: settings.autoScaling.suspendProcesses, smoke: settings.smoke !== undefined },
    );
    if (!planned.ok) throw new Refusal(planned.reason);
    return planned.plan;
  }

  /** Step 4: every host reachable over SSH with its engine answering; with `pull`, the image pulled everywhere. */
  async preflight(
    hosts: readonly TargetInstance[],
    options: { image: string; auth: RegistryAuth | undefined; pull: boolean; concurrency: number; run: StepRunner; startCheck?: { spec: ContainerSpec; seconds: number } },
  ): Promise<Map<string, HostSession>> {
    const sessions = new Map<string, HostSession>();
    const results = await bounded(hosts, options.concurrency, async (host) => {
      const session = await options.run('connect', hostLabel(host), () => this.effects.connector.connect(host.address));
      sessions.set(host.instanceId, session);
      await options.run('engine', hostLabel(host), () => session.ping());
      // Pulled everywhere before any host leaves service: an unpullable image stops the release here.
      if (options.pull) await options.run('pull', hostLabel(host), () => session.pull(options.image, options.auth));
    });
    const first = hosts[0]!;
    if (options.startCheck && options.startCheck.seconds > 0 && results[0]?.status === 'fulfilled') {
      const check = options.startCheck;
      try {
        await options.run('start-check', hostLabel(first), () => startCheck(sessions.get(first.instanceId)!, check.spec, check.seconds));
      } catch (error) {
        results[0] = { status: 'rejected', reason: error };
      }
    }
    const failures = results.map((r, i) => [r, hosts[i]!] as const).filter(([r]) => r.status === 'rejected');
    if (failures.length > 0) {
      await Promise.all([...sessions.values()].map((s) => s.close().catch(() => undefined)));
      const reasons = failures.map(([r, host]) => {
        const error = (r as PromiseRejectedResult).reason as Error;
        return error instanceof StepFailure ? error.message : `${hostLabel(host)}: ${error.message}`;
      });
      throw new Refusal(`preflight failed, nothing was changed: ${reasons.join('; ')}`);
    }
    return sessions;
  }

  async run(release: AcceptedRelease, context: RolloutContext): Promise<RolloutOutcome> {
    const { chat } = this.effects;
    const settings = release.releaseConfig.rollout;
    const log = context.logger;
    const image = release.request.image;
    const run = createStepRunner(log, this.effects.journal);
    if (!settings) return { status: 'refused', reason: `no rollout is configured for ${release.request.target.stack}/${release.request.target.release}` };

    let resolved: ResolvedTarget;
    let plan: ReleasePlan;
    let sessions: Map<string, HostSession>;
    let spec: ContainerSpec;
    try {
      resolved = await run('resolve', undefined, () => this.resolve(release, settings));
      plan = this.plan(resolved, settings);
      log.info({ hosts: resolved.hosts.length, batches: plan.batches.length, loadBalancers: plan.loadBalancers.map((lb) => lb.id), suspend: plan.suspend, muteAlarms: plan.muteAlarms }, 'release planned');
      spec = containerSpec(settings, { image, target: resolved.target, releaseId: release.request.releaseId, requestedBy: release.request.requestedBy });
      sessions = await this.preflight(resolved.hosts, {
        image,
        auth: this.effects.registryAuth(release),
        pull: true,
        concurrency: settings.policy.pullConcurrency,
        run,
        startCheck: { spec: startCheckSpec(spec, release.request.releaseId), seconds: settings.policy.startCheckSeconds },
      });
    } catch (error) {
      const reason = error instanceof StepFailure && error.cause instanceof Refusal ? error.cause.message : (error as Error).message;
      chat.post(say.releaseRefused({ target: describe(release), image, releaseId: release.request.releaseId, reason }));
      return { status: 'refused', reason };
    }

    const started = Date.now();
    chat.post(say.releaseStarted({ target: resolved.target, image, requestedBy: release.request.requestedBy, hosts: resolved.hosts.map(hostLabel), releaseId: release.request.releaseId, source: release.request.source }));
    const suspended: Record<string, string[]> = {};
    const muted: string[] = [];
    let outcome: RolloutOutcome;
    try {
      // Step 6. Recorded before each call, so a call that fails after AWS applied it is undone too:
      // these processes were not suspended before, so resuming them is always right.
      for (const [group, processes] of Object.entries(plan.suspend)) {
        suspended[group] = [...processes];
        await run('suspend-auto-scaling', undefined, () => this.effects.autoScaling.suspend(group, processes));
      }
      if (plan.muteAlarms.length > 0) {
        muted.push(...plan.muteAlarms);
        await run('mute-alarms', undefined, () => this.effects.alarms.disable(plan.muteAlarms));
      }
      outcome = await this.rollHosts({ release, settings, resolved, plan, sessions, spec, run, log, stopRequested: context.stopRequested, started });
    } catch (error) {
      log.error({ err: error }, 'release failed before any host was touched');
      outcome = { status: 'failed', reason: (error as Error).message };
      chat.post(say.releaseFailed({ target: resolved.target, image, step: 'prepare', reason: (error as Error).message, rolledBack: [] }));
    } finally {
      await this.restoreScaling(suspended, muted, run, log);
      await Promise.all([...sessions.values()].map((s) => s.close().catch(() => undefined)));
    }
    return outcome;
  }

  private async rollHosts(inHand: ReleaseInHand): Promise<RolloutOutcome> {
    const { release, settings, resolved, plan, sessions, spec, run, log, started } = inHand;
    const { chat } = this.effects;
    const image = release.request.image;
    const timings = await Promise.all(plan.loadBalancers.map((lb) => this.effects.loadBalancers.timings(lb)));
    const drainTimeoutMs = (settings.loadBalancers.drainTimeoutSeconds ?? Math.max(0, ...timings.map((t) => t.drainingSeconds))) * 1000 + 5_000;
    const inServiceTimeoutMs = (settings.loadBalancers.inServiceTimeoutSeconds ?? Math.max(0, ...timings.map((t) => t.healthCheckSeconds)) + 30) * 1000;
    const contextFor = (host: TargetInstance): HostContext => ({
      host,
      session: sessions.get(host.instanceId)!,
      loadBalancers: plan.loadBalancers,
      lb: this.effects.loadBalancers,
      settings,
      spec,
      previousName: previousContainerName(spec.name, release.request.releaseId),
      drainTimeoutMs,
      inServiceTimeoutMs,
      run,
      ...(this.effects.pollMs !== undefined ? { pollMs: this.effects.pollMs } : {}),
    });
    const warn = (message: string) => log.warn(message);
    const done: TargetInstance[] = [];
    const reports: HostReport[] = [];
    const total = resolved.hosts.length;

    for (const batch of plan.batches) {
      if (inHand.stopRequested.aborted) {
        // A safe point: every host is on one healthy container and in service.
        return { status: 'stopped', reason: `stopped after ${done.length} of ${total} host(s) on request` };
      }
      const reached = new Map(batch.map((host) => [host.instanceId, new Set<HostStep>()]));
      const results = await Promise.allSettled(
        batch.map(async (host) => {
          const ctx = contextFor(host);
          const live = await ctx.session.inspect(spec.name);
          // Already on this release (a redelivery after a stop): nothing to do on this host.
          if (live?.running && live.labels['harbormaster.release-id'] === release.request.releaseId) return undefined;
          return swapHost(ctx, plan.hostSteps, reached.get(host.instanceId)!, warn);
        }),
      );
      const failed: Array<{ host: TargetInstance; error: Error }> = [];
      results.forEach((result, index) => {
        const host = batch[index]!;
        if (result.status === 'rejected') {
          failed.push({ host, error: result.reason as Error });
          return;
        }
        done.push(host);
        if (result.value) {
          reports.push({ instanceId: host.instanceId, address: host.address, ...result.value });
          log.info({ host: hostLabel(host), ...result.value }, 'host released');
          chat.post(say.hostProgress({ target: resolved.target, host: hostLabel(host), index: done.length, total, durationMs: result.value.outOfServiceMs, outOfServiceMs: result.value.outOfServiceMs }));
        }
      });
      if (failed.length > 0) {
        const rolledBack: string[] = [];
        for (const { host } of failed) {
          await this.safely(log, `putting ${hostLabel(host)} back on its previous container`, () => restoreHost(contextFor(host), reached.get(host.instanceId)!, warn));
          rolledBack.push(hostLabel(host));
        }
        if (plan.onFailure === 'all') {
          for (const host of [...done].reverse()) {
            const all = new Set<HostStep>(plan.hostSteps);
            await this.safely(log, `rolling ${hostLabel(host)} back`, () => restoreHost(contextFor(host), all, warn));
            rolledBack.push(hostLabel(host));
          }
        }
        const first = failed[0]!;
        const step = first.error instanceof StepFailure ? first.error.step : 'unknown';
        const reason = first.error instanceof StepFailure ? first.error.reason : first.error.message;
        chat.post(say.releaseFailed({ target: resolved.target, image, host: hostLabel(first.host), step, reason, rolledBack }));
        return { status: 'failed', reason: `${hostLabel(first.host)}: ${step}: ${reason}` };
      }
    }

    for (const host of resolved.hosts) {
      await this.safely(log, `removing old containers on ${hostLabel(host)}`, async () => {
        const removed = await pruneOldContainers(contextFor(host), resolved.target, settings.policy.keepOldContainers);
        if (removed > 0) log.info({ host: hostLabel(host), removed }, 'old containers removed');
      });
    }
    const durationMs = Date.now() - started;
    log.info({ durationMs, hosts: reports }, 'all hosts released');
    chat.post(say.releaseSucceeded({ target: resolved.target, image, hosts: resolved.hosts.map(hostLabel), durationMs }));
    return { status: 'succeeded', hosts: total };
  }

  /** Step 10: resume exactly what was suspended, enable exactly what was muted, then check it. */
  private async restoreScaling(suspended: Record<string, string[]>, muted: string[], run: StepRunner, log: Logger): Promise<void> {
    for (const [group, processes] of Object.entries(suspended)) {
      await this.safely(log, `resuming ${group}`, () => run('resume-auto-scaling', undefined, () => this.effects.autoScaling.resume(group, processes)));
      await this.safely(log, `checking ${group}`, async () => {
        const still = (await this.effects.autoScaling.describe(group)).suspended.filter((p) => processes.includes(p));
        if (still.length > 0) throw new Error(`${group} still has ${still.join(', ')} suspended after resuming`);
      });
    }
    if (muted.length > 0) {
      await this.safely(log, 'enabling alarm actions', () => run('unmute-alarms', undefined, () => this.effects.alarms.enable(muted)));
      await this.safely(log, 'checking alarm actions', async () => {
        const states = await this.effects.alarms.actionsEnabled(muted);
        const off = [...states].filter(([, enabled]) => !enabled).map(([name]) => name);
        if (off.length > 0) throw new Error(`alarm actions still disabled after enabling: ${off.join(', ')}`);
      });
    }
  }

  /** Runs a restoring action; its failure is logged and told to chat loudly but never stops the other restorations. */
  private async safely(log: Logger, what: string, action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      log.error({ err: error }, `${what} failed: the fleet needs attention`);
      this.effects.chat.post(say.needsAttention({ what, reason: (error as Error).message }));
    }
  }
}

/**
 * The new image started once beside the live container (no ports, no restart, its own name) and
 * watched for a few seconds: an image that exits at start is refused before any host leaves service.
 */
function startCheckSpec(spec: ContainerSpec, releaseId: string): ContainerSpec {
  return { ...spec, name: `${spec.name}-start-check-${releaseId.slice(0, 8)}`, ports: [], restartPolicy: 'no', labels: { ...spec.labels, 'harbormaster.start-check': 'true' } };
}

async function startCheck(session: HostSession, spec: ContainerSpec, seconds: number): Promise<void> {
  await session.remove(spec.name).catch(() => undefined);
  const id = await session.run(spec);
  try {
    await sleep(seconds * 1000);
    const info = await session.inspect(id);
    if (!info?.running && info?.exitCode !== 0) {
      throw new Error(`the image exits at start${info?.exitCode !== undefined ? ` with code ${info.exitCode}` : ''}`);
    }
  } finally {
    await session.remove(id).catch(() => undefined);
  }
}

function describe(release: AcceptedRelease): string {
  const { stack, release: name } = release.request.target;
  return `${stack}/${name}/${release.deployment}`;
}
