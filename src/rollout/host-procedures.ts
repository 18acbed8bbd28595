import { setTimeout as sleep } from 'node:timers/promises';
import type { RolloutSettings } from '../config/worker-config.js';
import { probeHttp } from '../health/http-probe.js';
import type { ContainerSpec, HostSession } from '../host/host-session.js';
import { describeLoadBalancer, type LoadBalancerRef, type LoadBalancers, type Membership } from '../loadbalancer/load-balancers.js';
import type { TargetInstance } from '../target/target-instances.js';
import type { HostStep } from './plan.js';
import { StepFailure, type StepRunner } from './step-runner.js';

// What happens to one host: the swap to the new container, and the way back to the previous one.
// Each HostStep of the plan maps to one function here; the waits poll the load balancers and the
// container itself, with deadlines from the configuration or the load balancers' own settings.

export interface HostContext {
  readonly host: TargetInstance;
  readonly session: HostSession;
  readonly loadBalancers: readonly LoadBalancerRef[];
  readonly lb: LoadBalancers;
  readonly settings: RolloutSettings;
  readonly spec: ContainerSpec;
  /** Name the live container is kept under for rollback during this release. */
  readonly previousName: string;
  readonly drainTimeoutMs: number;
  readonly inServiceTimeoutMs: number;
  readonly run: StepRunner;
  readonly pollMs?: number;
}

export interface HostTimings {
  outOfServiceMs: number;
  stopMs: number;
  startMs: number;
  healthyMs: number;
}

const label = (ctx: HostContext) => ctx.host.name ?? ctx.host.address;

async function waitFor(what: string, deadlineMs: number, pollMs: number, check: () => Promise<{ done: boolean; failure?: string; status?: string }>): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let last: string | undefined;
  for (;;) {
    const state = await check();
    if (state.failure) throw new Error(state.failure);
    if (state.done) return;
    last = state.status ?? last;
    if (Date.now() >= deadline) throw new Error(`${what} within ${Math.round(deadlineMs / 1000)} s${last ? ` (last: ${last})` : ''}`);
    await sleep(pollMs);
  }
}

async function memberships(ctx: HostContext): Promise<Array<[LoadBalancerRef, Membership]>> {
  return Promise.all(ctx.loadBalancers.map(async (lb) => [lb, await ctx.lb.membership(lb, ctx.host.instanceId)] as [LoadBalancerRef, Membership]));
}

async function waitHealthy(ctx: HostContext, containerId: string): Promise<void> {
  const { health } = ctx.settings;
  await waitFor('container did not become healthy', health.timeoutSeconds * 1000, health.intervalMs, async () => {
    const info = await ctx.session.inspect(containerId);
    if (!info) return { done: false, failure: 'container disappeared' };
    if (!info.running) return { done: false, failure: `container exited${info.exitCode !== undefined ? ` with code ${info.exitCode}` : ''}` };
    if (health.useImageHealthcheck && info.health === 'unhealthy') return { done: false, failure: "the image's HEALTHCHECK reports unhealthy" };
    const imageHealthy = !health.useImageHealthcheck || info.health === 'none' || info.health === 'healthy';
    const probe = await probeHttp(ctx.host.address, health);
    return { done: imageHealthy && probe.ok, status: probe.ok ? `image health ${info.health}` : probe.reason };
  });
}

async function register(ctx: HostContext): Promise<void> {
  for (const lb of ctx.loadBalancers) await ctx.lb.register(lb, ctx.host.instanceId);
}

async function waitInService(ctx: HostContext): Promise<void> {
  await waitFor('load balancers did not report the host in service', ctx.inServiceTimeoutMs, ctx.pollMs ?? 500, async () => {
    const states = await memberships(ctx);
    return { done: states.every(([, m]) => m === 'in-service'), status: states.map(([lb, m]) => `${describeLoadBalancer(lb)} ${m}`).join(', ') };
  });
}

async function deregister(ctx: HostContext): Promise<void> {
  for (const lb of ctx.loadBalancers) await ctx.lb.deregister(lb, ctx.host.instanceId);
}

/** Waits until no load balancer sends traffic. Past the draining timeout the load balancer has cut the connections itself. */
async function drain(ctx: HostContext, log: (message: string) => void): Promise<void> {
  try {
    await waitFor('draining did not end', ctx.drainTimeoutMs, ctx.pollMs ?? 500, async () => {
      const states = await memberships(ctx);
      return { done: states.every(([, m]) => m === 'out'), status: states.map(([lb, m]) => `${describeLoadBalancer(lb)} ${m}`).join(', ') };
    });
  } catch (error) {
    log(`${(error as Error).message}; the load balancers' draining timeout has passed, continuing`);
  }
}

