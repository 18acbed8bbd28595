import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger.js';
import type { QueueMessage, WorkQueue } from './sqs-queue.js';

// The poll loop. Several messages handled at once (up to `maxInFlight`), each on its own with its own
// visibility heartbeat, so a release longer than the queue's visibility timeout is never handed to
// another worker, and a long release never stops the queue from being read. With an admission pass,
// a receive asks for as many messages as SQS gives (ten) whenever a slot is free: admission ends most
// of a flood of refused messages at once, and what it leaves to handle is handled (one receive may
// take the messages handled past `maxInFlight` for a while; the next receive waits for a free slot).
// The loop outlives every transient failure, backing off between attempts; only stop() ends it, and it
// ends once every message in hand is done.

export interface ConsumerSettings {
  readonly waitSeconds: number;
  readonly visibilityTimeoutSeconds: number;
  readonly heartbeatSeconds: number;
  /** Messages handled at once (a receive with admission may go past it; see above); default 1. */
  readonly maxInFlight?: number;
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
  /** Told after every receive from the queue: whether it answered (metrics). */
  readonly onReceive?: (ok: boolean) => void;
}

/** What a handler may ask of the loop once it is done with a message: to hand it back for later. */
export type HandlerVerdict = void | { readonly handBackSeconds: number };

export type MessageHandler = (message: QueueMessage, context: { stopRequested: AbortSignal }) => Promise<HandlerVerdict>;

/**
 * What admission decides for a message: to handle it, that it is done with, or to hand it back (for
 * another worker) after a pause of `afterMs`. The loop hands it back without taking a handling slot.
 */
export type AdmissionVerdict = 'handle' | 'done' | { readonly handBackSeconds: number; readonly afterMs?: number };

/**
 * An optional first, quick pass over every message of one receive, before any is handled: whether it
 * still needs handling. The worker judges and records each request here, so that of several requests
 * for one target received together, each is known before any of them starts (newest wins).
 */
export type MessageAdmission = (message: QueueMessage) => Promise<AdmissionVerdict>;

/** The most messages one receive gives (SQS's limit). */
const MAX_RECEIVE = 10;

const isAbort = (error: unknown) => error instanceof Error && error.name === 'AbortError';

export class QueueConsumer {
  private readonly stopController = new AbortController();
  private running: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  /** Hand-backs admission asked for, waiting out their pause; they hold no handling slot. */
  private readonly handingBack = new Set<Promise<void>>();
  private slotFreed: (() => void) | undefined;

  constructor(
    private readonly queue: WorkQueue,
    private readonly handle: MessageHandler,
    private readonly settings: ConsumerSettings,
    private readonly logger: Logger,
    private readonly admit?: MessageAdmission,
  ) {}

