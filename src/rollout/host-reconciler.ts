import { setTimeout as sleep } from 'node:timers/promises';
import type { HttpCheck, ProbeResult } from '../health/http-probe.js';
import { ContainerNotFoundError } from '../host/host-errors.js';
import type { ContainerInfo, HostSession } from '../host/host-session.js';
import type { LoadBalancerRef, LoadBalancers } from '../loadbalancer/load-balancers.js';
import type { Logger } from '../log/logger.js';
import { loadBalancerKey, type HostRecord, type RecordedPlan } from '../state/release-record.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import { decideHostAction, type HostAction, type HostObservation, type ReleaseTerms } from './host-decision.js';
import type { OpenStep, StepLog } from './step-runner.js';

// The loop that carries one host to where the release wants it: observe the host, let
// decideHostAction choose the one next action, record the intent (durably), act, record the outcome,
// observe again. Nothing here remembers what it did between turns: a turn after a crash, after a
// redelivery or after the previous turn is the same turn.

export interface HostTimings {
  outOfServiceMs: number;
  stopMs: number;
  startMs: number;
  healthyMs: number;
}

export type HostResult =
  | { readonly status: 'done'; readonly on: 'new' | 'old'; readonly timings: HostTimings }
  /** Going forward, the host could not reach the new image: the release turns back. */
  | { readonly status: 'failed'; readonly step: string; readonly reason: string }
  /** Going back, the host could not be put back: a person is needed. */
  | { readonly status: 'attention'; readonly step: string; readonly reason: string };

export interface HostReconcilerContext {
  readonly release: RecordedRelease;
  readonly plan: RecordedPlan;
  readonly terms: ReleaseTerms;
  readonly target: string;
  readonly loadBalancers: LoadBalancers;
  readonly steps: StepLog;
  readonly log: Logger;
  /** Poll interval of the load balancer waits (the health wait uses the health check's interval). */
  readonly pollMs: number;
  /** Going back, how long a failing effect is tried again before the host is left for a person. */
  readonly rollbackRetryMs: number;
  /** The bastion's HTTP check of a host (health, smoke). */
  readonly probe: (address: string, check: HttpCheck) => Promise<ProbeResult>;
  /** Aborted when this worker must stop acting on the release (it lost the release to another writer). */
  readonly signal?: AbortSignal;
}

/** The same effect decided again and again means it does not take: stop rather than loop. */
const MAX_REPEATS = 5;

const hostLabel = (host: HostRecord) => host.name ?? host.address;

class SmokeFailed extends Error {
  override name = 'SmokeFailed';
}

function refOf(plan: RecordedPlan, key: string): LoadBalancerRef {
  const ref = plan.loadBalancers.find((lb) => loadBalancerKey(lb) === key);
  if (!ref) throw new Error(`load balancer ${key} is not one of the release's`);
  return ref;
}

/** What is on the host now: the target's containers, every load balancer's reading, the HTTP probe. */
export async function observeHost(ctx: HostReconcilerContext, host: HostRecord, session: HostSession): Promise<HostObservation> {
  const [listed, named, readings] = await Promise.all([
    session.list({ 'harbormaster.target': ctx.target }),
    session.inspect(ctx.plan.spec.name),
    Promise.all(ctx.plan.loadBalancers.map(async (lb) => [loadBalancerKey(lb), await ctx.loadBalancers.membership(lb, host.instanceId)] as const)),
  ]);
  const containers = new Map<string, ContainerInfo>(listed.map((c) => [c.id, c]));
  if (named) containers.set(named.id, named);
  // The live container of a host set up by hand may carry none of our labels: it is found by id.
  for (const id of [host.before.live?.id, host.started]) {
    if (id && !containers.has(id)) {
      const found = await session.inspect(id);
      if (found) containers.set(found.id, found);
    }
  }
  const running = [...containers.values()].some((c) => c.state === 'running');
  const probe = running ? await ctx.probe(host.address, ctx.plan.settings.health) : undefined;
  return { at: Date.now(), containers: [...containers.values()], memberships: Object.fromEntries(readings), ...(probe ? { probe } : {}) };
}

