import { setTimeout as sleep } from 'node:timers/promises';
import type { HttpCheck, ProbeResult } from '../health/http-probe.js';
import { probeDelay } from '../health/probe-schedule.js';
import { ContainerNotFoundError } from '../host/host-errors.js';
import { isPassing } from './passing-failures.js';
import type { ContainerInfo, HostSession } from '../host/host-session.js';
import type { LoadBalancerRef, LoadBalancers, Membership } from '../loadbalancer/load-balancers.js';
import type { Logger } from '../log/logger.js';
import { loadBalancerKey, type HostRecord, type RecordedPlan, type ReleaseRecord } from '../state/release-record.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import { awaitCallTaken, pollDelay } from './balancer-readings.js';
import { decideHostAction, RELEASE_ID_LABEL, type HostAction, type HostObservation, type ReleaseTerms } from './host-decision.js';
import type { OpenStep, StepLog } from './step-runner.js';

// The loop that carries one host to where the release wants it: observe the host, let
// decideHostAction choose the one next action, record the intent (durably), act, record the outcome
// (with the host's next write), observe again. Nothing here remembers what it did between turns: a turn after a crash, after a
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
  /** First poll interval of the load balancer waits, growing to ten times it (the health wait uses the health check's interval). */
  readonly pollMs: number;
  /** After a register or deregister call, how long at most to wait for the readings to show it (default 30 s). */
  readonly readingLagMs?: number;
  /** Going back, how long a failing effect is tried again before the host is left for a person. */
  readonly rollbackRetryMs: number;
  /** Going forward, how long a transient failure (host unreachable, engine not answering, AWS throttling) is tried again before the host fails. */
  readonly hostRetryMs: number;
  /** Going forward, past this (epoch ms) the host fails with `deadline`: the release turns back. */
  readonly deadline?: number;
  /** Going forward, a reason the whole release turns back now (a watched alarm entered ALARM): the host fails with it and goes back. */
  readonly turnBack?: () => { readonly step: string; readonly reason: string } | undefined;
  /** The bastion's HTTP check of a host (health, smoke). */
  readonly probe: (address: string, check: HttpCheck) => Promise<ProbeResult>;
  /** Aborted when this worker must stop acting on the release (it lost the release to another writer). */
  readonly signal?: AbortSignal;
  /** Told once when a host starts failing for a while (chat): what, and for how long it is tried again. */
  readonly onTrouble?: (event: { host: string; step: string; reason: string; retryingForMs: number; goingBack: boolean }) => void;
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
type ContainerSide = { readonly containers: Map<string, ContainerInfo>; readonly probe: ProbeResult };
type BalancerSide = ReadonlyArray<readonly [string, Membership]>;

/** The host's containers (only those a decision can turn on, inspected) and the HTTP probe. */
async function observeContainers(ctx: HostReconcilerContext, host: HostRecord, session: HostSession): Promise<ContainerSide> {
  const recordedIds = [host.before.live?.id, host.started].filter((id): id is string => id !== undefined);
  const inspected = (async () => {
    const summaries = await session.summaries({ 'harbormaster.target': ctx.target });
    // Stopped copies of earlier releases matter to no decision; live ones, the name's holder, this
    // release's containers and the recorded ones do. The live container of a host set up by hand may
    // carry none of our labels: it is looked up by name and by its recorded id.
    const wanted = new Set<string>([ctx.plan.spec.name, ...recordedIds]);
    for (const c of summaries) {
      if (c.state !== 'exited' && c.state !== 'dead') wanted.add(c.id);
      if (c.name === ctx.plan.spec.name || c.labels[RELEASE_ID_LABEL] === ctx.terms.releaseId) wanted.add(c.id);
    }
    const found = await Promise.all([...wanted].map((key) => session.inspect(key)));
    return new Map(found.filter((c): c is ContainerInfo => c !== undefined).map((c) => [c.id, c]));
  })();
  // Asked whether or not a container runs: nothing listening answers at once (connection refused).
  const [containers, probe] = await Promise.all([inspected, ctx.probe(host.address, ctx.plan.settings.health)]);
  return { containers, probe };
}

/** What every load balancer of the release says of the host. */
function observeBalancers(ctx: HostReconcilerContext, host: HostRecord): Promise<BalancerSide> {
  return Promise.all(ctx.plan.loadBalancers.map(async (lb) => [loadBalancerKey(lb), await ctx.loadBalancers.membership(lb, host.instanceId)] as const));
}

