import { performance } from 'node:perf_hooks';
import * as say from '../chat/release-messages.js';
import { releaseHeld } from '../chat/control-messages.js';
import type { Chat } from '../chat/chat.js';
import type { ReleaseConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import { outcomeOf, type Rollout, type RolloutOutcome } from '../rollout/rollout.js';
import { askedBy, type StopRequest, type TargetLock } from '../state/control.js';
import { isFinal, type ReleaseRecord } from '../state/release-record.js';
import { RecordedRelease } from '../state/recorded-release.js';
import { LeaseLostError, type ReleaseStore, type TargetLease, type TargetRelease } from '../state/release-store.js';
import type { Vouched } from '../request/vouching.js';
import { endStoppedBeforeStart } from '../rollout/release-end.js';
import { carryRelease } from './carry-release.js';
import { changedHosts, gateRelease, isWaiting, newer, type GateVerdict, type OtherRelease } from './target-gates.js';
import { leaseCallLimit, leaseTiming } from './lease-timing.js';

// Who runs which release, when. Releases to different targets run side by side (at most `parallel`
// on this worker); one target has one release at a time, across every worker, by its lease in the
// store: taken before the release starts, renewed by heartbeat, given up at the end. A worker that
// cannot renew gives the lease up by its own monotonic clock early enough that no AWS call of its own
// outlives the lease (lease-timing.ts): the lease's signal aborts every AWS call of the release in
// flight and ends their retries, abandons the Docker calls of its host sessions (a request the
// engine already received may still be carried out by it), and the worker takes no new step (every
// write is fenced by the lease, and it writes before it acts). Another worker takes the lease once
// it has seen it go unrenewed for a full period, and carries the release on from its record.
//
// Before a release that has not started yet (or was stopped at a safe point) takes its target, the
// gate (target-gates.ts) decides in one order: an operator's stop of a release that changed nothing
// ends it at once (even while the target is locked); newest wins, by the request's signed creation
// time (then id), against every other release of the target the store knows and the newest that
// started on it as its lease names it (DynamoDB); a release that has not started waits while another
// of its target is half-way; a lock holds back a release that has changed no host. A release stopped
// at a safe point that had already changed hosts gives way only to a newer one that has passed
// preflight; until then it waits, and the newer one goes first: if the newer one is refused (its
// preflight failed), this one resumes, so the target never ends on two images with nothing pending.
//
// A held release stays unfinished in the store, never refused and never expiring, and a sweep takes
// it up once the lock is lifted or has run out. Its record says who locked the target and why (`held`,
// which `show` and `enqueue --wait` print), and chat says so once per release (again only if the lock
// changes). A release already under way is not held: stopping it is `harbormaster stop`, which the
// rollout reads at its decisions (readControl).

export type TakeResult =
  /** Not now: the release itself already runs here, its target is busy (here or on another worker), or every slot is taken. */
  | { readonly status: 'busy'; readonly reason: string; readonly sameRelease?: boolean }
  /** Ended (or already ended): succeeded, rolled back, failed, refused or superseded. */
  | { readonly status: 'ended'; readonly outcome: RolloutOutcome }
  /** Stopped at a safe point, lost its lease, or broke off: its record says where it stands. */
  | { readonly status: 'unfinished'; readonly reason: string };

export interface SchedulerDeps {
  readonly store: ReleaseStore;
  readonly rollout: Rollout;
  /** What vouches for a record (vouching.ts), asked at every take-up before anything is done on its behalf. */
  readonly vouch: (record: ReleaseRecord) => Promise<Vouched>;
  readonly logger: Logger;
  readonly workerId: string;
  readonly leaseMs: number;
  readonly parallel: number;
  /** Aborted when the worker is asked to stop: releases reach their next safe point. */
  readonly stopRequested: AbortSignal;
  /** Aborted when this worker may no longer act on its store at all (its state directory was taken over): every lease is lost at once. */
  readonly storeLost?: AbortSignal;
  readonly chat?: Chat;
  /** Told when a target frees up on this worker: releases waiting for it can be taken up at once. */
  readonly onTargetFree?: (target: string) => void;
}

export { changedHosts } from './target-gates.js';

/**
 * What a person must look at when a record that says it was under way is refused: the worker put
 * nothing back for it, so whatever it says was suspended, muted or taken out may still be.
 */
function untouchedLeftovers(record: ReleaseRecord): string[] {
  const suspended = Object.entries(record.scaling ?? {}).filter(([, g]) => g.phase === 'suspending' || g.phase === 'suspended' || g.phase === 'resuming');
  const muted = record.alarms && (record.alarms.phase === 'muting' || record.alarms.phase === 'muted' || record.alarms.phase === 'unmuting') ? record.alarms.names : [];
  const out = Object.values(record.hosts ?? {}).filter((h) => h.progress === 'in-progress' || h.progress === 'attention');
  return [
    `the record of ${record.releaseId} says it was under way, but nothing vouches for it: this worker put nothing back for it; look at ${record.target}'s hosts (harbormaster hosts TARGET --ssh)`,
    ...suspended.map(([name, g]) => `the record says Auto Scaling ${name} had ${g.suspend.join(', ')} suspended by the release: resume them if they still are`),
    ...(muted.length > 0 ? [`the record says the alarms ${muted.join(', ')} were muted by the release: unmute them if they still are`] : []),
    ...out.map((h) => `the record says ${h.name ?? h.address} (${h.instanceId}) was being released: check it is in service`),
  ];
}

export class ReleaseScheduler {
  /** Targets with a release running on this worker. */
  private readonly running = new Map<string, string>();

  constructor(private readonly deps: SchedulerDeps) {}

  /** Runs the release to its end if its target and a slot are free; says why not otherwise. */
  async take(releaseId: string, logger: Logger, occasion: 'new' | 'redelivered' | 'repair' | 'takeover'): Promise<TakeResult> {
    const { store } = this.deps;
    if (this.deps.stopRequested.aborted || this.deps.storeLost?.aborted) return { status: 'busy', reason: 'this worker is stopping' };
    const record = await store.get(releaseId);
    if (!record) throw new Error(`release ${releaseId} is not in the store`);
    if (isFinal(record.status)) return { status: 'ended', outcome: outcomeOf(record) };
    const target = record.target;
    const here = this.running.get(target);
    if (here === releaseId) return { status: 'busy', reason: 'this release already runs on this worker', sameRelease: true };
    if (here !== undefined) return { status: 'busy', reason: `another release of ${target} runs on this worker` };
    if (this.running.size >= this.deps.parallel) return { status: 'busy', reason: `${this.deps.parallel} release(s) already run on this worker` };
    this.running.set(target, releaseId);
    let ended = false;
    try {
      const takenAt = performance.now();
      const lease = await store.acquireLease(target, this.deps.workerId, this.deps.leaseMs);
      if (!lease) return { status: 'busy', reason: `another worker holds ${target}` };
      const result = await this.underLease(releaseId, lease, takenAt, logger, occasion);
      ended = result.status === 'ended';
      return result;
    } finally {
      this.running.delete(target);
      // Only a release that ended here frees its target for the next one at once. A target another
      // worker holds is freed by that worker, and a release that broke off (AWS throttling, say) is
      // taken up again by the periodic sweep: neither sets off a sweep straight away.
      if (ended) this.deps.onTargetFree?.(target);
    }
  }

  private async underLease(releaseId: string, lease: TargetLease, takenAt: number, logger: Logger, occasion: 'new' | 'redelivered' | 'repair' | 'takeover'): Promise<TakeResult> {
    const { store } = this.deps;
    const lost = new AbortController();
    const timing = leaseTiming(this.deps.leaseMs);
    let held = lease;
    const loseIt = (error: LeaseLostError) => {
      if (lost.signal.aborted) return;
      logger.error({ err: error, target: lease.target }, 'lease lost: this worker stops acting on the target');
      lost.abort(error);
    };
    // Given up by this worker's own monotonic clock, holdMs after it sent the last renewal that
    // succeeded, whatever the reason it was not renewed since (the store unreachable, throttled).
    let renewedAt = takenAt;
    let giveUp: NodeJS.Timeout | undefined;
    /** The release is over here: a renewal answered late arms nothing. */
    let over = false;
    const holdFrom = (sentAt: number) => {
      if (over || sentAt < renewedAt || lost.signal.aborted) return;
      renewedAt = sentAt;
      clearTimeout(giveUp);
      giveUp = setTimeout(() => loseIt(new LeaseLostError(lease.target, 'it could not be renewed in time')), Math.max(0, sentAt + timing.holdMs - performance.now()));
    };
    holdFrom(takenAt);
    const storeLost = this.deps.storeLost;
    const onStoreLost = () => loseIt(new LeaseLostError(lease.target, `this worker may no longer act on its store (${String((storeLost?.reason as Error | undefined)?.message ?? storeLost?.reason)})`));
    if (storeLost?.aborted) onStoreLost();
    else storeLost?.addEventListener('abort', onStoreLost, { once: true });
    const renewal = setInterval(() => {
      const sentAt = performance.now();
      store.renewLease(held, this.deps.leaseMs).then(
        (renewed) => {
          if (lost.signal.aborted) return;
          held = renewed;
          holdFrom(sentAt);
        },
        (error: unknown) => {
          if (error instanceof LeaseLostError) return loseIt(error);
          logger.warn({ err: error, target: lease.target }, 'renewing the lease failed; trying again');
        },
      );
    }, timing.renewEveryMs);
    try {
      // Read again under the lease: the release may have moved while this worker waited for it.
      const record = await store.get(releaseId);
      if (!record) throw new Error(`release ${releaseId} is not in the store`);
      if (isFinal(record.status)) return { status: 'ended', outcome: outcomeOf(record) };
      const release = new RecordedRelease(store, record, { lease, leaseLost: lost.signal });
      const vouched = await this.deps.vouch(record);
      if (!vouched.ok) return { status: 'ended', outcome: await this.refuseUnvouched(release, vouched.reason, logger) };
      const readControl = () => store.control(record.target);
      const verdict = isWaiting(record) ? await this.gate(record, lease) : ({ kind: 'go' } as const);
      switch (verdict.kind) {
        case 'stop':
          return { status: 'ended', outcome: await this.stopBeforeStart(release, verdict.stop, logger) };
        case 'supersede':
          return { status: 'ended', outcome: await this.supersede(release, verdict.by, logger) };
        case 'wait':
          return { status: 'busy', reason: verdict.reason };
        case 'hold':
          return await this.hold(release, verdict.lock, logger);
        case 'go':
          if (release.record.held) {
            await release.update((draft) => {
              delete draft.held;
              if (draft.reason?.startsWith('waiting: ')) delete draft.reason;
            });
          }
      }
      const outcome = await carryRelease(release, { rollout: this.deps.rollout, releaseConfig: vouched.releaseConfig, logger, stopRequested: this.deps.stopRequested, occasion, leaseLost: lost.signal, leaseCalls: leaseCallLimit(lost.signal, timing), readControl });
      if (!outcome) return { status: 'unfinished', reason: lost.signal.aborted ? 'the lease was lost' : 'the release broke off before its end' };
      if (outcome.status === 'interrupted') return { status: 'unfinished', reason: outcome.reason };
      return { status: 'ended', outcome };
    } finally {
      over = true;
      clearInterval(renewal);
      clearTimeout(giveUp);
      storeLost?.removeEventListener('abort', onStoreLost);
      if (!lost.signal.aborted) await store.releaseLease(held).catch((error: unknown) => logger.warn({ err: error }, 'giving the lease up failed; it expires on its own'));
    }
  }

  /**
   * What the gate needs (target-gates.ts): the target's other releases, the newest that started on it
   * as the lease said when it was taken (read with it, consistently: an index of the target's releases
   * that lags cannot hide it), and its control. Which of the newer ones are releases for new hosts is
   * read from their records: those never supersede a request.
   */
  private async gate(record: ReleaseRecord, lease: TargetLease): Promise<GateVerdict> {
    const { store } = this.deps;
    const [others, control] = await Promise.all([store.releasesOf(record.target), store.control(record.target)]);
    const repeated = record.newHosts ? await store.get(record.newHosts.of).catch(() => undefined) : undefined;
    // Judged by its own (newest) time it could go after a newer release covered its hosts: not now.
    if (record.newHosts && !repeated) return { kind: 'wait', reason: `the release ${record.newHosts.of} it repeats cannot be read now` };
    const repeats = repeated ? { createdAt: repeated.request.createdAt, releaseId: repeated.releaseId } : undefined;
    const mine = repeats ?? { createdAt: record.request.createdAt, releaseId: record.releaseId };
    // A read that fails ends this take-up (the next sweep tries again): taken for a CI request, a
    // release for new hosts could supersede one.
    const annotate = async (other: TargetRelease): Promise<OtherRelease> => (newer(other, mine) ? { ...other, newHosts: (await store.get(other.releaseId))?.newHosts !== undefined } : other);
    const known = await Promise.all(others.filter((other) => other.releaseId !== record.releaseId).map(annotate));
    const newestStarted = lease.newest ? await annotate({ ...lease.newest, status: 'running' }) : undefined;
    return gateRelease({ record, others: known, newestStarted, control, now: new Date(), repeats });
  }

  /** Stopped by an operator before it changed anything: it ends at once, whatever else holds the target. */
  private async stopBeforeStart(release: RecordedRelease, stop: StopRequest, logger: Logger): Promise<RolloutOutcome> {
    const { outcome, message } = await endStoppedBeforeStart(release, stop);
    logger.warn({ by: stop.by, note: stop.note }, 'stopped by an operator before it began');
    this.deps.chat?.post(message);
    return outcome;
  }

  /** Leaves the release waiting for the lock; records and says who holds the target, once per lock. */
  private async hold(release: RecordedRelease, lock: TargetLock, logger: Logger): Promise<TakeResult> {
    const { target } = release.record;
    const reason = `${target} is locked by ${askedBy(lock)} until ${lock.until}: ${lock.reason}`;
    const said = release.record.held;
    if (!said || said.by !== askedBy(lock) || said.reason !== lock.reason || said.until !== lock.until) {
      await release.update((draft) => {
        draft.held = { by: askedBy(lock), reason: lock.reason, until: lock.until, since: said?.since ?? new Date().toISOString() };
        draft.reason = `waiting: ${reason}`;
      });
      logger.warn({ lockedBy: lock.by, lockReason: lock.reason, until: lock.until }, 'release waits: its target is locked');
      this.deps.chat?.post(releaseHeld({ target, image: release.record.request.image, releaseId: release.releaseId, lock: { ...lock, by: askedBy(lock) } }));
    }
    return { status: 'busy', reason: `waiting: ${reason}` };
  }

  /**
   * A record nothing vouches for: nothing is done on its behalf, on any host or in AWS. One that had
   * not started is refused; one that claims to be under way is failed and left to a person, who can
   * tell from the fleet whether anything ever ran.
   */
  private async refuseUnvouched(release: RecordedRelease, why: string, logger: Logger): Promise<RolloutOutcome> {
    const started = release.record.status !== 'accepted';
    const reason = `not vouched for: ${why}; nothing was done on its behalf`;
    await release.update((draft) => {
      draft.status = started ? 'failed' : 'refused';
      draft.reason = reason;
      draft.finishedAt = new Date().toISOString();
      if (started) draft.attention = [...(draft.attention ?? []), ...untouchedLeftovers(release.record)];
    });
    logger.error({ reason: why, recordedStatus: release.record.status }, 'release record refused: nothing vouches for it');
    this.deps.chat?.post(say.releaseRefused({ target: release.record.target, image: release.record.request?.image ?? 'unknown', releaseId: release.releaseId, reason }));
    return started ? { status: 'failed', reason } : { status: 'refused', reason };
  }

  private async supersede(release: RecordedRelease, by: TargetRelease, logger: Logger): Promise<RolloutOutcome> {
    const newerRecord = await this.deps.store.get(by.releaseId).catch(() => undefined);
    const reason = `a newer release of ${release.record.target} (${by.releaseId}, requested at ${by.createdAt}${newerRecord ? `, ${newerRecord.request.image}` : ''}) came first`;
    await release.update((draft) => {
      draft.status = 'superseded';
      draft.reason = reason;
      draft.finishedAt = new Date().toISOString();
    });
    logger.warn({ newer: by.releaseId, newerCreatedAt: by.createdAt, newerStatus: by.status }, 'release superseded');
    this.deps.chat?.post(
      say.releaseSuperseded({ target: release.record.target, image: release.record.request.image, releaseId: release.releaseId, changed: changedHosts(release.record), newer: { releaseId: by.releaseId, createdAt: by.createdAt, ...(newerRecord ? { image: newerRecord.request.image } : {}) } }),
    );
    return { status: 'superseded', reason };
  }
}
