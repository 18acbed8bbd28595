import type { Logger } from '../log/logger.js';
import type { AcceptedRelease } from '../request/acceptance.js';

// The boundary between the queue worker and the rolling release engine. The worker hands every
// accepted, authenticated request to a Rollout and acknowledges the message when it returns.

export interface RolloutContext {
  readonly logger: Logger;
  /**
   * Aborted when the worker is asked to stop: the rollout reaches its next safe point (the host in
   * hand back in service, Auto Scaling and alarms restored) and returns.
   */
  readonly stopRequested: AbortSignal;
}

export type RolloutOutcome =
  | { status: 'succeeded'; hosts: number }
  | { status: 'failed'; reason: string }
  | { status: 'refused'; reason: string }
  | { status: 'stopped'; reason: string };

export interface Rollout {
  run(release: AcceptedRelease, context: RolloutContext): Promise<RolloutOutcome>;
}
