import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Fleet } from '../../local-fleet/fleet.js';
import { fleetWorkerConfigObject } from '../../local-fleet/worker-config.js';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import { servedRelease } from '../../src/request/acceptance.js';
import { newReleaseRequest } from '../../src/request/release-request.js';
import { createChat, createRollout } from '../../src/rollout/create-rollout.js';
import type { StepJournal } from '../../src/rollout/step-runner.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { RecordedRelease } from '../../src/state/recorded-release.js';
import { newReleaseRecord } from '../../src/state/release-record.js';
import { fleetWorkerEnvironment } from './fleet-release.js';
import { startSampler, type FleetObserver, type SamplerReport } from './fleet-observer.js';
import { capturingLogger, TEST_KEY, TEST_KEY_ENV } from './worker-fixtures.js';

// The release engine as `harbormaster worker` wires it, run in the test's process against the fleet's
// real engines, SSH servers and moto, so that a journal can set off a fault at a named step.

export interface FleetEngineOptions {
  readonly journal?: StepJournal;
  readonly policy?: Record<string, unknown>;
  /** Merged into the ssh section (deadlines, user). */
  readonly ssh?: Record<string, unknown>;
  /** Replaces whole entries of the release's rollout section (container, registry, ...). */
  readonly rollout?: Record<string, unknown>;
  /** Sample the invariants through the release (registered => healthy, out of service). */
  readonly sample?: { readonly observer: FleetObserver; readonly excused?: ReadonlySet<string> };
}

/** Short deadlines, so that faults are noticed quickly. */
export const FAULT_SSH = { callTimeoutSeconds: 3, pullStallSeconds: 5, connectTimeoutSeconds: 3 } as const;

export function fleetEngine(fleet: Fleet, options: FleetEngineOptions = {}) {
  const object: Record<string, any> = fleetWorkerConfigObject(fleet, {
    signingKey: { id: TEST_KEY.id, env: TEST_KEY_ENV },
    stateDirectory: mkdtempSync(join(tmpdir(), 'harbormaster-faults-')),
    policy: { hostRetrySeconds: 60, ...options.policy },
    ...(options.rollout ? { rollout: options.rollout } : {}),
    logLevel: 'debug',
  });
  object.ssh = { ...object.ssh, ...FAULT_SSH, ...options.ssh };
  const config = parseWorkerConfig(stringify(object));
  const env = fleetWorkerEnvironment(fleet);
  const { logger, lines } = capturingLogger();
  const chat = createChat(config, logger, env);
  const wiring = createRollout(config, logger, chat, env, { pollMs: 100, ...(options.journal ? { journal: options.journal } : {}) });
  const store = new MemoryReleaseStore();
  return {
    lines,
    /** The release state: tests read the record mid-way and write the target's control as `harbormaster promote` or `stop` would. */
    store,
    close: () => wiring.close(),
    async release(tag: string) {
      const built = newReleaseRequest({ target: { stack: 'data', release: 'ingest', deployment: 'staging' }, image: `${fleet.registry.address}/data/ingest:${tag}`, requestedBy: 'ci-bot', source: {} });
      assert.ok(built.ok);
      const served = servedRelease(built.value, config.releases);
      assert.ok(served.ok);
      const { record } = await store.claim(newReleaseRecord({ request: built.value, keyId: 'test', target: 'data/ingest/staging', deployment: 'staging', now: new Date(), worker: 'test' }));
      const recorded = new RecordedRelease(store, record);
      const started = Date.now();
      const sampler = options.sample ? startSampler(options.sample.observer, fleet, options.sample.excused ? { excused: options.sample.excused } : {}) : undefined;
      let sampled: SamplerReport | undefined;
      let outcome;
      try {
        outcome = await wiring.runner.run(recorded, { logger, stopRequested: new AbortController().signal, releaseConfig: served.release.releaseConfig, occasion: 'new', readControl: () => store.control('data/ingest/staging') });
      } finally {
        sampled = await sampler?.stop();
      }
      await chat.flush(5_000);
      return { outcome, lines, recorded, sampled, durationMs: Date.now() - started, texts: fleet.chat.messages().map((m) => m.text) };
    },
  };
}

/** A release of `tag` to staging, carried out in this process; `journal` injects the fault. */
export async function releaseOnFleet(fleet: Fleet, tag: string, options: FleetEngineOptions = {}) {
  const worker = fleetEngine(fleet, options);
  try {
    return await worker.release(tag);
  } finally {
    worker.close();
  }
}

/** Runs `fault` once, when the release reaches `step` on `host` (begin or end). */
export function at(host: string, step: string, edge: 'begin' | 'end', fault: () => Promise<void>): StepJournal {
  let done = false;
  const fire = async (entry: { host?: string; step: string }, which: 'begin' | 'end') => {
    if (done || which !== edge || entry.host !== host || entry.step !== step) return;
    done = true;
    await fault();
  };
  return { begin: (entry) => fire(entry, 'begin'), end: (entry) => fire(entry, 'end') };
}

/** Every staging host on `versions` with one live container, registered as given, Auto Scaling and alarms as before, no mute rule. */
/** The sampler saw no registered host unhealthy (but those excused) and at most `batch` out of service. */
export function assertSampledSafe(sampled: SamplerReport | undefined, batch = 1): void {
  assert.ok(sampled && sampled.samples > 0, 'the invariants were sampled');
  assert.deepEqual(sampled.unhealthyRegistered, [], 'a registered host always answered healthy');
  assert.ok(sampled.maxOutOfService <= batch, `at most ${batch} out of service (saw ${sampled.maxOutOfService})`);
}

export async function assertStagingWhole(observer: FleetObserver, versions: Record<string, string>, registered = observer.stagingHosts.map((h) => h.instanceId).sort()) {
  assert.deepEqual(await observer.versions(), versions);
  assert.deepEqual(await observer.liveContainers(), Object.fromEntries(Object.keys(versions).map((h) => [h, ['ingest']])), 'exactly one live container on each host');
  assert.deepEqual(await observer.classicMembers(), registered);
  assert.deepEqual(await observer.targetGroupMembers(), registered);
  assert.deepEqual(await observer.suspendedProcesses(), [], 'Auto Scaling processes as before');
  assert.ok(Object.values(await observer.alarmActions()).every(Boolean), 'alarm actions as before');
  assert.deepEqual(await observer.muteRules(), [], 'no mute rule left');
}
