import { SQSClient } from '@aws-sdk/client-sqs';
import { clientOptions } from '../aws/clients.js';
import { heartbeatSeconds, type WorkerConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import { QueueConsumer } from '../queue/consumer.js';
import { SqsWorkQueue } from '../queue/sqs-queue.js';
import type { Rollout } from '../rollout/rollout.js';
import { loadWorkerKeys } from '../secrets/signing-keys.js';
import { createRequestHandler, type RefusalNotice } from './handle-request.js';
import { FileReleaseLedger, type ReleaseLedger } from './release-ledger.js';

// Assembles a worker from its configuration. Effects (the rollout, chat, the ledger) are injected so
// the same assembly runs in production, in the local fleet and in tests.

export interface WorkerParts {
  readonly rollout: Rollout;
  readonly logger: Logger;
  readonly env?: NodeJS.ProcessEnv;
  readonly ledger?: ReleaseLedger;
  readonly onRefused?: (notice: RefusalNotice) => Promise<void> | void;
  readonly backoffMinMs?: number;
}

export interface Worker {
  readonly consumer: QueueConsumer;
  /** Frees the worker's clients; call after the consumer has stopped. */
  close(): void;
}

export function createWorker(config: WorkerConfig, parts: WorkerParts): Worker {
  // Keys are read before anything starts, so a missing key stops the worker at start, not at the first request.
  const keys = loadWorkerKeys(config.signing.keys, parts.env);
  const sqs = new SQSClient(clientOptions(config.aws));
  const queue = new SqsWorkQueue(sqs, { queue: config.queue.url, deadLetter: config.queue.deadLetterUrl }, parts.logger);
  const handler = createRequestHandler({
    queue,
    policy: { keys, releases: config.releases, maxAgeSeconds: config.signing.maxAgeSeconds },
    rollout: parts.rollout,
    ledger: parts.ledger ?? new FileReleaseLedger(config.stateDirectory),
    logger: parts.logger,
    ...(parts.onRefused ? { onRefused: parts.onRefused } : {}),
  });
  const consumer = new QueueConsumer(
    queue,
    handler,
    {
      waitSeconds: config.queue.waitSeconds,
      visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
      heartbeatSeconds: heartbeatSeconds(config.queue),
      ...(parts.backoffMinMs !== undefined ? { backoffMinMs: parts.backoffMinMs } : {}),
    },
    parts.logger,
  );
  return { consumer, close: () => sqs.destroy() };
}

/**
 * Runs a worker until SIGTERM or SIGINT: the first stops receiving and lets the request in hand reach
 * a safe point, then resolves; a second exits at once. No listener is left behind.
 */
export async function runUntilSignalled(worker: Worker, logger: Logger, exit: (code: number) => never = process.exit): Promise<void> {
  const onSignal = (signal: NodeJS.Signals) => {
    if (!worker.consumer.stopping) {
      logger.info({ signal }, 'signal received: finishing the request in hand, then exiting (signal again to stop at once)');
      void worker.consumer.stop();
      return;
    }
    logger.warn({ signal }, 'second signal: stopping at once');
    exit(130);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await worker.consumer.run();
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    worker.close();
  }
}