  /** Starts the loop; the promise settles once the loop has stopped and every message in hand is done. */
  run(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  /** Stops receiving and asks every handler in progress to reach a safe point. Idempotent. */
  stop(): Promise<void> {
    if (!this.stopController.signal.aborted) {
      this.logger.info({ inHand: this.inFlight.size }, 'stopping: no new requests will be received');
      this.stopController.abort();
      this.slotFreed?.();
    }
    return this.running ?? Promise.resolve();
  }

  get stopping(): boolean {
    return this.stopController.signal.aborted;
  }

  private async loop(): Promise<void> {
    const stop = this.stopController.signal;
    const limit = Math.max(1, this.settings.maxInFlight ?? 1);
    let failures = 0;
    this.logger.info({ waitSeconds: this.settings.waitSeconds, maxInFlight: limit }, 'polling for release requests');
    while (!stop.aborted) {
      if (this.inFlight.size >= limit) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      let messages: QueueMessage[];
      try {
        messages = await this.queue.receive({
          waitSeconds: this.settings.waitSeconds,
          visibilityTimeoutSeconds: this.settings.visibilityTimeoutSeconds,
          signal: stop,
          max: this.admit ? MAX_RECEIVE : limit - this.inFlight.size,
        });
        failures = 0;
        this.settings.onReceive?.(true);
      } catch (error) {
        if (stop.aborted || isAbort(error)) break;
        this.settings.onReceive?.(false);
        failures += 1;
        const delay = this.backoff(failures);
        this.logger.error({ err: error, failures, retryInMs: delay }, 'receiving from the queue failed');
        await sleep(delay, undefined, { signal: stop }).catch(() => undefined);
        continue;
      }
      const admitted = this.admit ? await this.admitAll(messages, stop) : messages;
      for (const message of admitted) {
        const handling = this.handleWithHeartbeat(message, stop).finally(() => {
          this.inFlight.delete(handling);
          this.slotFreed?.();
          this.slotFreed = undefined;
        });
        this.inFlight.add(handling);
      }
    }
    await Promise.all([...this.inFlight, ...this.handingBack]);
    this.logger.info('stopped polling');
  }

  /**
   * Every message of a receive through admission, side by side; the messages left to handle. A failed
   * admission leaves its message for redelivery; a hand-back is made once its pause is over.
   */
  private async admitAll(messages: QueueMessage[], stop: AbortSignal): Promise<QueueMessage[]> {
    const verdicts = await Promise.all(
      messages.map((message) =>
        this.admit!(message).catch((error: unknown): AdmissionVerdict => {
          this.logger.error({ err: error, messageId: message.id }, 'handling the message failed; it will be delivered again');
          return 'done';
        }),
      ),
    );
    messages.forEach((message, index) => {
      const verdict = verdicts[index]!;
      if (typeof verdict === 'object') this.handBackLater(message, verdict, stop);
    });
    return messages.filter((_, index) => verdicts[index] === 'handle');
  }

  /** Hands a message back after its pause (cut short by stop()), tracked so that the loop ends only once it is made. */
  private handBackLater(message: QueueMessage, verdict: { handBackSeconds: number; afterMs?: number }, stop: AbortSignal): void {
    const pending = sleep(verdict.afterMs ?? 0, undefined, { signal: stop })
      .catch(() => undefined)
      .then(() => this.queue.handBack(message, verdict.handBackSeconds))
      .catch((error: unknown) => this.logger.warn({ err: error, messageId: message.id }, 'handing the message back failed; it comes back after its visibility timeout'))
      .finally(() => this.handingBack.delete(pending));
    this.handingBack.add(pending);
  }

  private async handleWithHeartbeat(message: QueueMessage, stop: AbortSignal): Promise<void> {
    const log = this.logger.child({ messageId: message.id });
    let extending: Promise<void> = Promise.resolve();
    const heartbeat = setInterval(() => {
      extending = this.queue
        .extendVisibility(message, this.settings.visibilityTimeoutSeconds)
        .then(() => log.debug({ visibilityTimeoutSeconds: this.settings.visibilityTimeoutSeconds }, 'visibility extended'))
        .catch((error: unknown) => log.error({ err: error }, 'visibility heartbeat failed; another worker may receive this request'));
    }, this.settings.heartbeatSeconds * 1000);
    let verdict: HandlerVerdict;
    try {
      verdict = await this.handle(message, { stopRequested: stop });
    } catch (error) {
      // The message stays on the queue and comes back after its visibility timeout.
      log.error({ err: error }, 'handling the message failed; it will be delivered again');
      return;
    } finally {
      clearInterval(heartbeat);
    }
    if (!verdict) return;
    // After the last heartbeat has landed, so that it cannot push the message further out.
    await extending;
    await this.queue.handBack(message, verdict.handBackSeconds).catch((error: unknown) => log.warn({ err: error }, 'handing the message back failed; it comes back after its visibility timeout'));
  }

  private backoff(failures: number): number {
    const min = this.settings.backoffMinMs ?? 500;
    const max = this.settings.backoffMaxMs ?? 30_000;
    const exponential = Math.min(max, min * 2 ** (failures - 1));
    return Math.round(exponential / 2 + Math.random() * (exponential / 2));
  }
}