/** Carries out one effect. Resolves with what it learnt that the record must keep. */
async function perform(ctx: HostReconcilerContext, host: HostRecord, session: HostSession, action: HostAction): Promise<{ started?: string; smokePassed?: string }> {
  const { spec, settings } = ctx.plan;
  switch (action.kind) {
    case 'deregister':
      for (const key of action.from) await ctx.loadBalancers.deregister(refOf(ctx.plan, key), host.instanceId);
      return {};
    case 'register':
      for (const key of action.to) await ctx.loadBalancers.register(refOf(ctx.plan, key), host.instanceId);
      return {};
    case 'stop-old':
    case 'set-aside': {
      const current = await session.inspect(action.container);
      if (!current) return {};
      if (current.name !== action.rename) await session.rename(action.container, action.rename);
      await session.stop(action.container, spec.stopTimeoutSeconds);
      return {};
    }
    case 'start-new':
      return { started: await session.run(spec) };
    case 'start-old': {
      const current = await session.inspect(action.container);
      if (!current) return {};
      if (current.name !== spec.name) await session.rename(action.container, spec.name);
      await session.start(action.container);
      return {};
    }
    case 'remove':
      await session.remove(action.container);
      return {};
    case 'smoke': {
      const result = await ctx.probe(host.address, settings.smoke!);
      if (!result.ok) throw new SmokeFailed(`smoke check failed: ${result.reason}`);
      return { smokePassed: action.container };
    }
    default:
      throw new Error(`${action.kind} is not an effect`);
  }
}

