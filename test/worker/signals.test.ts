import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { createQueues, motoForSuite, queueDepth, sendRaw } from '../support/aws.js';
import { CLI, collect } from '../support/cli.js';
import { startWatchingProxy } from '../support/watching-proxy.js';
import { signed, validRequest } from '../support/requests.js';
import { eventually, REGISTRY, TEST_KEY_ENV, workerEnvironment, writeWorkerConfig } from '../support/worker-fixtures.js';
import { WorkerProcess, type LogLine, type WorkerProcessOptions } from '../support/worker-process.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/slow-rollout-worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const builtFiles = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? builtFiles(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : []));
const logLines = (stdout: string) => stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);

describe('stopping the worker with signals', () => {
  const suite = motoForSuite();

  /** Starts the worker fixture with a request in hand, its rollout lasting rolloutMs. */
  async function workerWithRequestInHand(rolloutMs: number) {
    const queues = await createQueues(suite.sqs);
    await sendRaw(suite.sqs, queues.url, signed(validRequest()));
    const config = writeWorkerConfig(suite.moto.endpoint, queues);
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, config], { env: { ...workerEnvironment(), ROLLOUT_MS: String(rolloutMs) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = { text: '' };
    child.stdout.on('data', (chunk: Buffer) => (output.text += chunk.toString()));
    const done = collect(child, 30_000);
    await eventually('the rollout to start', () => output.text.includes('rollout started'));
    return { child, output, done, queues };
  }

  it('`harbormaster worker` stops during a long poll on SIGTERM and exits 0: the poll is cut, not waited out', async () => {
    const queues = await createQueues(suite.sqs);
    // The worker reaches moto through a proxy that sees whether each call was answered or cut.
    const proxy = await startWatchingProxy(suite.moto.endpoint);
    try {
      const config = writeWorkerConfig(proxy.endpoint, queues, { queue: { url: queues.url, deadLetterUrl: queues.deadLetterUrl, waitSeconds: 20 } });
      const child = spawn(process.execPath, [CLI, 'worker', '--config', config], { env: workerEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const done = collect(child, 60_000);
      const receives = () => proxy.calls.filter((call) => call.operation === 'AmazonSQS.ReceiveMessage');
      await eventually('a long poll to wait at moto', () => receives().some((call) => call.outcome === 'pending'));
      child.kill('SIGTERM');
      const result = await done;
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(receives().map((call) => call.outcome), ['cut'], 'the one long poll was cut by the worker before moto answered it');
      assert.ok(logLines(out).some((l) => l.msg === 'worker stopped'));
    } finally {
      await proxy.stop();
    }
  });

  /** The built worker with a request in hand for a release that has a rollout: moto has no instance of the target, so the release is refused at its `resolve` step. */
  async function releasingWorker(options: WorkerProcessOptions, env: NodeJS.ProcessEnv = {}) {
    const queues = await createQueues(suite.sqs);
    await sendRaw(suite.sqs, queues.url, signed(validRequest()));
    const config = writeWorkerConfig(suite.moto.endpoint, queues, {
      ssh: { user: 'deploy', privateKey: { env: TEST_KEY_ENV }, knownHostsFile: '/dev/null' },
      releases: [{ stack: 'data', release: 'ingest', deployments: ['staging'], images: { allowedRepositories: [`${REGISTRY}/data/ingest`] }, rollout: { container: { name: 'ingest' }, health: { port: 8080 } } }],
    });
    return new WorkerProcess(config, { ...workerEnvironment(), ...env }, options);
  }
  const RESOLVED = (l: LogLine) => l.step === 'resolve' && typeof l.msg === 'string' && /step (done|failed)/.test(l.msg);

  it('`harbormaster worker` as installed has no test hold: HARBORMASTER_TEST_HOLD_AT in its environment holds nothing and is not read', async () => {
    const worker = await releasingWorker({}, { HARBORMASTER_TEST_HOLD_AT: '-:resolve:begin' });
    try {
      await worker.waitFor('the release to pass its resolve step', RESOLVED, 30_000);
      assert.ok(!worker.lines.some((l) => String(l.msg).includes('test hold') || String(l.msg).includes('TEST HOLD')), 'no hold set, none reached');
      assert.ok(!worker.lines.some((l) => String(l.msg).includes('step journal was installed')));
      assert.ok(!worker.stderr.includes('HOLD'), worker.stderr);
    } finally {
      await worker.kill('SIGTERM');
    }
    // Nothing in the built worker reads the variable.
    for (const file of builtFiles(join(ROOT, 'dist'))) assert.ok(!readFileSync(file, 'utf8').includes('HARBORMASTER_TEST_HOLD_AT'), `${file} reads HARBORMASTER_TEST_HOLD_AT`);
  });

  it('`harbormaster worker` started with the test preload holds at the boundary, says so at start, and a SIGTERM ends the hold', async () => {
    const worker = await releasingWorker({ holdAt: '-:resolve:begin' });
    const warning = 'TEST HOLD HOOK SET (-:resolve:begin): this worker will stop at -:resolve:begin and wait';
    await worker.waitFor('the hold', (l) => l.msg === 'test hold reached', 30_000);
    assert.ok(!worker.lines.some(RESOLVED), 'held before its resolve step');
    const said = worker.lines.findIndex((l) => l.msg === warning);
    assert.ok(said >= 0 && said < worker.lines.findIndex((l) => l.msg === 'polling for release requests'), 'said before the worker polls');
    assert.equal(worker.lines[said]!.level, 'warn');
    assert.ok(worker.lines.some((l) => l.level === 'warn' && String(l.msg).startsWith('a step journal was installed before start')));
    assert.ok(worker.stderr.includes(`harbormaster: ${warning}\n`), worker.stderr);
    const exit = await worker.kill('SIGTERM');
    assert.equal(exit.code, 0, worker.stderr);
    assert.ok(worker.lines.some((l) => l.msg === 'test hold ended; the release goes on' && l.why === 'stop requested'));
  });

  it('on SIGTERM during a request, lets it reach its end, acknowledges it and exits 0', async () => {
    const { child, output, done, queues } = await workerWithRequestInHand(3_000);
    child.kill('SIGTERM');
    const result = await done;
    assert.equal(result.code, 0, result.stderr);
    const lines = logLines(output.text);
    const messages = lines.map((l) => l.msg);
    assert.ok(messages.indexOf('rollout reached its end') < messages.indexOf('worker stopped'));
    assert.equal(lines.find((l) => l.msg === 'rollout reached its end')?.stopRequested, true);
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 0 });
  });

  it('on a second signal, stops at once without acknowledging the request in hand', async () => {
    const { child, output, done, queues } = await workerWithRequestInHand(20_000);
    child.kill('SIGTERM');
    await eventually('the first signal to be logged', () => output.text.includes('signal received'));
    child.kill('SIGINT');
    const result = await done;
    // At once: exit 130 before the 20 s rollout reached its end (it would have logged so on the way out).
    assert.equal(result.code, 130);
    assert.ok(!output.text.includes('rollout reached its end'));
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 1 }, 'the request stays on the queue for the next worker');
  });
});
