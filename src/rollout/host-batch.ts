import * as say from '../chat/release-messages.js';
import { probeHttp } from '../health/http-probe.js';
import type { HostSession } from '../host/host-session.js';
import { loadBalancerKey } from '../state/release-record.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import type { ReleaseTerms } from './host-decision.js';
import { reconcileHost, type HostReconcilerContext, type HostResult, type HostTimings } from './host-reconciler.js';
import { leftTarget } from './newcomers.js';
import type { RolloutEffects } from './release-runner.js';
import type { RolloutContext } from './rollout.js';
import { hostLabel } from './sessions.js';
import type { StepLog } from './step-runner.js';

// A set of hosts carried side by side by the host reconciler, forward or back. Every host's turn
// settles before an error goes on (the lease lost): the lease is never handed on while an effect of
// this worker still runs on a host of the target.

export function hostContext(effects: RolloutEffects, release: RecordedRelease, context: RolloutContext, steps: StepLog): HostReconcilerContext {
  const signal = context.leaseLost;
  const plan = release.record.plan!;
  const terms: ReleaseTerms = {
    releaseId: release.releaseId,
    containerName: plan.spec.name,
    loadBalancers: plan.loadBalancers.map(loadBalancerKey),
    smoke: plan.settings.smoke !== undefined,
    // Records made before health.waitForDocker existed do not have it: the probe alone decides for them too.
    waitForDocker: plan.settings.health.waitForDocker ?? false,
    healthTimeoutMs: plan.settings.health.timeoutSeconds * 1000,
    drainTimeoutMs: plan.drainTimeoutMs,
    inServiceTimeoutMs: plan.inServiceTimeoutMs,
  };
  return {
    release,
    plan,
    terms,
    target: release.record.target,
    loadBalancers: effects.loadBalancers,
    steps,
    log: context.logger,
    pollMs: effects.pollMs ?? 500,
    rollbackRetryMs: effects.rollbackRetryMs ?? plan.settings.policy.rollbackRetrySeconds * 1000,
    hostRetryMs: plan.settings.policy.hostRetrySeconds * 1000,
    // Counted from when this worker took the release up: a release resumed after a pause gets its full time.
    deadline: Date.now() + (effects.releaseTimeoutMs ?? plan.settings.policy.releaseTimeoutMinutes * 60_000),
    probe: effects.probe ?? probeHttp,
    ...(signal ? { signal } : {}),
    onTrouble: (event) => effects.chat.post(say.hostTrouble({ target: release.record.target, ...event })),
  };
}


/** Some hosts forward, side by side; a host that left the target meanwhile is dropped, not failed. */
/** Some hosts forward, side by side; a host that left the target meanwhile is dropped, not failed. */
export async function forwardHosts(effects: RolloutEffects, release: RecordedRelease, ids: readonly string[], sessions: ReadonlyMap<string, HostSession>, context: RolloutContext, hostCtx: HostReconcilerContext, reports: Array<{ host: string } & HostTimings>): Promise<'done' | 'turned-back'> {
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
      effects.chat.post(say.hostProgress({ target: release.record.target, host: hostLabel(host), index: released, total: total(), durationMs: result.timings.outOfServiceMs, outOfServiceMs: result.timings.outOfServiceMs }));
    } else if (await leftTarget(effects, release, id)) {
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
    // An alarm is the release's failure, not the host's.
    draft.failure = first.step === 'alarm' ? { step: first.step, reason: first.reason } : { host: hostLabel(draft.hosts[first.id]!), step: first.step, reason: first.reason };
  });
  return 'turned-back';
}

/** What going back did, for the release's end: hosts put back on their previous container, and what needs a person. */
export interface BackTally {
  readonly rolledBack: string[];
  readonly attention: string[];
}

/** Hosts back towards `goal` side by side; what each ended as goes into `tally`. */
export async function backHosts(release: RecordedRelease, ids: readonly string[], goal: 'new' | 'old', sessions: ReadonlyMap<string, HostSession>, hostCtx: HostReconcilerContext, tally: BackTally): Promise<void> {
  const settle = async (id: string) => {
    const host = release.record.hosts[id]!;
    const session = sessions.get(id);
    const result: HostResult = session ? await reconcileHost(hostCtx, id, session, goal) : { status: 'attention', step: 'connect', reason: 'the host cannot be reached' };
    if (result.status === 'done' && result.on === 'old' && goal === 'old') tally.rolledBack.push(hostLabel(host));
    // The kept copy was gone: the host stayed on the new container, which is said, never hidden.
    if (result.status === 'done' && result.on === 'new' && goal === 'old' && host.before.live) tally.attention.push(`${hostLabel(host)}: kept on the new image: the container live before the release (${host.before.live.id.slice(0, 12)}) is gone, nothing to go back to`);
    if (result.status !== 'done') {
      tally.attention.push(`${hostLabel(host)}: ${result.reason}`);
      if (result.status === 'attention' && !session) await release.update((draft) => void Object.assign(draft.hosts[id]!, { progress: 'attention', attention: result.reason }));
    }
  };
  const thrown = (await Promise.allSettled(ids.map(settle))).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (thrown) throw thrown.reason;
}

/** A released host left on the new image: going back would leave fewer than policy.minHealthy serving. */
export async function leaveHost(release: RecordedRelease, id: string, reason: string, tally: BackTally): Promise<void> {
  tally.attention.push(`${hostLabel(release.record.hosts[id]!)}: ${reason}`);
  await release.update((draft) => void Object.assign(draft.hosts[id]!, { attention: reason }));
}
