import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger.js';
import type { AdmissionVerdict, HandlerVerdict } from '../queue/consumer.js';
import { judgeNewRequest, openRequest, type AcceptancePolicy, type RefusalCode } from '../request/acceptance.js';
import { describeTarget, type ReleaseRequest } from '../request/release-request.js';
import type { SigningKey, StoredEnvelope } from '../request/signed-envelope.js';
import type { QueueMessage, WorkQueue } from '../queue/sqs-queue.js';
import { isFinal, newReleaseRecord, whereItStands, type ReleaseRecord } from '../state/release-record.js';
import { DamagedRecordError, type ReleaseStore } from '../state/release-store.js';
import type { ReleaseScheduler } from './release-scheduler.js';

// What the worker does with one message, in two passes. Admission, quick and run for every message of
// one receive before any is handled: an unauthentic or malformed message is refused into the
// dead-letter queue. A request whose release the store already knows is never judged again as if it
// were new: a finished one is acknowledged, an unfinished one is carried on from its record (whatever
// its age). Only a request seen for the first time is judged (its age when the queue received it, the
// target, the image), then claimed in the store. So several requests for one target received together
// are all known before any starts. Then handling: the scheduler runs the release if its target and a
// slot are free (newest wins). Once claimed, the release state holds the request: if its target is
// busy, the message is acknowledged and the release waits in the state, to be taken up when the
// target is free (by this worker when its release of the target ends, or by any worker's sweep).
// Waiting therefore never counts against the queue's redrive policy, and never expires a request. The
// message is also acknowledged once the release has ended; a release stopped at a safe point (or
// taken over by another worker) leaves it on the queue.
//
// Several workers may share a queue only if they serve the same targets. A request for a target this
// worker does not serve is handed back for a worker that does, and refused as unknown-target only once
// it has been delivered `unservedDeliveries` times.

export interface RefusalNotice {
  readonly code: RefusalCode;
  readonly reason: string;
  /**
   * Its signature was verified with a key the worker holds before it was refused (an invalid, expired
   * or unserved request); false for a message nobody is known to have written (not JSON, no envelope,
   * a key the worker does not hold, a signature that does not match).
   */
  readonly authentic: boolean;
  readonly messageId: string;
  readonly releaseId?: string;
  /** The dead-letter queue could not take it: where its body is kept instead, and why. */
  readonly keptAt?: string;
  readonly deadLetterError?: string;
}

export interface RequestHandlerDeps {
  readonly queue: WorkQueue;
  readonly policy: AcceptancePolicy;
  /** The keys as they are now (a key ring that re-reads rotated key files); default policy.keys. */
  readonly currentKeys?: () => ReadonlyMap<string, SigningKey>;
  readonly scheduler: ReleaseScheduler;
  readonly store: ReleaseStore;
  readonly logger: Logger;
  readonly workerId: string;
  /** Deliveries of a request for a target this worker does not serve before it is refused. */
  readonly unservedDeliveries: number;
  readonly now?: () => Date;
  /** Told of every refusal (chat: a message for an authentic one, a count for the rest); must not throw or block for long. */
  readonly onRefused?: (notice: RefusalNotice) => Promise<void> | void;
  /** Told when a release's record cannot be read at all (chat). */
  readonly onUnreadable?: (error: DamagedRecordError) => void;
}

/**
 * A request for a target this worker does not serve is handed back to stay away 1 s, after a pause of
 * up to 1 s: visibility is counted in whole seconds from the hand-back, and without the pause this
 * worker's own next polls would fall in step with it and see it first every time. The poll loop waits
 * the pause out without a handling slot, so many such requests never hold up the others.
 */
const UNSERVED_HAND_BACK_SECONDS = 1;
const unservedHandBack = () => ({ handBackSeconds: UNSERVED_HAND_BACK_SECONDS, afterMs: Math.floor(Math.random() * 1_000) });