/**
 * Takes one host from its live container to the new one. Records in `reached` each step that has
 * started, so that a failure knows exactly what to undo.
 */
export async function swapHost(ctx: HostContext, steps: readonly HostStep[], reached: Set<HostStep>, warn: (message: string) => void): Promise<HostTimings> {
  const host = label(ctx);
  const timings: HostTimings = { outOfServiceMs: 0, stopMs: 0, startMs: 0, healthyMs: 0 };
  const outStarted = Date.now();
  let newId: string | undefined;
  const timed = async <T>(step: HostStep, action: () => Promise<T>): Promise<[T, number]> => {
    reached.add(step);
    const started = Date.now();
    const result = await ctx.run(step, host, action);
    return [result, Date.now() - started];
  };
  for (const step of steps) {
    switch (step) {
      case 'deregister':
        await timed(step, () => deregister(ctx));
        break;
      case 'drain':
        await timed(step, () => drain(ctx, warn));
        break;
      case 'stop-old':
        [, timings.stopMs] = await timed(step, async () => {
          const live = await ctx.session.inspect(ctx.spec.name);
          if (!live) return;
          await ctx.session.remove(ctx.previousName).catch(() => undefined);
          await ctx.session.rename(live.id, ctx.previousName);
          await ctx.session.stop(ctx.previousName, ctx.spec.stopTimeoutSeconds);
        });
        break;
      case 'start-new':
        [newId, timings.startMs] = await timed(step, () => ctx.session.run(ctx.spec));
        break;
      case 'wait-healthy':
        [, timings.healthyMs] = await timed(step, () => waitHealthy(ctx, newId ?? ctx.spec.name));
        break;
      case 'smoke':
        await timed(step, async () => {
          const result = await probeHttp(ctx.host.address, ctx.settings.smoke!);
          if (!result.ok) throw new StepFailure('smoke', host, `smoke check failed: ${result.reason}`);
        });
        break;
      case 'register':
        await timed(step, () => register(ctx));
        break;
      case 'wait-in-service':
        await timed(step, () => waitInService(ctx));
        break;
    }
  }
  timings.outOfServiceMs = Date.now() - outStarted;
  return timings;
}

/**
 * Puts a host back on its previous container: out of the load balancers if it might be in, the new
 * container removed, the previous one renamed back, started, healthy, registered, in service.
 * `reached` says how far the swap went (all steps, for a host already done).
 */
export async function restoreHost(ctx: HostContext, reached: ReadonlySet<HostStep>, warn: (message: string) => void): Promise<void> {
  const host = label(ctx);
  if (reached.has('register')) {
    // The new container may be taking traffic: out first.
    await ctx.run('rollback-deregister', host, () => deregister(ctx));
    await ctx.run('rollback-drain', host, () => drain(ctx, warn));
  }
  if (!reached.has('stop-old')) {
    // The old container was never touched; only the membership may need putting back.
    if (reached.has('deregister')) {
      await ctx.run('rollback-register', host, () => register(ctx));
      await ctx.run('rollback-wait-in-service', host, () => waitInService(ctx));
    }
    return;
  }
  const previous = await ctx.session.inspect(ctx.previousName);
  if (!previous) {
    warn(`${host} had no previous container to go back to; it stays out of the load balancers`);
    return;
  }
  await ctx.run('rollback-remove-new', host, async () => {
    const current = await ctx.session.inspect(ctx.spec.name);
    if (current && current.id !== previous.id) await ctx.session.remove(current.id);
  });
  await ctx.run('rollback-start-previous', host, async () => {
    await ctx.session.rename(previous.id, ctx.spec.name);
    await ctx.session.start(ctx.spec.name);
  });
  await ctx.run('rollback-wait-healthy', host, () => waitHealthy(ctx, previous.id));
  if (ctx.loadBalancers.length > 0) {
    await ctx.run('rollback-register', host, () => register(ctx));
    await ctx.run('rollback-wait-in-service', host, () => waitInService(ctx));
  }
}

/** Removes this target's stopped previous containers beyond the number kept for rollback. */
export async function pruneOldContainers(ctx: HostContext, target: string, keep: number): Promise<number> {
  const old = (await ctx.session.list({ 'harbormaster.target': target }))
    .filter((c) => !c.running && c.name !== ctx.spec.name && c.name.startsWith(`${ctx.spec.name}-previous-`))
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const surplus = old.slice(keep);
  for (const container of surplus) await ctx.session.remove(container.id);
  return surplus.length;
}
