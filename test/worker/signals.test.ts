import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { startMoto, type MotoServer } from '../../local-fleet/moto.js';
import { createQueues, queueDepth, sendRaw, sqsClient } from '../support/aws.js';
import { CLI, collect } from '../support/cli.js';
import { signed, validRequest } from '../support/requests.js';
import { eventually, workerEnvironment, writeWorkerConfig } from '../support/worker-fixtures.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/slow-rollout-worker.ts', import.meta.url));
const logLines = (stdout: string) => stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);

describe('stopping the worker with signals', () => {
  let moto: MotoServer;
  let sqs: SQSClient;
  before(async () => {
    moto = await startMoto();
    sqs = sqsClient(moto.endpoint);
  });
  after(async () => {
    sqs?.destroy();
    await moto?.stop();
  });

  it('`harbormaster worker` stops during a long poll on SIGTERM and exits 0', async () => {
    const queues = await createQueues(sqs);
    const config = writeWorkerConfig(moto.endpoint, queues, { queue: { url: queues.url, deadLetterUrl: queues.deadLetterUrl, waitSeconds: 20 } });
    const child = spawn(process.execPath, [CLI, 'worker', '--config', config], { env: workerEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const done = collect(child, 20_000);
    await eventually('the worker to poll', () => out.includes('polling for release requests'));
    const signalled = Date.now();
    child.kill('SIGTERM');
    const result = await done;
    assert.equal(result.code, 0, result.stderr);
    assert.ok(Date.now() - signalled < 3_000, 'the 20 s long poll was not cut short');
    assert.ok(logLines(out).some((l) => l.msg === 'worker stopped'));
  });

  it('on SIGTERM during a request, lets it reach its end, acknowledges it and exits 0', async () => {
    const queues = await createQueues(sqs);
    await sendRaw(sqs, queues.url, signed(validRequest()));
    const config = writeWorkerConfig(moto.endpoint, queues);
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, config], { env: { ...workerEnvironment(), ROLLOUT_MS: '3000' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const done = collect(child, 30_000);
    await eventually('the rollout to start', () => out.includes('rollout started'));
    child.kill('SIGTERM');
    const result = await done;
    assert.equal(result.code, 0, result.stderr);
    const messages = logLines(out).map((l) => l.msg);
    assert.ok(messages.indexOf('rollout reached its end') < messages.indexOf('worker stopped'));
    assert.equal(logLines(out).find((l) => l.msg === 'rollout reached its end')?.stopRequested, true);
    assert.deepEqual(await queueDepth(sqs, queues.url), { visible: 0, inFlight: 0 });
  });

  it('on a second signal, stops at once without acknowledging the request in hand', async () => {
    const queues = await createQueues(sqs);
    await sendRaw(sqs, queues.url, signed(validRequest()));
    const config = writeWorkerConfig(moto.endpoint, queues);
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, config], { env: { ...workerEnvironment(), ROLLOUT_MS: '20000' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const done = collect(child, 30_000);
    await eventually('the rollout to start', () => out.includes('rollout started'));
    child.kill('SIGTERM');
    await eventually('the first signal to be logged', () => out.includes('signal received'));
    const second = Date.now();
    child.kill('SIGINT');
    const result = await done;
    assert.equal(result.code, 130);
    assert.ok(Date.now() - second < 2_000);
    assert.ok(!out.includes('rollout reached its end'));
    assert.deepEqual(await queueDepth(sqs, queues.url), { visible: 0, inFlight: 1 }, 'the request stays on the queue for the next worker');
  });
});
