import { setTimeout as sleep } from 'node:timers/promises';
import { ReconnectingHostSession } from '../host/reconnecting-session.js';
import type { HostSession } from '../host/host-session.js';
import type { Membership } from '../loadbalancer/load-balancers.js';
import type { Logger } from '../log/logger.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import { isPassing } from './passing-failures.js';
import type { RolloutEffects } from './release-runner.js';
import type { RolloutContext } from './rollout.js';
import { StepFailure, type StepLog } from './step-runner.js';

// The SSH sessions of a release: opened by preflight for a new release, opened again (with backoff)
// for one taken up again, and closed in one place.

export const REGISTERED: ReadonlySet<Membership> = new Set(['in-service', 'pending', 'unhealthy']);
export const hostLabel = (host: { name?: string | undefined; address: string }) => host.name ?? host.address;

/** Runs `work` over items with at most `limit` at once; every item settles. */
export async function bounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
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

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += Math.max(1, size)) chunks.push(items.slice(i, i + Math.max(1, size)));
  return chunks;
}

/** Closes every session; a session that fails to close is already gone. */
export async function closeAll(sessions: ReadonlyMap<string, HostSession>): Promise<void> {
  await Promise.all([...sessions.values()].map((s) => s.close().catch(() => undefined)));
}

/**
 * Sessions for a release taken up again; going forward, the image pulled again where a host still
 * needs it. A host that cannot be reached now (often the same incident that stopped the worker) is
 * not judged on the first try: going forward, one that still needs the image is tried again for
 * policy.hostRetrySeconds before the release turns back; every other host gets a session that
 * connects when first used, so the reconciler's own retry windows apply to it. Hosts that left the
 * target are not looked for.
 */
export async function reconnect(effects: RolloutEffects, release: RecordedRelease, steps: StepLog, log: Logger, context: RolloutContext): Promise<Map<string, HostSession>> {
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
        const session = sessions.get(host.instanceId) ?? (await steps.run('connect', hostLabel(host), () => effects.connector.connect(host.address, context.leaseLost, connectWith)));
        if (context.leaseLost) session.abortOn?.(context.leaseLost);
        sessions.set(host.instanceId, session);
        if (needsImage) await steps.run('pull', hostLabel(host), () => session.pull(release.record.request.image, effects.registryAuth(release.record.request)));
        return;
      } catch (error) {
        lastError = error;
        context.leaseLost?.throwIfAborted();
        // Asked to stop: no more waiting here; the release goes to its safe point from what it has.
        if (context.stopRequested.aborted) break;
        const passing = isPassing(error);
        if (attempt >= 3 && (!needsImage || !passing || Date.now() >= retryUntil)) break;
        await backOff(effects, attempt, context);
      }
    }
    if (!sessions.has(host.instanceId)) {
      log.warn({ host: hostLabel(host), reason: (lastError as Error).message }, 'host cannot be reached now; it is tried again when the release gets to it');
      const later = new ReconnectingHostSession(host.address, undefined, effects.connector, { attempts: 1, ...(connectWith ? { connectWith } : {}) });
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
export async function backOff(effects: Pick<RolloutEffects, 'reconnectBackoffMs'>, attempt: number, context: RolloutContext): Promise<void> {
  const backoff = effects.reconnectBackoffMs ?? 1_000;
  await sleep(Math.min(5 * backoff, backoff * attempt), undefined, { signal: context.stopRequested }).catch(() => undefined);
}

