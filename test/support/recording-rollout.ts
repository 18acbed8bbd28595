import { setTimeout as sleep } from 'node:timers/promises';
import type { ReleaseConfig } from '../../src/config/worker-config.js';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import type { Rollout, RolloutContext, RolloutOutcome } from '../../src/rollout/rollout.js';
import type { RecordedRelease } from '../../src/state/recorded-release.js';

export interface HandedRelease {
  readonly request: ReleaseRequest;
  readonly keyId: string;
  readonly deployment: string;
  readonly releaseConfig: ReleaseConfig | undefined;
  readonly occasion: RolloutContext['occasion'];
}

/** A rollout that records what it was handed; optionally takes its time (to exercise heartbeats and shutdown). */
export class RecordingRollout implements Rollout {
  readonly releases: HandedRelease[] = [];
  private waiters: Array<() => void> = [];

  constructor(private readonly durationMs = 0) {}

  async run(release: RecordedRelease, context: RolloutContext): Promise<RolloutOutcome> {
    const { request, keyId, deployment } = release.record;
    this.releases.push({ request, keyId, deployment, releaseConfig: context.releaseConfig, occasion: context.occasion });
    this.waiters.splice(0).forEach((wake) => wake());
    if (this.durationMs > 0) await sleep(this.durationMs);
    context.logger.info('recording rollout done');
    return { status: 'succeeded', hosts: 0 };
  }

  /** Resolves once `count` releases have been handed over. */
  async until(count: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.releases.length < count) {
      if (Date.now() > deadline) throw new Error(`rollout saw ${this.releases.length} of ${count} releases`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }
}
