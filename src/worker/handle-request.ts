import type { Logger } from '../log/logger.js';
import { judgeMessage, type AcceptancePolicy, type RefusalCode } from '../request/acceptance.js';
import { describeTarget } from '../request/release-request.js';
import type { QueueMessage, WorkQueue } from '../queue/sqs-queue.js';
import type { Rollout, RolloutOutcome } from '../rollout/rollout.js';
import type { ReleaseLedger } from './release-ledger.js';

// What the worker does with one message: judge it, refuse it into the dead-letter queue, or hand it
// to the rollout and acknowledge it once the rollout has returned (success or failure: the rollout
// has restored the fleet either way, and retrying a failed release is a new request's job).

export interface RefusalNotice {
  readonly code: RefusalCode;
  readonly reason: string;
  readonly messageId: string;
  readonly releaseId?: string;
}

export interface RequestHandlerDeps {
  readonly queue: WorkQueue;
  readonly policy: AcceptancePolicy;
  readonly rollout: Rollout;
  readonly ledger: ReleaseLedger;
  readonly logger: Logger;
  readonly now?: () => Date;
  /** Told of every refusal (chat); must not throw or block for long. */
  readonly onRefused?: (notice: RefusalNotice) => Promise<void> | void;
}

export function createRequestHandler(deps: RequestHandlerDeps) {
  const now = deps.now ?? (() => new Date());
  return async function handleRequest(message: QueueMessage, context: { stopRequested: AbortSignal }): Promise<void> {
    const verdict = judgeMessage(message.body, deps.policy, now());
    if (!verdict.ok) {
      const notice: RefusalNotice = { code: verdict.code, reason: verdict.reason, messageId: message.id, ...(verdict.releaseId ? { releaseId: verdict.releaseId } : {}) };
      deps.logger.warn({ messageId: message.id, releaseId: verdict.releaseId, refusal: verdict.code, reason: verdict.reason }, 'request refused');
      await deps.queue.deadLetter(message, verdict);
      try {
        await deps.onRefused?.(notice);
      } catch (error) {
        deps.logger.warn({ err: error }, 'reporting the refusal failed');
      }
      return;
    }

    const { release } = verdict;
    const log = deps.logger.child({
      releaseId: release.request.releaseId,
      target: describeTarget(release.request.target),
      deployment: release.deployment,
      image: release.request.image,
    });
    const earlier = await deps.ledger.finished(release.request.releaseId);
    if (earlier) {
      log.info({ finishedAt: earlier.finishedAt, outcome: earlier.outcome }, 'release already done; duplicate delivery acknowledged without a rollout');
      await deps.queue.acknowledge(message);
      return;
    }

    log.info({ requestedBy: release.request.requestedBy, source: release.request.source, receiveCount: message.receiveCount }, 'request accepted');
    const started = Date.now();
    let outcome: RolloutOutcome;
    try {
      outcome = await deps.rollout.run(release, { logger: log, stopRequested: context.stopRequested });
    } catch (error) {
      log.error({ err: error }, 'rollout failed unexpectedly');
      outcome = { status: 'failed', reason: (error as Error).message };
    }
    const durationMs = Date.now() - started;
    if (outcome.status === 'stopped') {
      // Stopped at a safe point before the end: the request is left on the queue so that the next
      // worker (or this one, restarted) finishes it. The rollout skips hosts already on the image.
      log.warn({ outcome, durationMs }, 'release stopped before the end; the request will be delivered again');
      return;
    }
    log[outcome.status === 'succeeded' ? 'info' : 'warn']({ outcome, durationMs }, `release ${outcome.status}`);
    await deps.ledger.record({
      releaseId: release.request.releaseId,
      target: describeTarget(release.request.target),
      image: release.request.image,
      outcome: outcome.status,
      finishedAt: now().toISOString(),
    });
    await deps.queue.acknowledge(message);
  };
}