export function createRequestHandler(deps: RequestHandlerDeps) {
  const now = deps.now ?? (() => new Date());

  /**
   * Dead-letters a refused message (the queue sends the refusals of one receive together), logs it (a
   * message nobody is known to have written at info, an authentic request at warn, one the dead-letter
   * queue could not take at error) and tells onRefused.
   */
  const refuse = async (message: QueueMessage, refusal: { code: RefusalCode; reason: string; authentic: boolean; releaseId?: string }) => {
    const result = await deps.queue.deadLetter(message, { code: refusal.code, reason: refusal.reason });
    const notice: RefusalNotice = {
      code: refusal.code,
      reason: refusal.reason,
      authentic: refusal.authentic,
      messageId: message.id,
      ...(refusal.releaseId ? { releaseId: refusal.releaseId } : {}),
      ...(result.deadLettered ? {} : { keptAt: result.keptAt, deadLetterError: result.error }),
    };
    const where = result.deadLettered ? { deadLettered: true } : { deadLettered: false, keptAt: result.keptAt, deadLetterError: result.error };
    const level = !result.deadLettered ? 'error' : refusal.authentic ? 'warn' : 'info';
    deps.logger[level]({ messageId: message.id, releaseId: refusal.releaseId, refusal: refusal.code, reason: refusal.reason, authentic: refusal.authentic, ...where }, 'request refused');
    try {
      await deps.onRefused?.(notice);
    } catch (error) {
      deps.logger.warn({ err: error }, 'reporting the refusal failed');
    }
  };

  /**
   * An authentic request that is refused (its signature checked: nobody else can name its release id)
   * is recorded as refused, so that CI waiting on it (`enqueue --wait`) learns why, and a duplicate of
   * it is acknowledged. Best effort: the dead-letter queue keeps it either way.
   */
  async function recordRefusal(request: ReleaseRequest, keyId: string, envelope: StoredEnvelope, reason: string, log: Logger): Promise<void> {
    try {
      // Claimed already refused, in one write: a worker killed half-way never leaves it `accepted`
      // (a sweep would then carry it as a release).
      const record = newReleaseRecord({ request, keyId, envelope, target: describeTarget(request.target), deployment: '', now: now(), worker: deps.workerId });
      await deps.store.claim({ ...record, status: 'refused', reason, finishedAt: record.acceptedAt });
    } catch (error) {
      log.warn({ err: error }, 'recording the refusal in the release state failed; the dead-letter queue has it');
    }
  }

  /** What admission learnt of a message that still needs handling. */
  const admitted = new WeakMap<QueueMessage, { releaseId: string; log: Logger; occasion: 'new' | 'redelivered' }>();

  /**
   * The quick pass: authenticated, judged if new, and claimed in the store, or acknowledged or refused
   * at once. Run for every message of a receive before any of them is handled.
   */
  async function admit(message: QueueMessage): Promise<AdmissionVerdict> {
    const keys = deps.currentKeys?.() ?? deps.policy.keys;
    const opened = openRequest(message.body, keys);
    if (!opened.ok) {
      await refuse(message, opened);
      return 'done';
    }
    const { request, keyId, envelope } = opened;
    const log = deps.logger.child({ releaseId: request.releaseId, target: describeTarget(request.target), image: request.image });

    let known: ReleaseRecord | undefined;
    try {
      known = await deps.store.get(request.releaseId);
    } catch (error) {
      if (!(error instanceof DamagedRecordError)) throw error;
      // Starting it over would take what the damaged release changed for "before": leave it to a person.
      log.error({ err: error }, 'the record of this release cannot be read: the request is acknowledged and its target left as it is');
      deps.onUnreadable?.(error);
      await deps.queue.acknowledge(message);
      return 'done';
    }

    if (known) {
      if (isFinal(known.status)) {
        log.info({ status: known.status, finishedAt: known.finishedAt, receiveCount: message.receiveCount }, 'release already done; duplicate delivery acknowledged without a rollout');
        await deps.queue.acknowledge(message);
        return 'done';
      }
      log.info({ found: whereItStands(known), receiveCount: message.receiveCount }, 'request of a release already known: carried on from its record, not judged again');
      admitted.set(message, { releaseId: request.releaseId, log, occasion: 'redelivered' });
      return 'handle';
    }
    const verdict = judgeNewRequest(request, keyId, { ...deps.policy, keys }, message.sentAt ?? now());
    if (!verdict.ok) {
      if (verdict.code === 'unknown-target' && message.receiveCount < deps.unservedDeliveries) {
        log.warn({ reason: verdict.reason, receiveCount: message.receiveCount, unservedDeliveries: deps.unservedDeliveries }, 'request for a target this worker does not serve: handed back for a worker that does');
        return unservedHandBack();
      }
      const refusal = verdict.code === 'unknown-target' ? { ...verdict, reason: `${verdict.reason} (no worker took it in ${message.receiveCount} deliveries)` } : verdict;
      await recordRefusal(request, keyId, envelope, refusal.reason, log);
      await refuse(message, { ...refusal, authentic: true });
      return 'done';
    }
    const { deployment } = verdict.release;
    const target = `${request.target.stack}/${request.target.release}/${deployment}`;
    const claimed = await deps.store.claim(newReleaseRecord({ request, keyId, envelope, target, deployment, now: now(), worker: deps.workerId }));
    if (!claimed.claimed && isFinal(claimed.record.status)) {
      log.info({ status: claimed.record.status }, 'release already done; duplicate delivery acknowledged without a rollout');
      await deps.queue.acknowledge(message);
      return 'done';
    }
    if (claimed.claimed) log.info({ requestedBy: request.requestedBy, source: request.source, deployment, receiveCount: message.receiveCount }, 'request accepted');
    admitted.set(message, { releaseId: request.releaseId, log, occasion: claimed.claimed ? 'new' : 'redelivered' });
    return 'handle';
  }

  /** The long pass: the release run to its end when its target and a slot are free. */
  async function handle(message: QueueMessage): Promise<HandlerVerdict> {
    const entry = admitted.get(message);
    if (!entry) {
      // Handled without admission (a caller that skips it): admit now.
      const verdict = await admit(message);
      if (verdict === 'done') return;
      if (verdict === 'handle') return handle(message);
      await sleep(verdict.afterMs ?? 0);
      return { handBackSeconds: verdict.handBackSeconds };
    }
    const { releaseId, log, occasion } = entry;
    const taken = await deps.scheduler.take(releaseId, log, occasion);
    switch (taken.status) {
      case 'busy':
        if (taken.sameRelease) log.info({ receiveCount: message.receiveCount }, 'release under way on this worker; duplicate delivery acknowledged');
        else log.info({ reason: taken.reason }, 'request waits: its target is busy; the release state holds it until the target is free');
        await deps.queue.acknowledge(message);
        return;
      case 'unfinished':
        // Stopped at a safe point or taken over by another worker: the message stays for whoever carries it on.
        return;
      case 'ended':
        await deps.queue.acknowledge(message);
        return;
    }
  }

  return { admit, handle };
}
