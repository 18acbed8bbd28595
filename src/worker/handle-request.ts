import type { Logger } from '../log/logger.js';
import { judgeNewRequest, openRequest, type AcceptancePolicy, type RefusalCode } from '../request/acceptance.js';
import { describeTarget } from '../request/release-request.js';
import type { QueueMessage, WorkQueue } from '../queue/sqs-queue.js';
import type { Rollout, RolloutOutcome } from '../rollout/rollout.js';
import { isFinal, newReleaseRecord, whereItStands, type ReleaseRecord } from '../state/release-record.js';
import { RecordedRelease } from '../state/recorded-release.js';
import { DamagedRecordError, type ReleaseStore } from '../state/release-store.js';
import { carryRelease } from './carry-release.js';

// What the worker does with one message. An unauthentic or malformed message is refused into the
// dead-letter queue. A request whose release the store already knows is never judged again as if it
// were new: a finished one is acknowledged, an unfinished one is carried on from its record (whatever
// its age). Only a request seen for the first time is judged (its age, the target, the image), then
// claimed in the store and handed to the rollout. The message is acknowledged once the release has
// ended; a release stopped at a safe point leaves it on the queue.

export interface RefusalNotice {
  readonly code: RefusalCode;
  readonly reason: string;
  readonly messageId: string;
  readonly releaseId?: string;
  /** The dead-letter queue could not take it: where its body is kept instead, and why. */
  readonly keptAt?: string;
  readonly deadLetterError?: string;
}

export interface RequestHandlerDeps {
  readonly queue: WorkQueue;
  readonly policy: AcceptancePolicy;
  readonly rollout: Rollout;
  readonly store: ReleaseStore;
  readonly logger: Logger;
  readonly workerId: string;
  readonly now?: () => Date;
  /** Told of every refusal (chat); must not throw or block for long. */
  readonly onRefused?: (notice: RefusalNotice) => Promise<void> | void;
  /** Told when a release's record cannot be read at all (chat). */
  readonly onUnreadable?: (error: DamagedRecordError) => void;
}

export function createRequestHandler(deps: RequestHandlerDeps) {
  const now = deps.now ?? (() => new Date());

  const refuse = async (message: QueueMessage, refusal: { code: RefusalCode; reason: string; releaseId?: string }) => {
    const result = await deps.queue.deadLetter(message, refusal);
    const notice: RefusalNotice = {
      code: refusal.code,
      reason: refusal.reason,
      messageId: message.id,
      ...(refusal.releaseId ? { releaseId: refusal.releaseId } : {}),
      ...(result.deadLettered ? {} : { keptAt: result.keptAt, deadLetterError: result.error }),
    };
    const where = result.deadLettered ? { deadLettered: true } : { deadLettered: false, keptAt: result.keptAt, deadLetterError: result.error };
    deps.logger[result.deadLettered ? 'warn' : 'error']({ messageId: message.id, releaseId: refusal.releaseId, refusal: refusal.code, reason: refusal.reason, ...where }, 'request refused');
    try {
      await deps.onRefused?.(notice);
    } catch (error) {
      deps.logger.warn({ err: error }, 'reporting the refusal failed');
    }
  };

  return async function handleRequest(message: QueueMessage, context: { stopRequested: AbortSignal }): Promise<void> {
    const opened = openRequest(message.body, deps.policy.keys);
    if (!opened.ok) return refuse(message, opened);
    const { request, keyId } = opened;
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
      return;
    }

    let release: RecordedRelease;
    let occasion: 'new' | 'redelivered' = 'redelivered';
    if (known) {
      if (isFinal(known.status)) {
        log.info({ status: known.status, finishedAt: known.finishedAt, receiveCount: message.receiveCount }, 'release already done; duplicate delivery acknowledged without a rollout');
        await deps.queue.acknowledge(message);
        return;
      }
      log.warn({ found: whereItStands(known), receiveCount: message.receiveCount }, 'request of a release already under way: carried on from its record, not judged again');
      release = new RecordedRelease(deps.store, known);
    } else {
      const verdict = judgeNewRequest(request, keyId, deps.policy, now());
      if (!verdict.ok) return refuse(message, verdict);
      const { deployment } = verdict.release;
      const target = `${request.target.stack}/${request.target.release}/${deployment}`;
      const claimed = await deps.store.claim(newReleaseRecord({ request, keyId, target, deployment, now: now(), worker: deps.workerId }));
      if (!claimed.claimed && isFinal(claimed.record.status)) {
        log.info({ status: claimed.record.status }, 'release already done; duplicate delivery acknowledged without a rollout');
        await deps.queue.acknowledge(message);
        return;
      }
      if (claimed.claimed) {
        occasion = 'new';
        log.info({ requestedBy: request.requestedBy, source: request.source, deployment, receiveCount: message.receiveCount }, 'request accepted');
      }
      release = new RecordedRelease(deps.store, claimed.record);
    }

    const outcome: RolloutOutcome | undefined = await carryRelease(release, { rollout: deps.rollout, releases: deps.policy.releases, logger: log, stopRequested: context.stopRequested, occasion });
    // Stopped at a safe point, or not carried to an end: the message stays for the next worker (or this one, restarted).
    if (!outcome || outcome.status === 'stopped') return;
    await deps.queue.acknowledge(message);
  };
}
