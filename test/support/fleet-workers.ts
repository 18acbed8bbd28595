import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Fleet } from '../../local-fleet/fleet.js';
import { fleetWorkerConfigObject } from '../../local-fleet/worker-config.js';
import { signed, validRequest } from './requests.js';
import { TEST_KEY, TEST_KEY_ENV } from './worker-fixtures.js';
import type { LogLine } from './worker-process.js';

// Several real workers on the fleet, sharing the release table in moto (leases, takeover).

export interface SharedWorkerOptions {
  readonly deployments?: readonly string[];
  readonly leaseSeconds: number;
  readonly parallelReleases?: number;
  /** Another queue than the fleet's (a worker of another region or account receiving the same request). */
  readonly queueUrl?: string;
}

/** Writes `name`.yml beside its own state directory in `directory`; returns its path. */
export function writeSharedWorkerConfig(fleet: Fleet, directory: string, name: string, options: SharedWorkerOptions): string {
  const stateDirectory = join(directory, name);
  mkdirSync(stateDirectory, { recursive: true });
  const object: Record<string, any> = fleetWorkerConfigObject(fleet, {
    signingKey: { id: TEST_KEY.id, env: TEST_KEY_ENV },
    stateDirectory,
    ...(options.deployments ? { deployments: options.deployments } : {}),
    sharedState: true,
    leaseSeconds: options.leaseSeconds,
    parallelReleases: options.parallelReleases ?? 4,
    logLevel: 'debug',
  });
  object.queue = { ...object.queue, ...(options.queueUrl ? { url: options.queueUrl } : {}), visibilityTimeoutSeconds: 20, heartbeatSeconds: 5 };
  const path = join(directory, `${name}.yml`);
  writeFileSync(path, stringify(object));
  return path;
}

/** A signed request body for `tag` on a deployment of data/ingest. */
export const signedRequest = (fleet: Fleet, deployment: string, tag: string, createdAt: Date) =>
  signed(validRequest({ target: { stack: 'data', release: 'ingest', deployment }, image: `${fleet.registry.address}/data/ingest:${tag}`, requestedBy: 'ci-bot', createdAt: createdAt.toISOString() }));

export const releaseIdOf = (body: string) => (JSON.parse((JSON.parse(body) as { payload: string }).payload) as { releaseId: string }).releaseId;

/** Steps that change the fleet or AWS; each must happen once per release (per host, for host steps). */
export const EFFECT_STEPS = new Set(['suspend-auto-scaling', 'mute-alarms', 'deregister', 'stop-old', 'start-new', 'register', 'resume-auto-scaling', 'unmute-alarms']);

/** How often each effect of `releaseId` was started, by `step host`, over every worker's log. */
export function effectCounts(lines: readonly LogLine[], releaseId: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const l of lines) {
    if (l.msg !== 'step started' || l.releaseId !== releaseId || !EFFECT_STEPS.has(String(l.step))) continue;
    const key = `${String(l.step)} ${String(l.host ?? '-')}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}
