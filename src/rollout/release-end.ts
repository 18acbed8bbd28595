import * as say from '../chat/release-messages.js';
import type { ChatMessage } from '../chat/chat.js';
import type { HostSession } from '../host/host-session.js';
import { askedBy, type StopRequest } from '../state/control.js';
import type { Logger } from '../log/logger.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import type { ReleaseRecord, ReleaseStatus } from '../state/release-record.js';
import type { RolloutOutcome } from './rollout.js';
import { hostLabel } from './sessions.js';

// How a release ends, once its hosts are where they go and Auto Scaling and alarms are restored (or
// left to a person): one pure function from the record and what this take-up saw, then one write
// and one chat message.

export interface EndFacts {
  /** The worker was asked to stop and the release reached a safe point: it is resumed by the next start. */
  readonly interrupted: boolean;
  /** Hosts that joined the target during the release and could not be taken in, and why. */
  readonly notTakenIn?: { readonly hosts: string[]; readonly reason: string } | undefined;
  /** Restores that failed for good (a person must finish them). */
  readonly restoreLeft: readonly string[];
  /** Going back: hosts put back on their previous container, and what could not be put back. */
  readonly rolledBack: readonly string[];
  readonly attention: readonly string[];
  readonly durationMs: number;
}

export interface Ending {
  readonly status: Exclude<ReleaseStatus, 'accepted' | 'running' | 'superseded'>;
  readonly reason?: string;
  readonly attention?: string[];
  readonly message: ChatMessage;
}

/** The end of a release, from its record: never a success unless every present host is on the new image and everything was restored. */
export function finalOutcome(record: ReleaseRecord, facts: EndFacts): Ending {
  const present = Object.values(record.hosts).filter((h) => h.progress !== 'gone');
  const total = present.length;
  const released = present.filter((h) => h.progress === 'released');
  const image = record.request.image;
  const target = record.target;
  if (facts.interrupted) {
    return {
      status: 'interrupted',
      reason: `stopped on request at a safe point: ${released.length} of ${total} host(s) released`,
      message: say.releaseInterrupted({ target, image, released: released.length, total }),
    };
  }
  const touched = present.some((h) => h.progress !== 'pending');
  if (record.failure?.step === 'release-task' && record.releaseTask?.phase === 'failed' && !touched && facts.restoreLeft.length === 0) {
    // The task said no before any host left service: nothing of the release changed the fleet.
    const reason = `release task: ${record.failure.reason}`;
    return { status: 'refused', reason, message: say.releaseRefused({ target, image, releaseId: record.releaseId, reason }) };
  }
  if (record.direction === 'forward' && record.stop && !record.stop.rollback) {
    const attention = facts.restoreLeft.length > 0 ? { attention: [...facts.restoreLeft] } : {};
    return {
      status: facts.restoreLeft.length > 0 ? 'failed' : 'stopped',
      reason: `stopped by ${askedBy(record.stop)} at a safe point: ${released.length} of ${total} host(s) released${facts.restoreLeft.length > 0 ? `; not restored: ${facts.restoreLeft.join('; ')}` : ''}`,
      ...attention,
      message: say.releaseStopped({ target, image, released: released.length, total, by: askedBy(record.stop) }),
    };
  }
  const unreleased = present.filter((h) => h.progress !== 'released');
  if (record.direction === 'forward' && (unreleased.length > 0 || facts.notTakenIn)) {
    // Not every host of the target is on the new image (one joined too late, or could not be
    // reached): never a success. The hosts released stay released; the target needs releasing again.
    const left = [...unreleased.map(hostLabel), ...(facts.notTakenIn?.hosts ?? [])];
    const why = facts.notTakenIn?.reason ?? 'they joined the target during the release and could not be taken in';
    const reason = `not released: ${left.join(', ')} (${why})`;
    return { status: 'failed', reason, attention: [reason, ...facts.restoreLeft], message: say.releaseIncomplete({ target, image, released: released.map(hostLabel), notReleased: left, reason: why }) };
  }
  if (record.direction === 'forward' && facts.restoreLeft.length === 0) {
    return { status: 'succeeded', message: say.releaseSucceeded({ target, image, hosts: present.map(hostLabel), durationMs: facts.durationMs }) };
  }
  // A release task that may have run in part: a person must look, whatever else went back.
  const taskUnknown = record.failure?.step === 'release-task' && record.releaseTask?.phase === 'started' ? [`release task: ${record.failure.reason}`] : [];
  const attention = [...facts.attention, ...facts.restoreLeft, ...taskUnknown];
  const failure = record.failure ?? (record.direction === 'forward' ? { step: 'restore', reason: 'every host was released, but Auto Scaling or alarms could not be put back' } : { step: 'unknown', reason: 'the release turned back' });
  const reason = `${failure.host ? `${failure.host}: ` : ''}${failure.step}: ${failure.reason}`;
  return {
    status: attention.length > 0 ? 'failed' : 'rolled-back',
    reason,
    ...(attention.length > 0 ? { attention } : {}),
    message: say.releaseFailed({ target, image, ...(failure.host ? { host: failure.host } : {}), step: failure.step, reason: failure.reason, rolledBack: [...facts.rolledBack], attention }),
  };
}

/** Writes the end into the record and returns the rollout's outcome. */
export async function endRelease(release: RecordedRelease, ending: Ending): Promise<RolloutOutcome> {
  await release.update((draft) => {
    draft.status = ending.status;
    if (ending.reason !== undefined) draft.reason = ending.reason;
    else delete draft.reason;
    if (ending.attention) draft.attention = ending.attention;
    if (ending.status !== 'interrupted') draft.finishedAt = new Date().toISOString();
  });
  const reason = ending.reason ?? ending.status;
  if (ending.status === 'succeeded') return { status: 'succeeded', hosts: Object.values(release.record.hosts).filter((h) => h.progress !== 'gone').length };
  return { status: ending.status, reason };
}

/** Removes this target's stopped previous containers beyond the number kept for rollback. */
export async function prune(release: RecordedRelease, sessions: ReadonlyMap<string, HostSession>, log: Logger): Promise<void> {
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

/**
 * An operator's stop of a release that changed nothing: it ends stopped at once. Written here for the
 * gate before a start (release-scheduler.ts) and for a stop read just before preparing (release-runner.ts).
 */
export async function endStoppedBeforeStart(release: RecordedRelease, stop: StopRequest): Promise<{ outcome: RolloutOutcome; message: ChatMessage }> {
  const reason = `stopped by ${askedBy(stop)} before it began: nothing was changed`;
  await release.update((draft) => {
    draft.stop = { by: stop.by, at: stop.at, rollback: stop.rollback, ...(stop.note ? { note: stop.note } : {}) };
    draft.status = 'stopped';
    draft.reason = reason;
    draft.finishedAt = new Date().toISOString();
    delete draft.held;
  });
  const { target, request } = release.record;
  return { outcome: { status: 'stopped', reason }, message: say.releaseStopped({ target, image: request.image, released: 0, total: 0, by: askedBy(stop) }) };
}