/**
 * What is on the host now. A half read while an effect on the *other* half ran (the load balancers
 * while a container stopped, the containers while a host was deregistered) is as fresh as one read
 * after it: nothing that changed them happened since. After a (de)registration of every load
 * balancer, the readings that showed it are the load balancer half, so a look may be read whole
 * before it is asked for. That overlap is what keeps looking before every decision cheap on a host
 * that is out of service.
 */
export async function observeHost(ctx: HostReconcilerContext, host: HostRecord, session: HostSession, prefetched: { containers?: Promise<ContainerSide>; balancers?: Promise<BalancerSide> } = {}): Promise<HostObservation> {
  const [side, readings] = await Promise.all([prefetched.containers ?? observeContainers(ctx, host, session), prefetched.balancers ?? observeBalancers(ctx, host)]);
  const running = [...side.containers.values()].some((c) => c.state === 'running');
  return { at: Date.now(), containers: [...side.containers.values()], memberships: Object.fromEntries(readings), ...(running ? { probe: side.probe } : {}) };
}

/** Calls made at once, every one settled before the turn goes on; the first failure, if any, is thrown. */
async function together(...calls: Array<Promise<unknown> | undefined>): Promise<void> {
  const failed = (await Promise.allSettled(calls)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Carries out one effect. Resolves with what it learnt that the record must keep. A container's name
 * is taken from the observation the action was decided on (read this turn), not asked again: one call
 * fewer while the host is out of service. A container gone since is gone for the engine's calls too.
 */
async function perform(ctx: HostReconcilerContext, host: HostRecord, session: HostSession, action: HostAction, observed: HostObservation): Promise<{ started?: string; smokePassed?: string }> {
  const { spec, settings } = ctx.plan;
  const seen = (id: string) => observed.containers.find((c) => c.id === id);
  switch (action.kind) {
    // Every load balancer at once: the host is out (or in) when the slowest has answered, not the sum.
    case 'deregister':
      await together(...action.from.map((key) => ctx.loadBalancers.deregister(refOf(ctx.plan, key), host.instanceId)));
      return {};
    case 'register':
      await together(...action.to.map((key) => ctx.loadBalancers.register(refOf(ctx.plan, key), host.instanceId)));
      return {};
    case 'stop-old':
    case 'set-aside': {
      const current = seen(action.container);
      if (!current) return {};
      // Kept for rollback, stopped: an engine restart must never revive it. One under `no` never is,
      // nor one under `unless-stopped` that runs now (Docker marks it stopped by hand when this stop
      // stops it; a stop of one not running marks nothing). Any other, or a policy not known, becomes
      // `no` first. Name and policy are independent: asked at once.
      const staysStopped = current.restartPolicy === 'no' || (current.restartPolicy === 'unless-stopped' && current.running);
      await together(current.name !== action.rename ? session.rename(action.container, action.rename) : undefined, staysStopped ? undefined : session.setRestartPolicy(action.container, 'no'));
      await session.stop(action.container, spec.stopTimeoutSeconds);
      return {};
    }
    case 'create-new':
      // Restart policy `no` until it starts: an engine restart never starts a container that was only made ready.
      return { started: await session.create({ ...spec, name: action.name, restartPolicy: 'no' }) };
    case 'start-new': {
      const current = seen(action.container);
      if (!current) return {};
      // The old container gave up the name (and the host port) when it was stopped and set aside.
      await together(current.name !== spec.name ? session.rename(action.container, spec.name) : undefined, spec.restartPolicy !== 'no' ? session.setRestartPolicy(action.container, spec.restartPolicy) : undefined);
      await session.start(action.container);
      return {};
    }
    case 'start-old': {
      const current = seen(action.container);
      if (!current) return {};
      // Live again, under its name and with the configured restart policy back (both asked at once).
      await together(current.name !== spec.name ? session.rename(action.container, spec.name) : undefined, current.restartPolicy !== spec.restartPolicy ? session.setRestartPolicy(action.container, spec.restartPolicy) : undefined);
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

/**
 * While a host waits for its container to be healthy: the probe alone, polled fast (probeDelay),
 * until it passes, the wait's deadline comes, or a health interval has gone by (then the whole host
 * is looked at again, so that a container that exits is seen). With the image's HEALTHCHECK to wait
 * for as well, one pause and then the whole look, which reads Docker's verdict.
 */
async function awaitProbe(ctx: HostReconcilerContext, address: string, since: number, until: number): Promise<void> {
  const { health } = ctx.plan.settings;
  const lookAgainAt = Math.min(until, Date.now() + health.intervalMs);
  for (;;) {
    ctx.signal?.throwIfAborted();
    await sleep(Math.max(1, Math.min(probeDelay(Date.now() - since, health.intervalMs), lookAgainAt - Date.now())));
    if (ctx.terms.waitForDocker || Date.now() >= lookAgainAt) return;
    if ((await ctx.probe(address, health)).ok) return;
  }
}

/** Carries the host to where `goal` says, one observed action at a time. */
export async function reconcileHost(ctx: HostReconcilerContext, instanceId: string, session: HostSession, goal: 'new' | 'old'): Promise<HostResult> {
  const timings: HostTimings = { outOfServiceMs: 0, stopMs: 0, startMs: 0, healthyMs: 0 };
  const label = hostLabel(ctx.release.record.hosts[instanceId]!);
  let waiting: OpenStep | undefined;
  let repeated = { key: '', count: 0 };
  // Since when this host has been failing, and at what: a look, or an effect. The window resets only
  // when that kind of step succeeds, so an effect that fails after every good look still runs out.
  let troubleSince: number | undefined;
  let troubleFrom: 'observe' | 'effect' | undefined;
  let prefetched: { containers?: Promise<ContainerSide>; balancers?: Promise<BalancerSide> } = {};
  const back = goal === 'old';
  // The outcome of an effect is written with the host's next write (an intent, or its end) rather
  // than on its own: after the effect all the same, one fsync fewer while the host is out of service.
  let outcome: ((draft: ReleaseRecord) => void) | undefined;
  const write = (change: (host: HostRecord) => void) => {
    const carried = outcome;
    outcome = undefined;
    return ctx.release.update((draft) => {
      carried?.(draft);
      change(draft.hosts[instanceId]!);
    });
  };

  let waitPolls = 0;
  let healthWaitSince: number | undefined;
  const closeWait = async () => {
    waitPolls = 0;
    healthWaitSince = undefined;
    if (!waiting) return;
    const durationMs = await waiting.done();
    if (waiting.step === 'wait-healthy') timings.healthyMs += durationMs;
    waiting = undefined;
  };
  /**
   * A failure of this turn. Going back, anything is tried again for a while before the host is left
   * for a person; going forward, only what may pass by itself (a lost connection, an engine that does
   * not answer, throttling), and anything else fails the host at once.
   */
  const trouble = async (step: string, reason: string, error?: unknown): Promise<HostResult | undefined> => {
    const window = back ? ctx.rollbackRetryMs : isPassing(error) ? ctx.hostRetryMs : 0;
    if (troubleSince === undefined && window > 0) ctx.onTrouble?.({ host: label, step, reason, retryingForMs: window, goingBack: back });
    troubleSince ??= Date.now();
    if (Date.now() - troubleSince >= window) return back ? { status: 'attention', step, reason } : { status: 'failed', step, reason };
    ctx.log.warn({ host: label, step, reason, retryingForMs: window - (Date.now() - troubleSince) }, back ? 'putting the host back failed for now; trying again' : 'the host cannot be reached or does not answer for now; trying again');
    await sleep(Math.min(5_000, Math.max(250, ctx.pollMs * 4)));
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
    if (!back && ctx.deadline !== undefined && Date.now() > ctx.deadline) {
      const reason = `the release went past its deadline (policy.releaseTimeoutMinutes) before this host was done`;
      await write((h) => void (h.failure = { step: 'deadline', reason }));
      return finish({ status: 'failed', step: 'deadline', reason });
    }
    const turnBack = back ? undefined : ctx.turnBack?.();
    if (turnBack) {
      await write((h) => void (h.failure = turnBack));
      return finish({ status: 'failed', ...turnBack });
    }
    const host = ctx.release.record.hosts[instanceId]!;
    let observed: HostObservation;
    try {
      const ahead = prefetched;
      prefetched = {};
      observed = await observeHost(ctx, host, session, ahead);
      if (troubleFrom === 'observe') troubleSince = troubleFrom = undefined;
    } catch (error) {
      troubleFrom = 'observe';
      const outcome = await trouble(waiting?.step ?? 'observe', `cannot observe the host: ${(error as Error).message}`, error);
      if (outcome) return finish(outcome);
      continue;
    }
    const action = decideHostAction({ goal, host, observed, release: ctx.terms });
    if (waiting && waiting.step !== action.step) await closeWait();

    switch (action.kind) {
      case 'done': {
        await closeWait();
        const record = await write((h) => {
          h.progress = action.on === 'new' ? (back ? 'kept' : 'released') : 'restored';
          if (h.outAt) h.backAt ??= new Date(observed.at).toISOString();
        });
        const done = record.hosts[instanceId]!;
        if (done.outAt && done.backAt) timings.outOfServiceMs = Date.parse(done.backAt) - Date.parse(done.outAt);
        return { status: 'done', on: action.on, timings };
      }
      case 'wait':
        waiting ??= await ctx.steps.open(action.step, label);
        waitPolls += 1;
        if (action.for === 'healthy') {
          healthWaitSince ??= Date.now();
          await awaitProbe(ctx, host.address, healthWaitSince, action.until);
        } else {
          await sleep(pollDelay(waitPolls, ctx.pollMs, ctx.pollMs * 10));
        }
        continue;
      case 'fail':
      case 'attention': {
        const result: HostResult = { status: action.kind === 'fail' ? 'failed' : 'attention', step: action.step, reason: action.reason };
        if (!waiting) await (await ctx.steps.open(action.step, label)).failed(action.reason);
        await write((h) => {
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
      troubleFrom = 'effect';
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
    await write((h) => {
      h.progress = 'in-progress';
      h.intent = { action: action.step, at: now };
      if (action.kind === 'deregister') h.deregisteredAt = now;
      if (action.kind === 'register') h.registeredAt = now;
      if (action.kind === 'deregister' || action.kind === 'stop-old') h.outAt ??= now;
      if (action.kind === 'start-new' || action.kind === 'start-old') delete h.smokePassed;
    });
    // The lease may have been given up while the intent was written: then no effect, not even this one.
    ctx.signal?.throwIfAborted();
    const span = await ctx.steps.open(action.step, label);
    let learnt: { started?: string; smokePassed?: string };
    // The half of the next observation this effect cannot change is read while it runs.
    const touchesBalancers = action.kind === 'deregister' || action.kind === 'register';
    const recorded = ctx.release.record.hosts[instanceId]!;
    prefetched = touchesBalancers ? { containers: observeContainers(ctx, recorded, session) } : { balancers: observeBalancers(ctx, recorded) };
    // Settled even if nobody reads them (an effect that fails ends the turn): no unhandled rejection.
    Object.values(prefetched).forEach((p: Promise<unknown>) => p.catch(() => undefined));
    try {
      learnt = await perform(ctx, host, session, action, observed);
    } catch (error) {
      if (error instanceof ContainerNotFoundError) {
        // Gone meanwhile (removed by hand, or by an earlier turn): the next observation says what holds.
        await span.done();
        continue;
      }
      // Read while an effect that failed half-way ran: not to be trusted for the next decision.
      prefetched = {};
      const reason = (error as Error).message;
      await span.failed(reason, error instanceof SmokeFailed ? undefined : error);
      troubleFrom = 'effect';
      const failedAt = new Date().toISOString();
      await write((h) => void (h.outcome = { action: action.step, at: failedAt, ok: false, error: reason }));
      const result = await trouble(action.step, reason, error);
      if (result) {
        if (result.status === 'failed') await write((h) => void (h.failure = { step: action.step, reason }));
        return finish(result);
      }
      continue;
    }
    if (action.kind === 'register' || action.kind === 'deregister') {
      // The readings may lag the call: wait for them to show it rather than decide (and call) again.
      const called = action.kind === 'register' ? action.to : action.from;
      const refs = called.map((key) => refOf(ctx.plan, key));
      const readings = await awaitCallTaken(ctx.loadBalancers, refs, instanceId, action.kind, { firstMs: ctx.pollMs, maxMs: ctx.pollMs * 10, timeoutMs: ctx.readingLagMs ?? 30_000, ...(ctx.signal ? { signal: ctx.signal } : {}) });
      // The readings that showed the call, taken a moment ago, are the next observation's load balancer
      // side when they cover every load balancer of the release; every later turn reads them afresh.
      if (readings && ctx.terms.loadBalancers.every((key) => called.includes(key))) {
        prefetched.balancers = Promise.resolve(called.map((key, i) => [key, readings[i]!] as const));
      }
    }
    const durationMs = await span.done();
    if (action.kind === 'stop-old') timings.stopMs += durationMs;
    if (action.kind === 'start-new') timings.startMs += durationMs;
    troubleSince = troubleFrom = undefined;
    const doneAt = new Date().toISOString();
    outcome = (draft) => {
      const h = draft.hosts[instanceId]!;
      h.outcome = { action: action.step, at: doneAt, ok: true };
      if (learnt.started) h.started = learnt.started;
      if (learnt.smokePassed) h.smokePassed = learnt.smokePassed;
    };
  }
}