/** Carries the host to where `goal` says, one observed action at a time. */
export async function reconcileHost(ctx: HostReconcilerContext, instanceId: string, session: HostSession, goal: 'new' | 'old'): Promise<HostResult> {
  const timings: HostTimings = { outOfServiceMs: 0, stopMs: 0, startMs: 0, healthyMs: 0 };
  const label = hostLabel(ctx.release.record.hosts[instanceId]!);
  let waiting: OpenStep | undefined;
  let repeated = { key: '', count: 0 };
  let troubleSince: number | undefined;
  const back = goal === 'old';

  const closeWait = async () => {
    if (!waiting) return;
    const durationMs = await waiting.done();
    if (waiting.step === 'wait-healthy') timings.healthyMs += durationMs;
    waiting = undefined;
  };
  /** A failure of this turn: going forward it fails the host; going back it is tried again for a while. */
  const trouble = async (step: string, reason: string): Promise<HostResult | undefined> => {
    if (!back) return { status: 'failed', step, reason };
    troubleSince ??= Date.now();
    if (Date.now() - troubleSince >= ctx.rollbackRetryMs) return { status: 'attention', step, reason };
    ctx.log.warn({ host: label, step, reason }, 'putting the host back failed for now; trying again');
    await sleep(Math.min(5_000, ctx.pollMs * 4));
    return undefined;
  };
  const finish = async (result: HostResult): Promise<HostResult> => {
    if (waiting && result.status !== 'done') {
      await waiting.failed(result.reason);
      waiting = undefined;
    }
    await closeWait();
    return result;
  };

  for (;;) {
    ctx.signal?.throwIfAborted();
    const host = ctx.release.record.hosts[instanceId]!;
    let observed: HostObservation;
    try {
      observed = await observeHost(ctx, host, session);
    } catch (error) {
      const outcome = await trouble(waiting?.step ?? 'observe', `cannot observe the host: ${(error as Error).message}`);
      if (outcome) return finish(outcome);
      continue;
    }
    const action = decideHostAction({ goal, host, observed, release: ctx.terms });
    if (waiting && waiting.step !== action.step) await closeWait();

    switch (action.kind) {
      case 'done': {
        await closeWait();
        const record = await ctx.release.update((draft) => {
          const h = draft.hosts[instanceId]!;
          h.progress = action.on === 'new' ? (back ? 'kept' : 'released') : 'restored';
          if (h.outAt) h.backAt ??= new Date(observed.at).toISOString();
        });
        const done = record.hosts[instanceId]!;
        if (done.outAt && done.backAt) timings.outOfServiceMs = Date.parse(done.backAt) - Date.parse(done.outAt);
        return { status: 'done', on: action.on, timings };
      }
      case 'wait':
        waiting ??= await ctx.steps.open(action.step, label);
        await sleep(action.for === 'healthy' ? ctx.plan.settings.health.intervalMs : ctx.pollMs);
        continue;
      case 'fail':
      case 'attention': {
        const result: HostResult = { status: action.kind === 'fail' ? 'failed' : 'attention', step: action.step, reason: action.reason };
        if (!waiting) await (await ctx.steps.open(action.step, label)).failed(action.reason);
        await ctx.release.update((draft) => {
          const h = draft.hosts[instanceId]!;
          if (action.kind === 'fail') h.failure = { step: action.step, reason: action.reason };
          else {
            h.attention = action.reason;
            h.progress = 'attention';
          }
        });
        return finish(result);
      }
      default:
        break;
    }

    // An effect: the same one decided over and over means it does not take.
    const key = `${action.kind}:${action.step}:${'container' in action ? action.container : ''}`;
    repeated = repeated.key === key ? { key, count: repeated.count + 1 } : { key, count: 1 };
    if (repeated.count > MAX_REPEATS) {
      const outcome = await trouble(action.step, `${action.step} did not take effect after ${MAX_REPEATS} attempts`);
      if (outcome) return finish(outcome);
      repeated = { key, count: 0 };
      continue;
    }

    ctx.signal?.throwIfAborted();
    if (action.kind === 'stop-old' && action.drainTimedOut) {
      ctx.log.warn({ host: label, readings: observed.memberships }, "draining did not end within the load balancers' draining timeout; they have cut the connections themselves, continuing");
    }
    const now = new Date().toISOString();
    // Write ahead: the intent is durable before the effect.
    await ctx.release.update((draft) => {
      const h = draft.hosts[instanceId]!;
      h.progress = 'in-progress';
      h.intent = { action: action.step, at: now };
      if (action.kind === 'deregister') h.deregisteredAt = now;
      if (action.kind === 'register') h.registeredAt = now;
      if (action.kind === 'deregister' || action.kind === 'stop-old') h.outAt ??= now;
      if (action.kind === 'start-new' || action.kind === 'start-old') delete h.smokePassed;
    });
    const span = await ctx.steps.open(action.step, label);
    let learnt: { started?: string; smokePassed?: string };
    try {
      learnt = await perform(ctx, host, session, action);
    } catch (error) {
      if (error instanceof ContainerNotFoundError) {
        // Gone meanwhile (removed by hand, or by an earlier turn): the next observation says what holds.
        await span.done();
        continue;
      }
      const reason = (error as Error).message;
      await span.failed(reason, error instanceof SmokeFailed ? undefined : error);
      await ctx.release.update((draft) => {
        draft.hosts[instanceId]!.outcome = { action: action.step, at: new Date().toISOString(), ok: false, error: reason };
      });
      const outcome = await trouble(action.step, reason);
      if (outcome) {
        if (outcome.status === 'failed') await ctx.release.update((draft) => void (draft.hosts[instanceId]!.failure = { step: action.step, reason }));
        return finish(outcome);
      }
      continue;
    }
    const durationMs = await span.done();
    if (action.kind === 'stop-old') timings.stopMs += durationMs;
    if (action.kind === 'start-new') timings.startMs += durationMs;
    troubleSince = undefined;
    await ctx.release.update((draft) => {
      const h = draft.hosts[instanceId]!;
      h.outcome = { action: action.step, at: new Date().toISOString(), ok: true };
      if (learnt.started) h.started = learnt.started;
      if (learnt.smokePassed) h.smokePassed = learnt.smokePassed;
    });
  }
}
