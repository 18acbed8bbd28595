import { setTimeout as sleep } from 'node:timers/promises';
import type { AlarmActions } from '../alarms/alarm-actions.js';
import type { AlarmMuteRules } from '../alarms/alarm-mute-rules.js';
import type { AutoScaling, AutoScalingGroupFacts } from '../autoscaling/process-suspension.js';
import * as say from '../chat/release-messages.js';
import type { Chat } from '../chat/chat.js';
import { probeHttp, type HttpCheck, type ProbeResult } from '../health/http-probe.js';
import { isTransient } from '../aws/transient.js';
import { HostError } from '../host/host-errors.js';
import { ReconnectingHostSession } from '../host/reconnecting-session.js';
import type { RolloutSettings } from '../config/worker-config.js';
import type { ContainerSpec, HostConnector, HostSession, RegistryAuth } from '../host/host-session.js';
import type { LoadBalancerRef, LoadBalancers, Membership } from '../loadbalancer/load-balancers.js';
import type { Logger } from '../log/logger.js';
import type { ReleaseRequest } from '../request/release-request.js';
import { isFinal, loadBalancerKey, whereItStands, type HostRecord, type RecordedPlan, type ReleaseRecord } from '../state/release-record.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import { LeaseLostError } from '../state/release-store.js';
import type { InstanceFinder, TargetInstance } from '../target/target-instances.js';
import { containerSpec } from './container-spec.js';
import { START_CHECK_LABEL, type ReleaseTerms } from './host-decision.js';
import { isPassing, isPassingAtPreflight, waitOutPassing } from './passing-failures.js';
import { reconcileHost, type HostReconcilerContext, type HostResult, type HostTimings } from './host-reconciler.js';
import { minHealthyFor, planRelease, type ReleasePlan } from './plan.js';
import { outcomeOf, type Rollout, type RolloutContext, type RolloutOutcome } from './rollout.js';
import { limitedEffects } from './limited-effects.js';
import { restoreAndReport } from './restore-report.js';
import { keepMuted, suspendAndMute, type ScalingEffects } from './scaling-and-alarms.js';
import { createStepLog, StepFailure, type StepJournal, type StepLog, type StepRunner } from './step-runner.js';

// The executor of a release, from its record. A new release is resolved, planned and preflighted;
// what every host, group and alarm was before is recorded; then the record drives the rest: Auto
// Scaling suspended and alarms muted (each recorded before its call), the hosts carried forward batch
// by batch by the host reconciler, back when one fails, and Auto Scaling and alarms restored exactly,
// confirmed by reading AWS back. A release found unfinished (after a crash, on a redelivery) runs
// through the same code from wherever its record stands: there is no separate recovery path.

export interface RolloutEffects extends ScalingEffects {
  readonly instances: InstanceFinder;
  readonly loadBalancers: LoadBalancers;
  readonly connector: HostConnector;
  readonly chat: Chat;
  /** Registry credentials for a request's image, from the release's configuration and secrets. */
  readonly registryAuth: (request: ReleaseRequest) => RegistryAuth | undefined;
  readonly journal?: StepJournal;
  /** Poll interval of the load balancer waits; tests shorten it. */
  readonly pollMs?: number;
  /** Going back, how long a failing effect on a host is tried again before the host is left for a person. */
  readonly rollbackRetryMs?: number;
  /** First backoff between attempts to reach a host again when a release is taken up (grows to 5x). Default 1 s; tests shorten it. */
  readonly reconnectBackoffMs?: number;
  /** Backoff between attempts to restore Auto Scaling and alarms. */
  readonly restoreBackoff?: { readonly minMs: number; readonly maxMs: number };
  /** Overrides the configured mute window (tests). */
  readonly muteWindowMs?: number;
  /** Overrides policy.releaseTimeoutMinutes (tests). */
  readonly releaseTimeoutMs?: number;
  /** This worker's name, recorded as the release's owner. */
  readonly workerId?: string;
  /** The bastion's HTTP check of a host; tests with simulated hosts answer it themselves. */
  readonly probe?: (address: string, check: HttpCheck) => Promise<ProbeResult>;
}

export interface ResolvedTarget {
  readonly target: string;
  readonly hosts: TargetInstance[];
  readonly loadBalancers: LoadBalancerRef[];
  readonly groups: AutoScalingGroupFacts[];
  readonly alarms: Array<{ name: string; actionsEnabled: boolean }>;
}

class Refusal extends Error {
  override name = 'Refusal';
}

const REGISTERED: ReadonlySet<Membership> = new Set(['in-service', 'pending', 'unhealthy']);
const hostLabel = (host: { name?: string | undefined; address: string }) => host.name ?? host.address;

/** Runs `work` over items with at most `limit` at once; every item settles. */
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

function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += Math.max(1, size)) chunks.push(items.slice(i, i + Math.max(1, size)));
  return chunks;
}

export class ReleaseRunner implements Rollout {
  constructor(private readonly effects: RolloutEffects) {}

