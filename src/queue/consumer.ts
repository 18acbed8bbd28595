import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger.js';
import type { QueueMessage, WorkQueue } from './sqs-queue.js';

// The poll loop. One message at a time: a bastion's worker runs one release at a time. While a message
// is handled a heartbeat keeps it invisible, so a release longer than the queue's visibility timeout
// is never handed to another worker. The loop outlives every transient failure, backing off between
// attempts; only stop() ends it.

export interface ConsumerSettings {
  readonly waitSeconds: number;
  readonly visibilityTimeoutSeconds: number;
  readonly heartbeatSeconds: number;
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
}

export type MessageHandler = (message: QueueMessage, context: { stopRequested: AbortSignal }) => Promise<void>;

const isAbort = (error: unknown) => error instanceof Error && error.name === 'AbortError';

export class QueueConsumer {
  private readonly stopController = new AbortController();
  private running: Promise<void> | undefined;

  constructor(
    private readonly queue: WorkQueue,
    private readonly handle: MessageHandler,
    private readonly settings: ConsumerSettings,
    private readonly logger: Logger,
  ) {}

  /** Starts the loop; the promise settles once the loop has stopped and the message in hand is done. */
  run(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  /** Stops receiving and asks the handler in progress to reach a safe point. Idempotent. */
  stop(): Promise<void> {
    if (!this.stopController.signal.aborted) {
      this.logger.info('stopping: no new requests will be received');
      this.stopController.abort();
    }
    return this.running ?? Promise.resolve();
  }

  get stopping(): boolean {
    return this.stopController.signal.aborted;
  }

  private async loop(): Promise<void> {
    const stop = this.stopController.signal;
    let failures = 0;
    this.logger.info({ waitSeconds: this.settings.waitSeconds }, 'polling for release requests');
    while (!stop.aborted) {
      let message: QueueMessage | undefined;
      try {
        message = await this.queue.receive({
          waitSeconds: this.settings.waitSeconds,
          visibilityTimeoutSeconds: this.settings.visibilityTimeoutSeconds,
          signal: stop,
        });
        failures = 0;
      } catch (error) {
        if (stop.aborted || isAbort(error)) break;
        failures += 1;
        const delay = this.backoff(failures);
        this.logger.error({ err: error, failures, retryInMs: delay }, 'receiving from the queue failed');
        await sleep(delay, undefined, { signal: stop }).catch(() => undefined);
        continue;
      }
      if (message) await this.handleWithHeartbeat(message, stop);
    }
    this.logger.info('stopped polling');
  }

  private async handleWithHeartbeat(message: QueueMessage, stop: AbortSignal): Promise<void> {
    const log = this.logger.child({ messageId: message.id });
    const heartbeat = setInterval(() => {
      this.queue
        .extendVisibility(message, this.settings.visibilityTimeoutSeconds)
        .then(() => log.debug({ visibilityTimeoutSeconds: this.settings.visibilityTimeoutSeconds }, 'visibility extended'))
        .catch((error: unknown) => log.error({ err: error }, 'visibility heartbeat failed; another worker may receive this request'));
    }, this.settings.heartbeatSeconds * 1000);
    try {
      await this.handle(message, { stopRequested: stop });
    } catch (error) {
      // The message stays on the queue and comes back after its visibility timeout.
      log.error({ err: error }, 'handling the message failed; it will be delivered again');
    } finally {
      clearInterval(heartbeat);
    }
  }

  private backoff(failures: number): number {
    const min = this.settings.backoffMinMs ?? 500;
    const max = this.settings.backoffMaxMs ?? 30_000;
    const exponential = Math.min(max, min * 2 ** (failures - 1));
    return Math.round(exponential / 2 + Math.random() * (exponential / 2));
  }
}
