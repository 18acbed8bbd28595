import { setTimeout as sleep } from 'node:timers/promises';
import type { AutoScalingGroupFacts } from '../autoscaling/process-suspension.js';
import * as say from '../chat/release-messages.js';
import type { Chat } from '../chat/chat.js';
import type { HttpCheck, ProbeResult } from '../health/http-probe.js';
import type { RolloutSettings } from '../config/worker-config.js';
import type { ContainerSpec, HostConnector, HostSession, RegistryAuth } from '../host/host-session.js';
import type { LoadBalancerRef, LoadBalancers } from '../loadbalancer/load-balancers.js';
import type { Logger } from '../log/logger.js';
import type { ReleaseRequest } from '../request/release-request.js';
import { askedBy, promotionOf, stopOf, type StopRequest, type TargetControl } from '../state/control.js';
import { isFinal, loadBalancerKey, whereItStands, type HostRecord } from '../state/release-record.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import { LeaseLostError } from '../state/release-store.js';
import type { InstanceFinder, TargetInstance } from '../target/target-instances.js';
import { backHosts, forwardHosts, hostContext, leaveHost, type BackTally } from './host-batch.js';
import type { HostReconcilerContext, HostTimings } from './host-reconciler.js';
import { limitedEffects } from './limited-effects.js';
import { refreshPlan } from './plan-cache.js';
import { AlarmWatch } from './alarm-watch.js';
import { runTaskOnce } from './release-task.js';
import { takeInNewcomers } from './newcomers.js';
import type { ReleasePlan } from './plan.js';
import { TargetPreparer } from './prepare.js';
import { seePromotion } from './promotion-seen.js';
import { decideRelease, type ReleaseAction, type ReleaseObservation } from './release-decision.js';
import { endRelease, endStoppedBeforeStart, finalOutcome, prune } from './release-end.js';
import { restoreAndReport } from './restore-report.js';
import { outcomeOf, type Rollout, type RolloutContext, type RolloutOutcome } from './rollout.js';
import { keepMuted, suspendAndMute, type ScalingEffects } from './scaling-and-alarms.js';
import { closeAll, reconnect } from './sessions.js';
import { createStepLog, StepFailure, type StepJournal, type StepLog } from './step-runner.js';

// The release as a reconciler. A new release is prepared (prepare.ts: resolved, planned,
// preflighted, and what every host, group and alarm was before recorded); then, turn by turn, the
// engine observes (the hosts in service, what operators asked of the target, whether the worker is
// asked to stop), asks the pure decision (release-decision.ts) for the one next action, and acts:
// Auto Scaling suspended and alarms muted (each recorded before its call), hosts carried forward or
// back by the host reconciler (which records each intent before its effect), the target looked at
// again. Then Auto Scaling and alarms are restored exactly, confirmed by reading AWS back, and the
// release ends as finalOutcome says. A release found unfinished (after a crash, on a redelivery, by
// another worker) runs through the same code from wherever its record stands: there is no separate
// recovery path.

export interface RolloutEffects extends ScalingEffects {
  readonly instances: InstanceFinder;
  readonly loadBalancers: LoadBalancers;
  readonly connector: HostConnector;
  readonly chat: Chat;
  /** Registry credentials for a request's image, from the release's configuration and secrets. */
  readonly registryAuth: (request: ReleaseRequest) => RegistryAuth | undefined;
  /** Reads the container's environment from its sources (SSM, Secrets Manager) for the release, so a missing one refuses it before any host leaves service. */
  readonly readEnvironment?: (spec: ContainerSpec, signal?: AbortSignal) => Promise<void>;
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
  /** Overrides policy.watchIntervalSeconds (tests). */
  readonly watchIntervalMs?: number;
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
  /** Every alarm the release watches: rollout.alarms and rollout.watch. */
  readonly watched: string[];
}

/** How often a release at a gate looks again at what operators asked and at the worker's stop. */
const GATE_POLL_MS = 1_000;

const assertNever = (action: never): never => {
  throw new Error(`no effect for the release action ${JSON.stringify(action)}`);
};

/** What this take-up of the release has seen and done so far: the part of the observation only the engine knows. */
interface TakeUp {
  suspended: boolean;
  noRoomSince?: number | undefined;
  looks: number;
  lookedEnough: boolean;
  readonly settledBack: Set<string>;
  interrupted: boolean;
  notTakenIn?: { hosts: string[]; reason: string } | undefined;
  readonly reports: Array<{ host: string } & HostTimings>;
  readonly tally: BackTally;
}

