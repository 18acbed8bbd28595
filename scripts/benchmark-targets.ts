// One worker releasing four targets at once, against each released alone: the local fleet laid out as
// four targets of two hosts, the releases run through the worker's own scheduler (one release per
// target, all four side by side). Prints each single release, the slowest of them, and the total of
// the four at once; beside them, one host's floor alone and four hosts' floors at once (one of each
// target: what four releases side by side put on the machine at each step), and the worker's CPU time.
//   node --import tsx scripts/benchmark-targets.ts
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { fleetDown, fleetUp } from '../local-fleet/fleet.js';
import { fleetWorkerConfigObject, fleetWorkerEnvironment } from '../local-fleet/worker-config.js';
import { silentChat } from '../src/chat/chat.js';
import { parseWorkerConfig } from '../src/config/worker-config.js';
import { createLogger } from '../src/log/logger.js';
import { servedRelease } from '../src/request/acceptance.js';
import { newReleaseRequest } from '../src/request/release-request.js';
import { createRollout } from '../src/rollout/create-rollout.js';
import { FileReleaseStore } from '../src/state/file-release-store.js';
import { newReleaseRecord } from '../src/state/release-record.js';
import { ReleaseScheduler } from '../src/worker/release-scheduler.js';
import { floorOf } from './floor.js';
import { signedRecord, vouchWithTestKey } from '../test/support/signed-records.js';

process.env.AWS_ACCESS_KEY_ID ??= 'benchmark';
process.env.AWS_SECRET_ACCESS_KEY ??= 'benchmark';
const DEPLOYMENTS = ['staging', 'integration', 'production', 'qa'];

const fleet = await fleetUp({ hosts: 8, deployments: DEPLOYMENTS.flatMap((d) => [d, d]) });
const stateDirectory = mkdtempSync(join(tmpdir(), 'harbormaster-bench-targets-'));
const config = parseWorkerConfig(
  stringify(
    fleetWorkerConfigObject(fleet, {
      signingKey: { id: 'bench', env: 'UNUSED' },
      stateDirectory,
      deployments: DEPLOYMENTS,
      parallelReleases: 4,
      rollout: { health: { port: 8080, path: '/health', intervalMs: 100 }, smoke: undefined },
    }),
  ),
);
const logger = createLogger({ level: 'warn' });
const wiring = createRollout(config, logger, silentChat, fleetWorkerEnvironment(fleet, { env: 'UNUSED', secret: 'unused' }), { pollMs: 100 });
const store = new FileReleaseStore(stateDirectory);
const scheduler = new ReleaseScheduler({ store, rollout: wiring.runner, vouch: vouchWithTestKey(config.releases, (id) => store.get(id)), logger, workerId: 'benchmark', leaseMs: 30_000, parallel: 4, stopRequested: new AbortController().signal });

async function release(deployment: string, tag: string): Promise<number> {
  const built = newReleaseRequest({ target: { stack: 'data', release: 'ingest', deployment }, image: `${fleet.registry.address}/data/ingest:${tag}`, requestedBy: 'bench', source: {} });
  if (!built.ok) throw new Error(built.reason);
  const served = servedRelease(built.value, config.releases);
  if (!served.ok) throw new Error(served.reason);
  await store.claim(signedRecord({ request: built.value, target: `data/ingest/${deployment}`, deployment, now: new Date(), worker: 'benchmark' }));
  const started = Date.now();
  const taken = await scheduler.take(built.value.releaseId, logger, 'new');
  if (taken.status !== 'ended' || taken.outcome.status !== 'succeeded') throw new Error(`${deployment} ${tag}: ${JSON.stringify(taken)}`);
  return Date.now() - started;
}

const cpuMs = () => {
  const usage = process.resourceUsage();
  return Math.round((usage.userCPUTime + usage.systemCPUTime) / 1000);
};

try {
  // One host of each target, alone then the four at once.
  const firsts = DEPLOYMENTS.map((deployment) => fleet.hosts.find((h) => h.deployment === deployment)!);
  const alone: number[] = [];
  for (const host of firsts) alone.push(await floorOf(wiring.effects.connector, host.address));
  const atOnce = await Promise.all(firsts.map((host) => floorOf(wiring.effects.connector, host.address)));
  const singles: Array<[string, number]> = [];
  for (const deployment of DEPLOYMENTS) singles.push([deployment, await release(deployment, 'v2')]);
  const started = Date.now();
  const cpuBefore = cpuMs();
  const together = await Promise.all(DEPLOYMENTS.map((deployment) => release(deployment, 'v3')));
  const total = Date.now() - started;
  const cpuTogether = cpuMs() - cpuBefore;
  const slowest = Math.max(...singles.map(([, ms]) => ms));
  console.log('each target alone (2 hosts each):');
  for (const [deployment, ms] of singles) console.log(`  ${deployment.padEnd(12)} ${(ms / 1000).toFixed(1)} s`);
  console.log(`four targets at once, one worker: ${(total / 1000).toFixed(1)} s in all (each: ${together.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s)`);
  const seconds = (values: number[]) => values.map((ms) => (ms / 1000).toFixed(2)).join(', ');
  console.log(`a host's floor alone: ${seconds(alone)} s; four hosts' floors at once: ${seconds(atOnce)} s`);
  console.log(`worker CPU: ${cpuTogether} ms for the four at once (the process's ${cpuBefore} ms before them, with the fleet's set-up and the four single releases)`);
  console.log(`slowest single release ${(slowest / 1000).toFixed(1)} s; the four one after another ${(singles.reduce((a, [, ms]) => a + ms, 0) / 1000).toFixed(1)} s`);
} finally {
  wiring.close();
  fleet.chat.stop();
  await fleetDown();
}
