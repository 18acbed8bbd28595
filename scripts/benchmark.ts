// How long a release takes and how long each host is out of service, on the local fleet, for 3 and
// 10 hosts. Prints, per host, the out-of-service window (deregistration to back in service) beside
// the container stop, start and health-check times, and beside the host's floor measured in the same
// run: the live container stopped, started again and probed until the application's first good
// answer, outside any release (what no engine can go below), as many hosts at once as a batch of the
// release takes out (on one machine, six engines starting at once are slower than one). Also the
// release's total, the process's CPU time and peak memory, and the most SSH connections held at once.
//   node --import tsx scripts/benchmark.ts [hosts...]     (default: 3 10)
//   BATCH=20% MIN_HEALTHY=75% node --import tsx scripts/benchmark.ts 30     (policy.batchSize, policy.minHealthy)
import { stringify } from 'yaml';
import { mkdtempSync, readFileSync } from 'node:fs';
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
import { floorOf } from './floor.js';
import { batchSizeFor } from '../src/rollout/plan.js';
import { chunk } from '../src/rollout/sessions.js';
import { signedRecord } from '../test/support/signed-records.js';

/** Established TCP connections from this machine's root namespace to port 22 (the fleet's sshd). */
function sshConnections(): number {
  const lines = readFileSync('/proc/self/net/tcp', 'utf8').split('\n').slice(1);
  return lines.filter((line) => {
    const [, , remote, state] = line.trim().split(/\s+/);
    return remote?.endsWith(':0016') && state === '01';
  }).length;
}

// The AWS clients take credentials from the SDK's default chain, as on a bastion; moto accepts any.
process.env.AWS_ACCESS_KEY_ID ??= 'benchmark';
process.env.AWS_SECRET_ACCESS_KEY ??= 'benchmark';
const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

for (const stagingCount of sizes.length > 0 ? sizes : [3, 10]) {
  const fleet = await fleetUp({ hosts: stagingCount + 1 });
  const config = parseWorkerConfig(
    stringify(
      fleetWorkerConfigObject(fleet, {
        signingKey: { id: 'bench', env: 'UNUSED' },
        stateDirectory: mkdtempSync(join(tmpdir(), 'harbormaster-bench-')),
        // Health polled every 100 ms and no smoke check: the figures show the container's own times.
        rollout: { health: { port: 8080, path: '/health', intervalMs: 100 }, smoke: undefined },
        policy: { ...(process.env.BATCH ? { batchSize: /%$/.test(process.env.BATCH) ? process.env.BATCH : Number(process.env.BATCH) } : {}), ...(process.env.MIN_HEALTHY ? { minHealthy: /%$/.test(process.env.MIN_HEALTHY) ? process.env.MIN_HEALTHY : Number(process.env.MIN_HEALTHY) } : {}) },
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
      // The floor of each staging host, measured now, on the container the release is about to replace.
      const staging = fleet.hosts.filter((h) => h.deployment === 'staging');
      const floors = new Map<string, number>();
      const policy = config.releases[0]!.rollout!.policy;
      const atOnce = Math.max(1, batchSizeFor(policy, staging.length));
      const batches = chunk(staging, atOnce);
      for (const batch of batches) {
        const measured = await Promise.all(batch.map((host) => floorOf(wiring.effects.connector, host.address)));
        batch.forEach((host, j) => floors.set(host.name, measured[j]!));
      }
      let sshHeld = 0;
      const sampler = setInterval(() => (sshHeld = Math.max(sshHeld, sshConnections())), 50);
      const cpuBefore = process.resourceUsage();
      const started = Date.now();
      const { record } = await store.claim(signedRecord({ request: built.value, target: `data/ingest/${served.release.deployment}`, deployment: served.release.deployment, now: new Date(), worker: 'benchmark' }));
      const outcome = await wiring.runner.run(new RecordedRelease(store, record), { logger, stopRequested: new AbortController().signal, releaseConfig: served.release.releaseConfig, occasion: 'new' });
      const total = Date.now() - started;
      clearInterval(sampler);
      const cpuAfter = process.resourceUsage();
      const cpuMs = Math.round((cpuAfter.userCPUTime - cpuBefore.userCPUTime + cpuAfter.systemCPUTime - cpuBefore.systemCPUTime) / 1000);
      const hosts = lines.filter((l) => l.msg === 'host released') as unknown as Array<{ host: string; outOfServiceMs: number; stopMs: number; startMs: number; healthyMs: number }>;
      const stepTime = (step: string) => lines.filter((l) => l.msg === 'step done' && l.step === step).map((l) => Number(l.durationMs));
      if (outcome.status !== 'succeeded') throw new Error(`release of ${tag} ${outcome.status}: ${'reason' in outcome ? outcome.reason : ''}`);
      console.log(`\n${stagingCount} hosts (floors measured ${atOnce} at once), release of ${tag} (batchSize ${config.releases[0]!.rollout!.policy.batchSize}, minHealthy ${config.releases[0]!.rollout!.policy.minHealthy ?? 'default'}): ${outcome.status} in ${(total / 1000).toFixed(1)} s (preflight with pulls ${median(stepTime('pull'))} ms median per host)`);
      console.log(`worker process: CPU ${cpuMs} ms for the release, peak RSS ${Math.round(cpuAfter.maxRSS / 1024)} MB, at most ${sshHeld} SSH connections held`);
      console.log('host  out-of-service  floor  ratio  stop  start  healthy  overhead (ms)');
      for (const h of hosts) {
        const overhead = h.outOfServiceMs - h.stopMs - h.startMs - h.healthyMs;
        const floor = floors.get(h.host) ?? NaN;
        console.log(`${h.host.padEnd(5)} ${String(h.outOfServiceMs).padStart(14)} ${String(floor).padStart(6)} ${(h.outOfServiceMs / floor).toFixed(2).padStart(6)} ${String(h.stopMs).padStart(5)} ${String(h.startMs).padStart(6)} ${String(h.healthyMs).padStart(8)} ${String(overhead).padStart(9)}`);
      }
      const oos = hosts.map((h) => h.outOfServiceMs);
      // The hosts of a batch are out side by side: a batch's floor is its slowest host's.
      const floorSum = batches.reduce((sum, batch) => sum + Math.max(...batch.map((h) => floors.get(h.name) ?? 0)), 0);
      console.log(`median out-of-service ${median(oos)} ms, max ${Math.max(...oos)} ms; median floor ${median([...floors.values()])} ms, median ratio ${median(hosts.map((h) => h.outOfServiceMs / (floors.get(h.host) ?? NaN))).toFixed(2)}; total against the sum of floors (of each batch's slowest): ${(total / 1000).toFixed(1)} s / ${(floorSum / 1000).toFixed(1)} s, 1.3x of which plus 3 s is ${((floorSum * 1.3 + 3000) / 1000).toFixed(1)} s`);
      console.log('steps (median ms): ' + ['create-new', 'deregister', 'drain', 'stop-old', 'start-new', 'wait-healthy', 'register', 'wait-in-service'].map((s) => `${s} ${median(stepTime(s))}`).join(', '));
    }
  } finally {
    wiring.close();
    fleet.chat.stop();
  }
}
await fleetDown();
