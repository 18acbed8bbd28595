// How long a release takes and how long each host is out of service, on the local fleet, for 3 and
// 10 hosts. Prints, per host, the out-of-service window (deregistration to back in service) beside
// the container stop, start and health-check times, so that the engine's own overhead is visible.
//   node --import tsx scripts/benchmark.ts [hosts...]     (default: 3 10)
import { stringify } from 'yaml';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fleetDown, fleetUp } from '../local-fleet/fleet.js';
import { fleetWorkerConfigObject, fleetWorkerEnvironment } from '../local-fleet/worker-config.js';
import { Writable } from 'node:stream';
import { createLogger } from '../src/log/logger.js';
import { parseWorkerConfig } from '../src/config/worker-config.js';
import { createRollout } from '../src/rollout/create-rollout.js';
import { silentChat } from '../src/chat/chat.js';
import { newReleaseRequest } from '../src/request/release-request.js';
import { servedRelease } from '../src/request/acceptance.js';
import { FileReleaseStore } from '../src/state/file-release-store.js';
import { RecordedRelease } from '../src/state/recorded-release.js';
import { newReleaseRecord } from '../src/state/release-record.js';

// The AWS clients take credentials from the SDK's default chain, as on a bastion; moto accepts any.
process.env.AWS_ACCESS_KEY_ID ??= 'benchmark';
process.env.AWS_SECRET_ACCESS_KEY ??= 'benchmark';
const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

for (const staging of sizes.length > 0 ? sizes : [3, 10]) {
  const fleet = await fleetUp({ hosts: staging + 1 });
  const config = parseWorkerConfig(
    stringify(
      fleetWorkerConfigObject(fleet, {
        signingKey: { id: 'bench', env: 'UNUSED' },
        stateDirectory: mkdtempSync(join(tmpdir(), 'harbormaster-bench-')),
        // Health polled every 100 ms and no smoke check: the figures show the container's own times.
        rollout: { health: { port: 8080, path: '/health', intervalMs: 100 }, smoke: undefined },
      }),
    ),
  );
  const env = fleetWorkerEnvironment(fleet, { env: 'UNUSED', secret: 'unused' });
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'info' }, new Writable({ write: (chunk, _e, done) => (String(chunk).split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l))), done()) }));
  const wiring = createRollout(config, logger, silentChat, env, { pollMs: 100 });
  // Records on disk as the worker keeps them: their fsyncs are part of the figures.
  const store = new FileReleaseStore(config.stateDirectory);
  try {
    for (const tag of ['v2', 'v1']) {
      lines.length = 0;
      const built = newReleaseRequest({ target: { stack: 'data', release: 'ingest', deployment: 'staging' }, image: `${fleet.registry.address}/data/ingest:${tag}`, requestedBy: 'bench', source: {} });
      if (!built.ok) throw new Error(built.reason);
      const served = servedRelease(built.value, config.releases);
      if (!served.ok) throw new Error(served.reason);
      const started = Date.now();
      const { record } = await store.claim(newReleaseRecord({ request: built.value, keyId: 'bench', target: `data/ingest/${served.release.deployment}`, deployment: served.release.deployment, now: new Date(), worker: 'benchmark' }));
      const outcome = await wiring.runner.run(new RecordedRelease(store, record), { logger, stopRequested: new AbortController().signal, releaseConfig: served.release.releaseConfig, occasion: 'new' });
      const total = Date.now() - started;
      const hosts = lines.filter((l) => l.msg === 'host released') as unknown as Array<{ host: string; outOfServiceMs: number; stopMs: number; startMs: number; healthyMs: number }>;
      const stepTime = (step: string) => lines.filter((l) => l.msg === 'step done' && l.step === step).map((l) => Number(l.durationMs));
      if (outcome.status !== 'succeeded') throw new Error(`release of ${tag} ${outcome.status}: ${'reason' in outcome ? outcome.reason : ''}`);
      console.log(`\n${staging} hosts, release of ${tag}: ${outcome.status} in ${(total / 1000).toFixed(1)} s (preflight with pulls ${median(stepTime('pull'))} ms median per host)`);
      console.log('host  out-of-service  stop  start  healthy  overhead (ms)');
      for (const h of hosts) {
        const overhead = h.outOfServiceMs - h.stopMs - h.startMs - h.healthyMs;
        console.log(`${h.host.padEnd(5)} ${String(h.outOfServiceMs).padStart(14)} ${String(h.stopMs).padStart(5)} ${String(h.startMs).padStart(6)} ${String(h.healthyMs).padStart(8)} ${String(overhead).padStart(9)}`);
      }
      const oos = hosts.map((h) => h.outOfServiceMs);
      console.log(`median out-of-service ${median(oos)} ms, max ${Math.max(...oos)} ms; steps (median ms): ` +
        ['deregister', 'drain', 'stop-old', 'start-new', 'wait-healthy', 'register', 'wait-in-service'].map((s) => `${s} ${median(stepTime(s))}`).join(', '));
    }
  } finally {
    wiring.close();
    fleet.chat.stop();
  }
}
await fleetDown();