export class ReleaseRunner implements Rollout {
  private readonly preparer: TargetPreparer;

  constructor(private readonly effects: RolloutEffects) {
    this.preparer = new TargetPreparer(effects);
  }

  /** The target's hosts, load balancers, groups and alarms, from configuration and discovery. */
  resolve(request: ReleaseRequest, deployment: string, settings: RolloutSettings): Promise<ResolvedTarget> {
    return this.preparer.resolve(request, deployment, settings);
  }

  plan(resolved: ResolvedTarget, settings: RolloutSettings): ReleasePlan {
    return this.preparer.plan(resolved, settings);
  }

  /** Every host reachable over SSH with its engine answering; with `pull`, the image pulled everywhere. */
  preflight(...args: Parameters<TargetPreparer['preflight']>): Promise<Map<string, HostSession>> {
    return this.preparer.preflight(...args);
  }

  run(release: RecordedRelease, context: RolloutContext): Promise<RolloutOutcome> {
    // Under a lease, every AWS call of the release takes its limit: the same runner over bound effects.
    const runner = context.leaseCalls ? new ReleaseRunner(limitedEffects(this.effects, context.leaseCalls)) : this;
    return runner.carryOut(release, context);
  }

  private async carryOut(release: RecordedRelease, context: RolloutContext): Promise<RolloutOutcome> {
    const log = context.logger;
    // A journal that waits (the test hold hook) yields to these, the deadline counted as the hosts' is.
    const policy = context.releaseConfig.rollout?.policy;
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
        const stopped = await this.stoppedBeforeStart(release, context);
        if (stopped) return stopped;
        const prepared = await this.preparer.prepare(release, context, steps);
        if ('refused' in prepared) return prepared.refused;
        sessions = prepared.sessions;
      } else {
        await refreshPlan(release, context.releaseConfig, (settings) => this.preparer.resolve(release.record.request, release.record.deployment, settings), log);
        sessions = await reconnect(this.effects, release, steps, log, context);
      }
      return await this.carry(release, sessions, context, steps);
    } finally {
      await closeAll(sessions);
    }
  }

  /** What operators asked of the target; a control document that cannot be read now is read again at the next turn. */
  private async control(context: RolloutContext): Promise<TargetControl | undefined> {
    if (!context.readControl) return undefined;
    try {
      return await context.readControl();
    } catch (error) {
      context.logger.warn({ err: error }, "reading the target's control failed; an operator's stop or promotion (if any) is taken at the next turn");
      return undefined;
    }
  }

  /** Stopped by an operator before it began (a stop written after the gate let it through): nothing was changed, so it ends at once. */
  private async stoppedBeforeStart(release: RecordedRelease, context: RolloutContext): Promise<RolloutOutcome | undefined> {
    const stop: StopRequest | undefined = stopOf(await this.control(context), release.releaseId);
    if (!stop) return undefined;
    const { outcome, message } = await endStoppedBeforeStart(release, stop);
    this.effects.chat.post(message);
    return outcome;
  }

  /** Turn by turn to the restore (observe, decide, act), then the restore and the end. */
  private async carry(release: RecordedRelease, sessions: Map<string, HostSession>, context: RolloutContext, steps: StepLog): Promise<RolloutOutcome> {
    const log = context.logger;
    const plan = release.record.plan!;
    const muteWindowMs = this.effects.muteWindowMs ?? plan.settings.alarmMuting.windowMinutes * 60_000;
    const started = Date.now();
    const watch = this.alarmWatch(release, log);
    const hostCtx: HostReconcilerContext = {
      ...hostContext(this.effects, release, context, steps),
      // policy.onAlarm rollback: a host on its way does not go on to the new image once an alarm fired.
      turnBack: () => (watch?.sighting && plan.settings.policy.onAlarm !== 'stop' ? { step: 'alarm', reason: `${watch.sighting.alarm} entered ALARM: ${watch.sighting.reason}` } : undefined),
    };
    const takeUp: TakeUp = { suspended: false, looks: 0, lookedEnough: false, settledBack: new Set(), interrupted: false, reports: [], tally: { rolledBack: [], attention: [] } };

    const stopRenewing = keepMuted(release, this.effects, muteWindowMs, log);
    try {
      await watch?.start();
      for (;;) {
        // The alarms are read at every turn too, not only on the watch's timer: no batch starts on a stale reading.
        const [observed] = await Promise.all([this.observe(release, context, takeUp), watch?.readNow()]);
        const action = decideRelease(release.record, { ...observed, alarm: watch?.sighting, alarmsUnreadableSince: watch?.unreadableSince });
        if (action.kind === 'restore') break;
        if (action.kind === 'interrupt') {
          takeUp.interrupted = true;
          break;
        }
        await this.act(action, release, sessions, context, steps, hostCtx, takeUp, muteWindowMs);
      }
    } finally {
      await watch?.stop();
      await stopRenewing();
    }

    const restore = await restoreAndReport(release, this.effects, steps, context, this.effects.restoreBackoff);
    // Asked to stop with a restore still pending: the record keeps it, and the next start carries it on.
    if (restore.status === 'stopped') return { status: 'interrupted', reason: `stopped on request with restores pending: ${restore.pending.join('; ')}` };
    const ending = finalOutcome(release.record, { interrupted: takeUp.interrupted, notTakenIn: takeUp.notTakenIn, restoreLeft: restore.left, rolledBack: takeUp.tally.rolledBack, attention: takeUp.tally.attention, durationMs: Date.now() - started });
    if (ending.status === 'succeeded') {
      await prune(release, sessions, log);
      log.info({ durationMs: Date.now() - started, hosts: takeUp.reports }, 'all hosts released');
    }
    const outcome = await endRelease(release, ending);
    this.effects.chat.post(ending.message);
    return outcome;
  }

  /** The watched alarms (alarm-watch.ts), read while the release goes forward and bakes; none going back. */
  private alarmWatch(release: RecordedRelease, log: Logger): AlarmWatch | undefined {
    const { watch, plan, target, request } = release.record;
    if (!watch || watch.alarms.length === 0 || release.record.direction !== 'forward' || release.record.stop) return undefined;
    const intervalMs = this.effects.watchIntervalMs ?? (plan!.settings.policy.watchIntervalSeconds ?? 10) * 1000;
    return new AlarmWatch(this.effects.alarms, watch, intervalMs, log, (sighting) =>
      this.effects.chat.post(say.alarmEntered({ target, image: request.image, alarm: sighting.alarm, reason: sighting.reason, then: plan!.settings.policy.onAlarm === 'stop' ? 'stop' : 'rollback' })),
    );
  }

  /** What the decision needs: the hosts in service now, what operators asked, and what this take-up did. */
  private async observe(release: RecordedRelease, context: RolloutContext, takeUp: TakeUp): Promise<ReleaseObservation> {
    const plan = release.record.plan!;
    const hosts = Object.values(release.record.hosts).filter((h) => h.progress !== 'gone');
    const [serving, control] = await Promise.all([
      this.serving(hosts, plan.loadBalancers),
      release.record.direction === 'forward' && !release.record.stop ? this.control(context) : undefined,
    ]);
    await seePromotion(release, promotionOf(control, release.releaseId));
    return {
      at: Date.now(),
      serving,
      stop: stopOf(control, release.releaseId),
      interrupt: context.stopRequested.aborted,
      suspended: takeUp.suspended,
      noRoomSince: takeUp.noRoomSince,
      looks: takeUp.looks,
      lookedEnough: takeUp.lookedEnough,
      settledBack: takeUp.settledBack,
    };
  }

  private async act(action: ReleaseAction, release: RecordedRelease, sessions: Map<string, HostSession>, context: RolloutContext, steps: StepLog, hostCtx: HostReconcilerContext, takeUp: TakeUp, muteWindowMs: number): Promise<void> {
    const log = context.logger;
    if (action.kind !== 'wait') takeUp.noRoomSince = undefined;
    switch (action.kind) {
      case 'stop': {
        const { by, at, rollback, note } = action.request;
        log.warn({ by, note, rollback }, rollback ? 'stopped by an operator at a safe point: the released hosts go back' : 'stopped by an operator at a safe point');
        await release.update((draft) => {
          draft.stop = { by, at, rollback, ...(note ? { note } : {}) };
          if (rollback) {
            draft.direction = 'back';
            draft.failure = { step: 'stop', reason: `stopped by ${askedBy(action.request)}, who asked for the released hosts to go back` };
          }
        });
        return;
      }
      case 'suspend':
        takeUp.suspended = true;
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
        return;
      case 'release-task':
        await runTaskOnce(this.effects, release, sessions, context);
        return;
      case 'release-hosts':
        if (action.cut) log.info({ now: action.hosts.map((id) => release.record.hosts[id]!.name ?? release.record.hosts[id]!.address) }, 'batch cut down to keep policy.minHealthy in service');
        await forwardHosts(this.effects, release, action.hosts, sessions, context, hostCtx, takeUp.reports);
        return;
      case 'wait':
        takeUp.noRoomSince ??= Date.now();
        log.warn({ why: action.why }, 'waiting: a host out now would leave fewer than policy.minHealthy in service');
        await sleep(hostCtx.pollMs * 4);
        return;
      case 'turn-back':
        await release.update((draft) => {
          draft.direction = 'back';
          draft.failure = action.failure;
        });
        return;
      case 'look-again': {
        takeUp.looks += 1;
        const joined = await takeInNewcomers(this.effects, this.preparer, release, sessions, context, action.mayTakeIn);
        if (joined === 'none') takeUp.lookedEnough = true;
        else if (joined !== 'taken-in') {
          takeUp.notTakenIn = joined;
          takeUp.lookedEnough = true;
        }
        return;
      }
      case 'back-hosts':
        await backHosts(release, action.hosts, action.goal, sessions, hostCtx, takeUp.tally);
        for (const id of action.hosts) takeUp.settledBack.add(id);
        return;
      case 'leave-host':
        await leaveHost(release, action.host, action.reason, takeUp.tally);
        takeUp.settledBack.add(action.host);
        return;
      case 'reach-gate': {
        const gate = release.record.plan!.gates![action.gate]!;
        await release.update((draft) => {
          draft.gates ??= [];
          draft.gates[action.gate] = { reachedAt: new Date().toISOString() };
        });
        const present = Object.values(release.record.hosts).filter((h) => h.progress !== 'gone');
        log.info({ gate: action.gate, ...gate }, gate.kind === 'bake' ? 'baking: waiting and watching, nothing changes' : 'paused: waiting for harbormaster promote');
        const { target, request } = release.record;
        this.effects.chat.post(say.releaseAtGate({ target, image: request.image, released: present.filter((h) => h.progress === 'released').length, total: present.length, ...(gate.kind === 'bake' ? { bakeSeconds: gate.seconds } : {}) }));
        return;
      }
      case 'wait-gate':
        // Short waits: the operator's stop and promotion and the worker's stop are looked at again each time.
        await sleep(Math.max(0, Math.min(GATE_POLL_MS, (action.until ?? Infinity) - Date.now())), undefined, { signal: context.stopRequested }).catch(() => undefined);
        return;
      case 'pass-gate':
        await release.update((draft) => {
          const gate = draft.gates![action.gate]!;
          gate.passedAt = new Date().toISOString();
          if (action.by !== undefined) gate.by = action.by;
        });
        log.info({ gate: action.gate, by: action.by }, action.by !== undefined ? 'promoted: going on' : 'bake over: going on');
        this.effects.chat.post(say.releaseGatePassed({ target: release.record.target, image: release.record.request.image, by: action.by }));
        return;
      case 'interrupt':
      case 'restore':
        return;
      default:
        return assertNever(action);
    }
  }

  /**
   * The hosts in service in every load balancer they were registered in before the release (a host
   * that was in none is not counted): one reading per load balancer for all its hosts, so a turn costs
   * the same whether the target has 3 hosts or 30.
   */
  private async serving(hosts: readonly HostRecord[], loadBalancers: readonly LoadBalancerRef[]): Promise<Set<string>> {
    const readings = await Promise.all(
      loadBalancers.map((lb) => {
        const key = loadBalancerKey(lb);
        return this.effects.loadBalancers.inService(lb, hosts.filter((h) => h.before.registeredIn.includes(key)).map((h) => h.instanceId));
      }),
    );
    const byKey = loadBalancers.map((lb, i) => [loadBalancerKey(lb), readings[i]!] as const);
    const serves = (h: HostRecord) => {
      const wanted = byKey.filter(([key]) => h.before.registeredIn.includes(key));
      return wanted.length > 0 && wanted.every(([, inService]) => inService.has(h.instanceId));
    };
    return new Set(hosts.filter(serves).map((h) => h.instanceId));
  }
}
