import { setTimeout as sleep } from 'node:timers/promises';
import * as say from '../chat/release-messages.js';
import { isTransient } from '../aws/transient.js';
import { HostError } from '../host/host-errors.js';
import type { RolloutSettings } from '../config/worker-config.js';
import type { ContainerSpec, HostSession, RegistryAuth } from '../host/host-session.js';
import type { LoadBalancerRef } from '../loadbalancer/load-balancers.js';
import type { ReleaseRequest } from '../request/release-request.js';
import { loadBalancerKey, type HostRecord, type RecordedPlan, type WatchRecord } from '../state/release-record.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import type { TargetInstance } from '../target/target-instances.js';
import { containerSpec } from './container-spec.js';
import { START_CHECK_LABEL } from './host-decision.js';
import { isPassingAtPreflight, waitOutPassing } from './passing-failures.js';
import { planRelease, type ReleasePlan } from './plan.js';
import type { ResolvedTarget, RolloutEffects } from './release-runner.js';
import type { RolloutContext, RolloutOutcome } from './rollout.js';
import { bounded, closeAll, hostLabel, REGISTERED } from './sessions.js';
import { StepFailure, type StepLog, type StepRunner } from './step-runner.js';

// A new release, before its first effect: the target resolved from configuration and discovery,
// planned, refused if no host could leave service, preflighted (every host reachable, its engine
// answering, the image pulled everywhere, optionally started once), and what every host, group and
// alarm is now recorded. Either the release is recorded `running` with its plan, or it is refused
// with nothing changed.

export class Refusal extends Error {
  override name = 'Refusal';
}

/** CloudWatch's words about an alarm, short and on one line (outside text). */
const clip = (text: string) => text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 200);

export class TargetPreparer {
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
    const watched = [...new Set([...alarms, ...forDeployment(settings.watch)])];
    return { target, hosts, loadBalancers, groups, alarms: [...alarmStates].map(([alarm, actionsEnabled]) => ({ name: alarm, actionsEnabled })), watched };
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
      /** if-missing: only where the engine does not have the image (a rollback to an image the hosts ran). */
      pull: boolean | 'if-missing';
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
          const present = options.pull === 'if-missing' && (await open.imageDigest?.(options.image).catch(() => undefined)) !== undefined;
          if (options.pull && !present) await options.run('pull', hostLabel(host), () => open.pull(options.image, options.auth));
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
      await closeAll(sessions);
      const reasons = failures.map(([r, host]) => {
        const error = (r as PromiseRejectedResult).reason as Error;
        return error instanceof StepFailure ? error.message : `${hostLabel(host)}: ${error.message}`;
      });
      throw new Refusal(`preflight failed, nothing was changed: ${reasons.join('; ')}`);
    }
    return sessions;
  }

  /** A new release: resolved, planned, preflighted, and everything it will change recorded as it is now. */
  async prepare(release: RecordedRelease, context: RolloutContext, steps: StepLog): Promise<{ sessions: Map<string, HostSession> } | { refused: RolloutOutcome }> {
    const { request, deployment, releaseId } = release.record;
    const target = release.record.target;
    const settings = context.releaseConfig.rollout;
    let sessions: Map<string, HostSession> | undefined;
    try {
      if (!settings) throw new Refusal(`no rollout is configured for ${request.target.stack}/${request.target.release}`);
      const found = await steps.run('resolve', undefined, () => this.resolve(request, deployment, settings));
      // A release for hosts that joined the target since its release: those hosts alone.
      const only = release.record.newHosts?.instances;
      const resolved = only ? { ...found, hosts: found.hosts.filter((h) => only.includes(h.instanceId)) } : found;
      if (resolved.hosts.length === 0) throw new Refusal('the hosts this release was for are no longer running instances of the target');
      // Canary steps were the target's release's: hosts that join later get its image in batches.
      const plan = this.plan(resolved, only ? { ...settings, policy: { ...settings.policy, steps: undefined } } : settings);
      // Before anything is pulled or started: can a host be taken out at all? Counted from the load balancers.
      await this.refuseBelowMinHealthy(resolved.hosts, plan);
      const watch = await this.watchBaseline(resolved, settings, target);
      context.logger.info({ hosts: resolved.hosts.length, batches: plan.batches.length, loadBalancers: plan.loadBalancers.map((lb) => lb.id), suspend: plan.suspend, muteAlarms: resolved.alarms.map((a) => a.name) }, 'release planned');
      const spec = containerSpec(settings, { image: request.image, target: resolved.target, releaseId, requestedBy: request.requestedBy });
      // Read now, so a missing or refused secret refuses the release before any host leaves service.
      if (this.effects.readEnvironment) await steps.run('environment', undefined, () => this.effects.readEnvironment!(spec, context.leaseLost));
      sessions = await this.preflight(resolved.hosts, {
        image: request.image,
        auth: this.effects.registryAuth(request),
        // A rollback goes back to an image the hosts ran: pulled again only where it is gone.
        pull: release.record.origin?.kind === 'rollback' ? 'if-missing' : true,
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
      // The digest of what was pulled, from the first host: a promotion enqueues exactly this image.
      const imageDigest = await sessions.get(resolved.hosts[0]!.instanceId)!.imageDigest?.(request.image).catch(() => undefined);
      const open = sessions;
      const hosts = await steps.run('record-before', undefined, () => Promise.all(resolved.hosts.map((host) => this.observeBefore(host, open.get(host.instanceId)!, spec, plan.loadBalancers, resolved.target))));

      const timings = await Promise.all(plan.loadBalancers.map((lb) => this.effects.loadBalancers.timings(lb)));
      const recordedPlan: RecordedPlan = {
        settings,
        spec,
        loadBalancers: [...plan.loadBalancers],
        batches: plan.batches.map((batch) => batch.map((host) => host.instanceId)),
        ...(plan.gates.length > 0 ? { gates: [...plan.gates] } : {}),
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
        if (watch) draft.watch = watch;
        if (imageDigest) draft.imageDigest = imageDigest;
        draft.status = 'running';
        draft.startedAt = new Date().toISOString();
      });
    } catch (error) {
      if (sessions) await closeAll(sessions);
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

  /**
   * The watched alarms' states before anything changes: the baseline the alarm watch compares with.
   * One already in ALARM refuses the release (policy.alarmAtStart refuse), or is said and ignored
   * until it has left ALARM (ignore).
   */
  private async watchBaseline(resolved: ResolvedTarget, settings: RolloutSettings, target: string): Promise<WatchRecord | undefined> {
    if (resolved.watched.length === 0) return undefined;
    const states = await this.effects.alarms.states(resolved.watched);
    const baseline = Object.fromEntries(resolved.watched.map((name) => [name, states.get(name)!.state]));
    const inAlarm = resolved.watched.filter((name) => baseline[name] === 'ALARM');
    if (inAlarm.length > 0) {
      const which = inAlarm.map((name) => `${name} (${clip(states.get(name)!.reason)})`).join(', ');
      if (settings.policy.alarmAtStart === 'refuse') {
        throw new Refusal(`watched alarm(s) already in ALARM before the release: ${which}; release once they are OK, or set policy.alarmAtStart: ignore`);
      }
      this.effects.chat.post(say.alarmsAtStart({ target, alarms: inAlarm }));
    }
    return { alarms: [...resolved.watched], baseline };
  }

  /** A host as it is before the release touches it: its live container and the load balancers it is in. */
  async observeBefore(host: TargetInstance, session: HostSession, spec: ContainerSpec, loadBalancers: readonly LoadBalancerRef[], target: string): Promise<HostRecord> {
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
