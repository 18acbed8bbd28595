import type { HostSession } from '../host/host-session.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import type { TargetInstance } from '../target/target-instances.js';
import type { TargetPreparer } from './prepare.js';
import type { RolloutEffects } from './release-runner.js';
import type { RolloutContext } from './rollout.js';
import { backOff, chunk, hostLabel } from './sessions.js';
import { createStepLog } from './step-runner.js';

// The target looked at again once every batch is done: Launch is not suspended by default, so hosts
// may have joined (they are released too, as a batch of their own) or left (dropped) meanwhile.

/** The host is no longer a running instance of the target. */
export async function leftTarget(effects: RolloutEffects, release: RecordedRelease, instanceId: string): Promise<boolean> {
  const { request, deployment } = release.record;
  const running = await effects.instances.find({ stack: request.target.stack, release: request.target.release, deployment }).catch(() => undefined);
  return running !== undefined && !running.some((h) => h.instanceId === instanceId);
}

/**
 * Hosts that joined the target since the release began: recorded and added as a batch ('taken-in'),
 * or, when they cannot be (unreachable, the image not pulled, no rounds left), named with the reason.
 */
export async function takeInNewcomers(effects: RolloutEffects, preparer: TargetPreparer, release: RecordedRelease, sessions: Map<string, HostSession>, context: RolloutContext, mayTakeIn: boolean): Promise<'none' | 'taken-in' | { hosts: string[]; reason: string }> {
  const { request, deployment } = release.record;
  const plan = release.record.plan!;
  let running: TargetInstance[];
  try {
    // (The finder tries transient failures again itself.)
    running = await effects.instances.find({ stack: request.target.stack, release: request.target.release, deployment });
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
      joined = await preparer.preflight(newcomers, { image: request.image, auth: effects.registryAuth(request), pull: true, concurrency: plan.settings.policy.pullConcurrency, run: createStepLog(context.logger, effects.journal, { stopRequested: context.stopRequested, leaseLost: context.leaseLost }).run, engineSocket: plan.settings.engineSocket, signal: context.leaseLost });
    } catch (error) {
      context.leaseLost?.throwIfAborted();
      if (attempt < 3 || (Date.now() < retryUntil && !context.stopRequested.aborted)) {
        context.logger.warn({ err: error, attempt }, 'hosts that joined during the release cannot be prepared yet; trying again');
        await backOff(effects, attempt, context);
        continue;
      }
      context.logger.warn({ err: error }, 'hosts that joined during the release cannot be prepared: they are left as they are');
      const why = (error as Error).message.replace(/^preflight failed, nothing was changed: /, '');
      return { hosts: labels, reason: `they joined the target during the release and could not be prepared: ${why}` };
    }
  }
  const records = await Promise.all(newcomers.map((host) => preparer.observeBefore(host, joined.get(host.instanceId)!, plan.spec, plan.loadBalancers, release.record.target)));
  for (const [id, session] of joined) sessions.set(id, session);
  await release.update((draft) => {
    for (const record of records) draft.hosts[record.instanceId] = record;
    draft.plan = { ...draft.plan!, batches: [...draft.plan!.batches, ...chunk(records.map((r) => r.instanceId), draft.plan!.batchSize)] };
  });
  return 'taken-in';
}

