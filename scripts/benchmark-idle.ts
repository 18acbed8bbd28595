// How much memory an idle worker holds: the real worker (`bin/harbormaster.js worker`, from dist/; run
// `npm run build` first) against a local moto_server's SQS queue, nothing to release. Prints its
// resident set (RSS) once it polls, and after an hour's worth of idle polls: 180 polls, which at the
// default long poll (queue.waitSeconds 20) is an hour; here each poll waits 1 s.
//   node --import tsx scripts/benchmark-idle.ts [polls]     (default: 180)
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMoto } from '../local-fleet/moto.js';
import { createQueues, deleteQueues, sqsClient } from '../test/support/aws.js';
import { CLI } from '../test/support/cli.js';
import { writeWorkerConfig, workerEnvironment } from '../test/support/worker-fixtures.js';

const polls = Number(process.argv[2] ?? 180);
const WAIT_SECONDS = 1;

/** The process's resident set and its peak so far, in MB, from the kernel. */
function memory(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: Math.round(kb('VmRSS') / 102.4) / 10, peakMb: Math.round(kb('VmHWM') / 102.4) / 10 };
}

const moto = await startMoto();
const sqs = sqsClient(moto.endpoint);
const queues = await createQueues(sqs);
const config = writeWorkerConfig(moto.endpoint, queues, { queue: { url: queues.url, deadLetterUrl: queues.deadLetterUrl, waitSeconds: WAIT_SECONDS, visibilityTimeoutSeconds: 30 } });
const child = spawn(process.execPath, [CLI, 'worker', '--config', config], { env: { ...workerEnvironment(), AWS_ACCESS_KEY_ID: 'idle', AWS_SECRET_ACCESS_KEY: 'idle' }, stdio: ['ignore', 'pipe', 'inherit'] });
let polling = false;
createInterface({ input: child.stdout! }).on('line', (line) => {
  if (line.includes('"msg":"polling for release requests"')) polling = true;
});
try {
  const startedAt = Date.now();
  // Started: its first log lines are out and it has had a moment to make its first poll.
  while (!polling && Date.now() - startedAt < 30_000) await sleep(50);
  await sleep(2 * WAIT_SECONDS * 1000);
  const atStart = memory(child.pid!);
  console.log(`idle worker (pid ${child.pid}), after start: RSS ${atStart.rssMb} MB`);
  const cpuBefore = Date.now();
  await sleep(polls * WAIT_SECONDS * 1000);
  const atEnd = memory(child.pid!);
  console.log(`after ${polls} idle polls (${Math.round((Date.now() - cpuBefore) / 1000)} s; an hour at waitSeconds 20): RSS ${atEnd.rssMb} MB, peak ${atEnd.peakMb} MB`);
} finally {
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  await deleteQueues(sqs, queues).catch(() => undefined);
  sqs.destroy();
  await moto.stop();
}