  /** The target's hosts, load balancers, groups and alarms, from configuration and discovery. */
  async resolve(request: ReleaseRequest, deployment: string, settings: RolloutSettings): Promise<ResolvedTarget> {
    const { stack, release: name } = request.target;
    const target = `${stack}/${name}/${deployment}`;
    const hosts = await this.effects.instances.find({ stack, release: name, deployment });
    if (hosts.length === 0) throw new Refusal(`no running instance is tagged stack=${stack}, release=${name}, deployment=${deployment}`);
    const forDeployment = (names: readonly string[]) => names.map((n) => n.replaceAll('{deployment}', deployment));
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
    const loadBalancers: LoadBalancerRef[] = [...[...classic].map((id) => ({ kind: 'classic' as const, id })), ...[...targetGroups].map((id) => ({ kind: 'target-group' as const, id }))];
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

  /** Every host reachable over SSH with its engine answering; with `pull`, the image pulled everywhere. */
  async preflight(
    hosts: ReadonlyArray<{ instanceId: string; address: string; name?: string | undefined }>,
    options: {
      image: string;
      auth: RegistryAuth | undefined;
      pull: boolean;
      concurrency: number;
      run: StepRunner;
      startCheck?: { spec: ContainerSpec; seconds: number };
      /** The lease: every session is bound to it. */
      signal?: AbortSignal | undefined;
      /** The release's engine socket, over the connector's own. */
      engineSocket?: string | undefined;
      /** A host that does not answer for now is tried again this long (policy.hostRetrySeconds); default not at all. */
      retry?: { windowMs: number; stop: AbortSignal; onWaiting: (host: string, step: string, reason: string, windowMs: number) => void };
    },
  ): Promise<Map<string, HostSession>> {
    const sessions = new Map<string, HostSession>();
    const connectWith = options.engineSocket ? { engineSocket: options.engineSocket } : undefined;
    const retry = options.retry;
    const results = await bounded(hosts, options.concurrency, (host) =>
      waitOutPassing(
        async () => {
          let session = sessions.get(host.instanceId);
          if (!session) {
            session = await options.run('connect', hostLabel(host), () => this.effects.connector.connect(host.address, options.signal, connectWith));
            if (options.signal) session.abortOn?.(options.signal);
            sessions.set(host.instanceId, session);
          }
          const open = session;
          await options.run('engine', hostLabel(host), () => open.ping());
          // Pulled everywhere before any host leaves service: an unpullable image stops the release here.
          if (options.pull) await options.run('pull', hostLabel(host), () => open.pull(options.image, options.auth));
        },
        {
          windowMs: retry?.windowMs ?? 0,
          passing: isPassingAtPreflight,
          backoffMs: this.effects.reconnectBackoffMs ?? 1_000,
          ...(retry ? { stop: retry.stop } : {}),
          onWaiting: (error, windowMs) => retry?.onWaiting(hostLabel(host), error instanceof StepFailure ? error.step : 'connect', error instanceof StepFailure ? error.reason : (error as Error).message, windowMs),
        },
      ),
    );
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

  run(release: RecordedRelease, context: RolloutContext): Promise<RolloutOutcome> {
    // Under a lease, every AWS call of the release takes its limit: the same runner over bound effects.
    const runner = context.leaseCalls ? new ReleaseRunner(limitedEffects(this.effects, context.leaseCalls)) : this;
    return runner.carryOut(release, context);
  }

  private async carryOut(release: RecordedRelease, context: RolloutContext): Promise<RolloutOutcome> {
    const log = context.logger;
    // A journal that waits (the test hold hook) yields to these, the deadline counted as the hosts' is.
    const policy = (release.record.plan?.settings ?? context.releaseConfig?.rollout)?.policy;
    const timeoutMs = this.effects.releaseTimeoutMs ?? (policy ? policy.releaseTimeoutMinutes * 60_000 : undefined);
    const steps = createStepLog(log, this.effects.journal, { stopRequested: context.stopRequested, leaseLost: context.leaseLost, deadline: timeoutMs === undefined ? undefined : Date.now() + timeoutMs });
    if (isFinal(release.record.status)) return outcomeOf(release.record);
    const { request } = release.record;
    // A release that a worker had already taken up is resumed; one that only waited for its target starts now.
    if (release.record.status !== 'accepted' || release.record.attempts > 0) {
      const found = whereItStands(release.record);
      log.warn({ found, occasion: context.occasion, attempts: release.record.attempts, damaged: release.record.damaged }, 'resuming an unfinished release');
      this.effects.chat.post(say.releaseResumed({ target: release.record.target, image: request.image, releaseId: release.releaseId, found, occasion: context.occasion === 'new' ? 'redelivered' : context.occasion }));
    }
    await release.update((draft) => {
      draft.attempts += 1;
      draft.owner = { ...draft.owner, worker: this.effects.workerId ?? draft.owner?.worker ?? 'worker' };
      if (draft.status === 'interrupted') draft.status = 'running';
    });

    let sessions = new Map<string, HostSession>();
    try {
      if (!release.record.plan) {
        const prepared = await this.prepare(release, context, steps);
        if ('refused' in prepared) return prepared.refused;
        sessions = prepared.sessions;
      } else {
        sessions = await this.reconnect(release, steps, log, context);
      }
      return await this.carry(release, sessions, context, steps);
    } finally {
      await Promise.all([...sessions.values()].map((s) => s.close().catch(() => undefined)));
    }
  }

  /** A new release: resolved, planned, preflighted, and everything it will change recorded as it is now. */
  private async prepare(release: RecordedRelease, context: RolloutContext, steps: StepLog): Promise<{ sessions: Map<string, HostSession> } | { refused: RolloutOutcome }> {
    const { request, deployment, releaseId } = release.record;
    const target = release.record.target;
    const settings = context.releaseConfig?.rollout;
    let sessions: Map<string, HostSession> | undefined;
    try {
      if (!context.releaseConfig) throw new Refusal(`this worker no longer serves ${request.target.stack}/${request.target.release}`);
      if (!settings) throw new Refusal(`no rollout is configured for ${request.target.stack}/${request.target.release}`);
      const resolved = await steps.run('resolve', undefined, () => this.resolve(request, deployment, settings));
      const plan = this.plan(resolved, settings);
      // Before anything is pulled or started: can a host be taken out at all? Counted from the load balancers.
      await this.refuseBelowMinHealthy(resolved.hosts, plan);
      context.logger.info({ hosts: resolved.hosts.length, batches: plan.batches.length, loadBalancers: plan.loadBalancers.map((lb) => lb.id), suspend: plan.suspend, muteAlarms: resolved.alarms.map((a) => a.name) }, 'release planned');
      const spec = containerSpec(settings, { image: request.image, target: resolved.target, releaseId, requestedBy: request.requestedBy });
      sessions = await this.preflight(resolved.hosts, {
        image: request.image,
        auth: this.effects.registryAuth(request),
        pull: true,
        concurrency: settings.policy.pullConcurrency,
        run: steps.run,
        startCheck: { spec: startCheckSpec(spec, releaseId), seconds: settings.policy.startCheckSeconds },
        engineSocket: settings.engineSocket,
        retry: {
          windowMs: settings.policy.hostRetrySeconds * 1000,
          stop: context.stopRequested,
          onWaiting: (host, step, reason, windowMs) => this.effects.chat.post(say.hostTrouble({ target, host, step, reason, retryingForMs: windowMs, goingBack: false })),
        },
        signal: context.leaseLost,
      });
      const open = sessions;
      const hosts = await steps.run('record-before', undefined, () => Promise.all(resolved.hosts.map((host) => this.observeBefore(host, open.get(host.instanceId)!, spec, plan.loadBalancers, resolved.target))));

      const timings = await Promise.all(plan.loadBalancers.map((lb) => this.effects.loadBalancers.timings(lb)));
      const recordedPlan: RecordedPlan = {
        settings,
        spec,
        loadBalancers: [...plan.loadBalancers],
        batches: plan.batches.map((batch) => batch.map((host) => host.instanceId)),
        batchSize: plan.batchSize,
        minHealthy: plan.minHealthy,
        onFailure: plan.onFailure,
        drainTimeoutMs: (settings.loadBalancers.drainTimeoutSeconds ?? Math.max(0, ...timings.map((t) => t.drainingSeconds))) * 1000 + 5_000,
        inServiceTimeoutMs: (settings.loadBalancers.inServiceTimeoutSeconds ?? Math.max(0, ...timings.map((t) => t.healthCheckSeconds)) + 30) * 1000,
      };
      const mode = settings.alarmMuting.mode;
      // Recorded before the first effect: afterwards the fleet no longer says what it was.
      await release.update((draft) => {
        draft.plan = recordedPlan;
        draft.hosts = Object.fromEntries(hosts.map((host) => [host.instanceId, host]));
        draft.scaling = Object.fromEntries(resolved.groups.map((group) => [group.name, { before: [...group.suspended], suspend: [...(plan.suspend[group.name] ?? [])], phase: 'planned' as const }]));
        if (resolved.alarms.length > 0) {
          draft.alarms = { mode, names: resolved.alarms.map((a) => a.name), disable: mode === 'disable-actions' ? [...plan.muteAlarms] : [], phase: 'planned' };
        }
        draft.status = 'running';
        draft.startedAt = new Date().toISOString();
      });
    } catch (error) {
      if (sessions) await Promise.all([...sessions.values()].map((s) => s.close().catch(() => undefined)));
      // AWS out of reach for now (throttling, 5xx, the network) is not a verdict on the request: the
      // release stays accepted, and the next delivery or sweep tries again. Nothing was changed.
      const cause = error instanceof StepFailure ? error.cause : error;
      if (!(cause instanceof Refusal) && !(cause instanceof HostError) && isTransient(cause)) throw error;
      const reason = error instanceof StepFailure && error.cause instanceof Refusal ? error.cause.message : (error as Error).message;
      await release.update((draft) => {
        draft.status = 'refused';
        draft.reason = reason;
        draft.finishedAt = new Date().toISOString();
      });
      this.effects.chat.post(say.releaseRefused({ target, image: request.image, releaseId, reason }));
      return { refused: { status: 'refused', reason } };
    }
    this.effects.chat.post(
      say.releaseStarted({ target, image: request.image, requestedBy: request.requestedBy, hosts: Object.values(release.record.hosts).map(hostLabel), releaseId, source: request.source }),
    );
    return { sessions };
  }

  /** A host as it is before the release touches it: its live container and the load balancers it is in. */
  private async observeBefore(host: TargetInstance, session: HostSession, spec: ContainerSpec, loadBalancers: readonly LoadBalancerRef[], target: string): Promise<HostRecord> {
    const named = await session.inspect(spec.name);
    const live =
      named?.state === 'running'
        ? named
        : (await session.list({ 'harbormaster.target': target })).find((c) => c.state === 'running' && c.labels[START_CHECK_LABEL] !== 'true');
    const registeredIn: string[] = [];
    for (const lb of loadBalancers) if (REGISTERED.has(await this.effects.loadBalancers.membership(lb, host.instanceId))) registeredIn.push(loadBalancerKey(lb));
    return {
      instanceId: host.instanceId,
      address: host.address,
      ...(host.name ? { name: host.name } : {}),
      before: { registeredIn, live: live ? { id: live.id, name: live.name, image: live.image } : null },
      progress: 'pending',
    };
  }

  /**
   * Counted from what the load balancers report, not from the instance count: a host already out of
   * service (unhealthy, in standby, drained by hand) does not serve. Refuses when no host could leave.
   */
  private async refuseBelowMinHealthy(hosts: readonly TargetInstance[], plan: ReleasePlan): Promise<void> {
    if (plan.loadBalancers.length === 0) return;
    const readings = await Promise.all(hosts.map((host) => Promise.all(plan.loadBalancers.map((lb) => this.effects.loadBalancers.membership(lb, host.instanceId)))));
    const registered = readings.filter((r) => r.some((m) => REGISTERED.has(m)));
    const serving = readings.filter((r) => r.some((m) => REGISTERED.has(m)) && r.every((m) => m === 'in-service' || m === 'out')).length;
    if (registered.length > 0 && serving - plan.minHealthy < 1) {
      throw new Refusal(
        `only ${serving} of ${hosts.length} host(s) are in service now: taking one out would leave fewer than policy.minHealthy (${plan.minHealthy}) serving; put the others back in service first, or lower policy.minHealthy`,
      );
    }
  }

  /** In service in every load balancer it was registered in before the release (false if it was in none). */
  private async inService(host: HostRecord, loadBalancers: readonly LoadBalancerRef[]): Promise<boolean> {
    const wanted = loadBalancers.filter((lb) => host.before.registeredIn.includes(loadBalancerKey(lb)));
    if (wanted.length === 0) return false;
    const readings = await Promise.all(wanted.map((lb) => this.effects.loadBalancers.membership(lb, host.instanceId)));
    return readings.every((m) => m === 'in-service');
  }

  /**
   * Sessions for a release taken up again; going forward, the image pulled again where a host still
   * needs it. A host that cannot be reached now (often the same incident that stopped the worker) is
   * not judged on the first try: going forward, one that still needs the image is tried again for
   * policy.hostRetrySeconds before the release turns back; every other host gets a session that
   * connects when first used, so the reconciler's own retry windows apply to it. Hosts that left the
   * target are not looked for.
   */
  private async reconnect(release: RecordedRelease, steps: StepLog, log: Logger, context: RolloutContext): Promise<Map<string, HostSession>> {
    const plan = release.record.plan!;
    const hosts = Object.values(release.record.hosts).filter((host) => host.progress !== 'gone');
    const sessions = new Map<string, HostSession>();
    const forward = release.record.direction === 'forward';
    const retryUntil = Date.now() + plan.settings.policy.hostRetrySeconds * 1000;
    const connectWith = plan.settings.engineSocket ? { engineSocket: plan.settings.engineSocket } : undefined;
    const results = await bounded(hosts, plan.settings.policy.pullConcurrency, async (host) => {
      const needsImage = forward && host.progress !== 'released' && host.progress !== 'kept';
      let lastError: unknown;
      for (let attempt = 1; ; attempt += 1) {
        try {
          const session = sessions.get(host.instanceId) ?? (await steps.run('connect', hostLabel(host), () => this.effects.connector.connect(host.address, context.leaseLost, connectWith)));
          if (context.leaseLost) session.abortOn?.(context.leaseLost);
          sessions.set(host.instanceId, session);
          if (needsImage) await steps.run('pull', hostLabel(host), () => session.pull(release.record.request.image, this.effects.registryAuth(release.record.request)));
          return;
        } catch (error) {
          lastError = error;
          context.leaseLost?.throwIfAborted();
          // Asked to stop: no more waiting here; the release goes to its safe point from what it has.
          if (context.stopRequested.aborted) break;
          const passing = isPassing(error);
          if (attempt >= 3 && (!needsImage || !passing || Date.now() >= retryUntil)) break;
          await this.backOff(attempt, context);
        }
      }
      if (!sessions.has(host.instanceId)) {
        log.warn({ host: hostLabel(host), reason: (lastError as Error).message }, 'host cannot be reached now; it is tried again when the release gets to it');
        const later = new ReconnectingHostSession(host.address, undefined, this.effects.connector, { attempts: 1, ...(connectWith ? { connectWith } : {}) });
        if (context.leaseLost) later.abortOn(context.leaseLost);
        sessions.set(host.instanceId, later);
      }
      if (needsImage && !context.stopRequested.aborted) throw lastError;
    });
    const failures = results.flatMap((result, index) => (result.status === 'rejected' ? [{ host: hosts[index]!, error: result.reason as Error }] : []));
    if (failures.length > 0 && forward) {
      const { host, error } = failures[0]!;
      const reason = error instanceof StepFailure ? error.reason : error.message;
      log.warn({ host: hostLabel(host), reason }, 'the release cannot go on: turning back');
      await release.update((draft) => {
        draft.direction = 'back';
        draft.failure = { host: hostLabel(host), step: error instanceof StepFailure ? error.step : 'connect', reason };
      });
    }
    return sessions;
  }

  /** Between attempts to reach a host: growing with each, cut short when the worker is asked to stop. */
  private async backOff(attempt: number, context: RolloutContext): Promise<void> {
    const backoff = this.effects.reconnectBackoffMs ?? 1_000;
    await sleep(Math.min(5 * backoff, backoff * attempt), undefined, { signal: context.stopRequested }).catch(() => undefined);
  }

  private hostContext(release: RecordedRelease, context: RolloutContext, steps: StepLog): HostReconcilerContext {
    const signal = context.leaseLost;
    const plan = release.record.plan!;
    const terms: ReleaseTerms = {
      releaseId: release.releaseId,
      containerName: plan.spec.name,
      loadBalancers: plan.loadBalancers.map(loadBalancerKey),
      smoke: plan.settings.smoke !== undefined,
      useImageHealthcheck: plan.settings.health.useImageHealthcheck,
      healthTimeoutMs: plan.settings.health.timeoutSeconds * 1000,
      drainTimeoutMs: plan.drainTimeoutMs,
      inServiceTimeoutMs: plan.inServiceTimeoutMs,
    };
    return {
      release,
      plan,
      terms,
      target: release.record.target,
      loadBalancers: this.effects.loadBalancers,
      steps,
      log: context.logger,
      pollMs: this.effects.pollMs ?? 500,
      rollbackRetryMs: this.effects.rollbackRetryMs ?? plan.settings.policy.rollbackRetrySeconds * 1000,
      hostRetryMs: plan.settings.policy.hostRetrySeconds * 1000,
      // Counted from when this worker took the release up: a release resumed after a pause gets its full time.
      deadline: Date.now() + (this.effects.releaseTimeoutMs ?? plan.settings.policy.releaseTimeoutMinutes * 60_000),
      probe: this.effects.probe ?? probeHttp,
      ...(signal ? { signal } : {}),
      onTrouble: (event) => this.effects.chat.post(say.hostTrouble({ target: release.record.target, ...event })),
    };
  }

  /** From wherever the record stands to the end: suspend, hosts forward (or back), restore, report. */
  private async carry(release: RecordedRelease, sessions: Map<string, HostSession>, context: RolloutContext, steps: StepLog): Promise<RolloutOutcome> {
    const log = context.logger;
    const { chat } = this.effects;
    const plan = release.record.plan!;
    const muteWindowMs = this.effects.muteWindowMs ?? plan.settings.alarmMuting.windowMinutes * 60_000;
    const started = Date.now();
    const hostCtx = this.hostContext(release, context, steps);
    const reports: Array<{ host: string } & HostTimings> = [];
    let interrupted = false;
    const rolledBack: string[] = [];
    const attention: string[] = [];
    /** Hosts that joined the target during the release and could not be released, and why. */
    let notTakenIn: { hosts: string[]; reason: string } | undefined;

    const stopRenewing = keepMuted(release, this.effects, muteWindowMs, log);
    try {
      if (release.record.direction === 'forward') {
        try {
          await suspendAndMute(release, this.effects, steps, muteWindowMs);
        } catch (error) {
          // This worker may not act any more: another carries the release on.
          if (context.leaseLost?.aborted || error instanceof LeaseLostError || (error as StepFailure).cause instanceof LeaseLostError) throw error;
          const reason = error instanceof StepFailure ? error.reason : (error as Error).message;
          const step = error instanceof StepFailure ? error.step : 'prepare';
          log.error({ err: error }, 'release failed before any host was touched');
          await release.update((draft) => {
            draft.direction = 'back';
            draft.failure = { step: 'prepare', reason: `${step}: ${reason}` };
          });
        }
      }
      if (release.record.direction === 'forward') {
        const forward = await this.forward(release, sessions, context, hostCtx, reports);
        interrupted = forward === 'interrupted';
        if (typeof forward === 'object') notTakenIn = forward.notTakenIn;
      }
      if (release.record.direction === 'back') await this.back(release, sessions, hostCtx, rolledBack, attention);
    } finally {
      await stopRenewing();
    }

    const restore = await restoreAndReport(release, this.effects, steps, context, this.effects.restoreBackoff);
    // Asked to stop with a restore still pending: the record keeps it, and the next start carries it on.
    if (restore.status === 'stopped') return { status: 'interrupted', reason: `stopped on request with restores pending: ${restore.pending.join('; ')}` };
    attention.push(...restore.left);

    const record = release.record;
    const present = Object.values(record.hosts).filter((h) => h.progress !== 'gone');
    const total = present.length;
    const image = record.request.image;
    if (interrupted) {
      const released = present.filter((h) => h.progress === 'released').length;
      const reason = `stopped on request at a safe point: ${released} of ${total} host(s) released`;
      await release.update((draft) => {
        draft.status = 'interrupted';
        draft.reason = reason;
      });
      chat.post(say.releaseInterrupted({ target: record.target, image, released, total }));
      return { status: 'interrupted', reason };
    }
    const unreleased = present.filter((h) => h.progress !== 'released');
    if (record.direction === 'forward' && (unreleased.length > 0 || notTakenIn)) {
      // Not every host of the target is on the new image (one joined too late, or could not be
      // reached): never a success. The hosts released stay released; the target needs releasing again.
      const left = [...unreleased.map(hostLabel), ...(notTakenIn?.hosts ?? [])];
      const why = notTakenIn?.reason ?? 'they joined the target during the release and could not be taken in';
      const reason = `not released: ${left.join(', ')} (${why})`;
      await release.update((draft) => {
        draft.status = 'failed';
        draft.reason = reason;
        draft.attention = [reason, ...restore.left];
        draft.finishedAt = new Date().toISOString();
      });
      chat.post(say.releaseIncomplete({ target: record.target, image, released: present.filter((h) => h.progress === 'released').map(hostLabel), notReleased: left, reason: why }));
      return { status: 'failed', reason };
    }
    if (record.direction === 'forward' && restore.left.length === 0) {
      await this.prune(release, sessions, log);
      const durationMs = Date.now() - started;
      log.info({ durationMs, hosts: reports }, 'all hosts released');
      await release.update((draft) => {
        draft.status = 'succeeded';
        draft.finishedAt = new Date().toISOString();
        delete draft.reason;
      });
      chat.post(say.releaseSucceeded({ target: record.target, image, hosts: present.map(hostLabel), durationMs }));
      return { status: 'succeeded', hosts: total };
    }
    const failure = record.failure ?? (record.direction === 'forward' ? { step: 'restore', reason: 'every host was released, but Auto Scaling or alarms could not be put back' } : { step: 'unknown', reason: 'the release turned back' });
    const status = attention.length > 0 ? 'failed' : 'rolled-back';
    const reason = `${failure.host ? `${failure.host}: ` : ''}${failure.step}: ${failure.reason}`;
    await release.update((draft) => {
      draft.status = status;
      draft.reason = reason;
      draft.finishedAt = new Date().toISOString();
      if (attention.length > 0) draft.attention = attention;
    });
    chat.post(say.releaseFailed({ target: record.target, image, ...(failure.host ? { host: failure.host } : {}), step: failure.step, reason: failure.reason, rolledBack, attention }));
    return { status, reason };
  }

  /**
   * Batch by batch towards the new image; resolves early when the release turns back or is asked to
   * stop. Before each step of a batch the hosts in service are counted from the load balancers, and a
   * batch is cut down so that never fewer than policy.minHealthy serve. Once every batch is done the
   * target is looked at again: hosts that joined meanwhile are released too, hosts that left are dropped.
   */
  private async forward(
    release: RecordedRelease,
    sessions: Map<string, HostSession>,
    context: RolloutContext,
    hostCtx: HostReconcilerContext,
    reports: Array<{ host: string } & HostTimings>,
  ): Promise<'done' | 'turned-back' | 'interrupted' | { notTakenIn: { hosts: string[]; reason: string } }> {
    const rounds = 3;
    for (let round = 1; ; round += 1) {
      for (const batch of release.record.plan!.batches) {
        const outcome = await this.forwardBatch(release, batch, sessions, context, hostCtx, reports);
        if (outcome !== 'done') return outcome;
      }
      // The fleet may have changed while the release ran (Launch is not suspended by default). A
      // fleet still growing after a few rounds is left to the next release, and said so.
      const joined = await this.takeInNewcomers(release, sessions, context, round < rounds);
      if (joined === 'none') return 'done';
      if (joined !== 'taken-in') return { notTakenIn: joined };
    }
  }

  private async forwardBatch(
    release: RecordedRelease,
    batch: readonly string[],
    sessions: Map<string, HostSession>,
    context: RolloutContext,
    hostCtx: HostReconcilerContext,
    reports: Array<{ host: string } & HostTimings>,
  ): Promise<'done' | 'turned-back' | 'interrupted'> {
    const plan = release.record.plan!;
    const log = context.logger;
    let todo = batch.filter((id) => release.record.hosts[id] && !['released', 'gone'].includes(release.record.hosts[id]!.progress));
    let waitedSince: number | undefined;
    while (todo.length > 0) {
      // A safe point: every host is whole. A batch caught half-way (after a crash) is finished first.
      if (context.stopRequested.aborted && todo.every((id) => release.record.hosts[id]!.progress === 'pending')) return 'interrupted';
      const hosts = Object.values(release.record.hosts).filter((h) => h.progress !== 'gone');
      const serving = new Set((await Promise.all(hosts.map(async (h) => ((await this.inService(h, plan.loadBalancers)) ? h.instanceId : undefined)))).filter((id): id is string => id !== undefined));
      // From the policy and the target as it is now: hosts may have joined or left since the plan.
      const minHealthy = minHealthyFor(plan.settings.policy, hosts.length);
      const room = serving.size - minHealthy;
      const leaving = todo.filter((id) => serving.has(id));
      const now = leaving.length <= room ? todo : [...todo.filter((id) => !serving.has(id)), ...leaving.slice(0, Math.max(0, room))];
      if (now.length === 0) {
        // Every host of the batch serves and none may leave: wait for the others to come back, a while.
        waitedSince ??= Date.now();
        if (Date.now() - waitedSince > plan.inServiceTimeoutMs) {
          const reason = `only ${serving.size} host(s) are in service: taking another out would leave fewer than policy.minHealthy (${minHealthy}) serving`;
          await release.update((draft) => {
            draft.direction = 'back';
            draft.failure = { step: 'min-healthy', reason };
          });
          return 'turned-back';
        }
        log.warn({ serving: serving.size, minHealthy }, 'waiting: a host out now would leave fewer than policy.minHealthy in service');
        await sleep(hostCtx.pollMs * 4);
        continue;
      }
      waitedSince = undefined;
      if (now.length < todo.length) log.info({ now: now.map((id) => hostLabel(release.record.hosts[id]!)), serving: serving.size, minHealthy }, 'batch cut down to keep policy.minHealthy in service');
      const outcome = await this.releaseHosts(release, now, sessions, context, hostCtx, reports);
      if (outcome !== 'done') return outcome;
      todo = todo.filter((id) => !now.includes(id));
    }
    return 'done';
  }

  /** Some hosts forward, side by side; a host that left the target meanwhile is dropped, not failed. */
  private async releaseHosts(release: RecordedRelease, ids: readonly string[], sessions: Map<string, HostSession>, context: RolloutContext, hostCtx: HostReconcilerContext, reports: Array<{ host: string } & HostTimings>): Promise<'done' | 'turned-back'> {
    const total = () => Object.values(release.record.hosts).filter((h) => h.progress !== 'gone').length;
    // Every host's turn settles before this returns, even when one throws (the lease lost): the lease
    // is never handed on while an effect of this worker still runs on a host of the target.
    const settled = await Promise.allSettled(
      ids.map(async (id): Promise<HostResult> => {
        const session = sessions.get(id);
        if (!session) return { status: 'failed', step: 'connect', reason: 'the host cannot be reached' };
        return reconcileHost(hostCtx, id, session, 'new');
      }),
    );
    const thrown = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (thrown) throw thrown.reason;
    const results = settled.map((r) => (r as PromiseFulfilledResult<HostResult>).value);
    const failed: Array<{ id: string; step: string; reason: string }> = [];
    for (const [index, result] of results.entries()) {
      const id = ids[index]!;
      const host = release.record.hosts[id]!;
      if (result.status === 'done') {
        reports.push({ host: hostLabel(host), ...result.timings });
        context.logger.info({ host: hostLabel(host), ...result.timings }, 'host released');
        const released = Object.values(release.record.hosts).filter((h) => h.progress === 'released').length;
        this.effects.chat.post(say.hostProgress({ target: release.record.target, host: hostLabel(host), index: released, total: total(), durationMs: result.timings.outOfServiceMs, outOfServiceMs: result.timings.outOfServiceMs }));
      } else if (await this.left(release, id)) {
        context.logger.warn({ host: hostLabel(host) }, 'host left the target during the release (terminated or untagged): dropped from it');
        await release.update((draft) => void (draft.hosts[id]!.progress = 'gone'));
      } else {
        failed.push({ id, step: result.step, reason: result.reason });
      }
    }
    if (failed.length === 0) return 'done';
    const first = failed[0]!;
    await release.update((draft) => {
      draft.direction = 'back';
      draft.failure = { host: hostLabel(draft.hosts[first.id]!), step: first.step, reason: first.reason };
    });
    return 'turned-back';
  }

  /** The host is no longer a running instance of the target. */
  private async left(release: RecordedRelease, instanceId: string): Promise<boolean> {
    const { request, deployment } = release.record;
    const running = await this.effects.instances.find({ stack: request.target.stack, release: request.target.release, deployment }).catch(() => undefined);
    return running !== undefined && !running.some((h) => h.instanceId === instanceId);
  }

  /**
   * Hosts that joined the target since the release began: recorded and added as a batch ('taken-in'),
   * or, when they cannot be (unreachable, the image not pulled, no rounds left), named with the reason.
   */
  private async takeInNewcomers(release: RecordedRelease, sessions: Map<string, HostSession>, context: RolloutContext, mayTakeIn: boolean): Promise<'none' | 'taken-in' | { hosts: string[]; reason: string }> {
    const { request, deployment } = release.record;
    const plan = release.record.plan!;
    let running: TargetInstance[];
    try {
      // (The finder tries transient failures again itself.)
      running = await this.effects.instances.find({ stack: request.target.stack, release: request.target.release, deployment });
    } catch (error) {
      // Every host the release knows is released: not being able to look again is not a failure.
      context.logger.warn({ err: error }, 'looking at the target again failed; hosts that joined meanwhile (if any) are not released');
      return 'none';
    }
    const newcomers = running.filter((h) => !release.record.hosts[h.instanceId]);
    for (const gone of Object.values(release.record.hosts).filter((h) => h.progress === 'pending' && !running.some((r) => r.instanceId === h.instanceId))) {
      context.logger.warn({ host: hostLabel(gone) }, 'host left the target during the release: dropped from it');
      await release.update((draft) => void (draft.hosts[gone.instanceId]!.progress = 'gone'));
    }
    if (newcomers.length === 0) return 'none';
    const labels = newcomers.map(hostLabel);
    if (!mayTakeIn) {
      context.logger.warn({ hosts: labels }, 'hosts still join the target after several rounds: they are left to the next release');
      return { hosts: labels, reason: 'they joined the target during the release, and it was still growing after several rounds' };
    }
    context.logger.info({ hosts: labels }, 'hosts joined the target during the release: releasing them too');
    // A host Auto Scaling just launched may not answer yet (sshd starting, its key still being
    // published): it is tried again for policy.hostRetrySeconds before the release gives up on it.
    let joined: Map<string, HostSession> | undefined;
    const retryUntil = Date.now() + plan.settings.policy.hostRetrySeconds * 1000;
    for (let attempt = 1; !joined; attempt += 1) {
      try {
        joined = await this.preflight(newcomers, { image: request.image, auth: this.effects.registryAuth(request), pull: true, concurrency: plan.settings.policy.pullConcurrency, run: createStepLog(context.logger, this.effects.journal, { stopRequested: context.stopRequested, leaseLost: context.leaseLost }).run, engineSocket: plan.settings.engineSocket, signal: context.leaseLost });
      } catch (error) {
        context.leaseLost?.throwIfAborted();
        if (attempt < 3 || (Date.now() < retryUntil && !context.stopRequested.aborted)) {
          context.logger.warn({ err: error, attempt }, 'hosts that joined during the release cannot be prepared yet; trying again');
          await this.backOff(attempt, context);
          continue;
        }
        context.logger.warn({ err: error }, 'hosts that joined during the release cannot be prepared: they are left as they are');
        const why = (error as Error).message.replace(/^preflight failed, nothing was changed: /, '');
        return { hosts: labels, reason: `they joined the target during the release and could not be prepared: ${why}` };
      }
    }
    const records = await Promise.all(newcomers.map((host) => this.observeBefore(host, joined.get(host.instanceId)!, plan.spec, plan.loadBalancers, release.record.target)));
    for (const [id, session] of joined) sessions.set(id, session);
    await release.update((draft) => {
      for (const record of records) draft.hosts[record.instanceId] = record;
      draft.plan = { ...draft.plan!, batches: [...draft.plan!.batches, ...chunk(records.map((r) => r.instanceId), draft.plan!.batchSize)] };
    });
    return 'taken-in';
  }

  /**
   * Back after a failure: first the hosts caught half-way (already out of service), side by side; then,
   * with policy `all`, the released hosts one at a time, last first. Hosts never touched stay as they are.
   */
  private async back(release: RecordedRelease, sessions: Map<string, HostSession>, hostCtx: HostReconcilerContext, rolledBack: string[], attention: string[]): Promise<void> {
    const plan = release.record.plan!;
    const order = plan.batches.flat();
    const midway = order.filter((id) => ['in-progress', 'attention'].includes(release.record.hosts[id]?.progress ?? 'pending'));
    // (Hosts that left the target, 'gone', are neither here nor in `released`.)
    const released = order.filter((id) => ['released', 'kept'].includes(release.record.hosts[id]?.progress ?? 'pending')).reverse();
    const goalOf = (id: string): 'new' | 'old' => (midway.includes(id) || plan.onFailure === 'all' ? 'old' : 'new');
    const settle = async (id: string) => {
      const host = release.record.hosts[id]!;
      const session = sessions.get(id);
      const result: HostResult = session ? await reconcileHost(hostCtx, id, session, goalOf(id)) : { status: 'attention', step: 'connect', reason: 'the host cannot be reached' };
      if (result.status === 'done' && result.on === 'old' && goalOf(id) === 'old') rolledBack.push(hostLabel(host));
      // The kept copy was gone: the host stayed on the new container, which is said, never hidden.
      if (result.status === 'done' && result.on === 'new' && goalOf(id) === 'old' && host.before.live) attention.push(`${hostLabel(host)}: kept on the new image: the container live before the release (${host.before.live.id.slice(0, 12)}) is gone, nothing to go back to`);
      if (result.status !== 'done') {
        attention.push(`${hostLabel(host)}: ${result.reason}`);
        if (result.status === 'attention' && !session) await release.update((draft) => void Object.assign(draft.hosts[id]!, { progress: 'attention', attention: result.reason }));
      }
    };
    // Each settles before any error goes on (see releaseHosts).
    const thrown = (await Promise.allSettled(midway.map(settle))).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (thrown) throw thrown.reason;
    for (const id of released) {
      // A released host that goes back leaves service for a while: only if enough others serve.
      if (goalOf(id) === 'old' && !(await this.roomToTakeOut(release, id, hostCtx))) {
        const host = release.record.hosts[id]!;
        const reason = 'left on the new image: rolling it back now would leave fewer than policy.minHealthy in service';
        attention.push(`${hostLabel(host)}: ${reason}`);
        await release.update((draft) => void Object.assign(draft.hosts[id]!, { attention: reason }));
        continue;
      }
      await settle(id);
    }
  }

  /** Whether the host may leave service now without fewer than policy.minHealthy serving; waits a while for others to come back. */
  private async roomToTakeOut(release: RecordedRelease, id: string, hostCtx: HostReconcilerContext): Promise<boolean> {
    const plan = release.record.plan!;
    const host = release.record.hosts[id]!;
    if (!(await this.inService(host, plan.loadBalancers))) return true;
    const deadline = Date.now() + plan.inServiceTimeoutMs;
    for (;;) {
      const hosts = Object.values(release.record.hosts).filter((h) => h.progress !== 'gone');
      const serving = (await Promise.all(hosts.map((h) => this.inService(h, plan.loadBalancers)))).filter(Boolean).length;
      if (serving - 1 >= minHealthyFor(plan.settings.policy, hosts.length)) return true;
      if (Date.now() > deadline) return false;
      await sleep(hostCtx.pollMs * 4);
    }
  }

  /** Removes this target's stopped previous containers beyond the number kept for rollback. */
  private async prune(release: RecordedRelease, sessions: Map<string, HostSession>, log: Logger): Promise<void> {
    const plan = release.record.plan!;
    const name = plan.spec.name;
    for (const host of Object.values(release.record.hosts)) {
      const session = sessions.get(host.instanceId);
      if (!session) continue;
      try {
        const old = (await session.list({ 'harbormaster.target': release.record.target }))
          .filter((c) => !c.running && (c.name.startsWith(`${name}-previous-`) || c.name.startsWith(`${name}-displaced-`)))
          .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
        const surplus = old.slice(plan.settings.policy.keepOldContainers);
        for (const container of surplus) await session.remove(container.id);
        if (surplus.length > 0) log.info({ host: hostLabel(host), removed: surplus.length }, 'old containers removed');
      } catch (error) {
        log.warn({ host: hostLabel(host), err: error }, 'removing old containers failed; they stay until the next release');
      }
    }
  }
}

/**
 * The new image started once beside the live container and watched for a few seconds, when opted in
 * (policy.startCheckSeconds): an image that exits at start is refused before any host leaves service.
 * It has its own name, no ports, no network, no volumes and no restart, so it cannot serve, reach a
 * database or write to shared files; it still runs the image's entrypoint with the configured
 * environment. A start check a dead worker left behind is removed by the reconciler (START_CHECK_LABEL).
 */
function startCheckSpec(spec: ContainerSpec, releaseId: string): ContainerSpec {
  return { ...spec, name: `${spec.name}-start-check-${releaseId.slice(0, 8)}`, ports: [], volumes: [], network: 'none', restartPolicy: 'no', labels: { ...spec.labels, [START_CHECK_LABEL]: 'true' } };
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
