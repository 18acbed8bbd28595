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
  /** Releases running now, by target; the most at once, in all and for one target. */
  private readonly active = new Map<string, number>();
  maxActive = 0;
  maxActivePerTarget = 0;
  /** Every start and end, in the order they happened, with the release's target. */
  readonly events: Array<{ readonly event: 'start' | 'end'; readonly target: string; readonly image: string }> = [];

  constructor(private readonly durationMs: number | ((release: RecordedRelease) => number) = 0) {}

  async run(release: RecordedRelease, context: RolloutContext): Promise<RolloutOutcome> {
    const { request, keyId, deployment, target } = release.record;
    this.releases.push({ request, keyId, deployment, releaseConfig: context.releaseConfig, occasion: context.occasion });
    this.events.push({ event: 'start', target, image: request.image });
    this.active.set(target, (this.active.get(target) ?? 0) + 1);
    this.maxActive = Math.max(this.maxActive, [...this.active.values()].reduce((a, b) => a + b, 0));
    this.maxActivePerTarget = Math.max(this.maxActivePerTarget, this.active.get(target)!);
    this.waiters.splice(0).forEach((wake) => wake());
    try {
      const duration = typeof this.durationMs === 'function' ? this.durationMs(release) : this.durationMs;
      if (duration > 0) await sleep(duration);
    } finally {
      this.active.set(target, this.active.get(target)! - 1);
      this.events.push({ event: 'end', target, image: request.image });
    }
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
