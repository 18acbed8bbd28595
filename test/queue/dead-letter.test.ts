import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { QueueConsumer } from '../../src/queue/consumer.js';
import { SqsWorkQueue, type DeadLetterResult, type QueueMessage, type SqsWorkQueueOptions } from '../../src/queue/sqs-queue.js';
import { createQueues, drain, motoForSuite, queueDepth, sendRaw, type TestQueues } from '../support/aws.js';
import { signed, validRequest } from '../support/requests.js';
import { capturingLogger, eventually } from '../support/worker-fixtures.js';

// The dead-letter queue is the one place a refused request goes; when it cannot take one (it does not
// exist, access is denied, it stays unreachable), the request must neither loop for ever nor be lost.
describe('a refused message the dead-letter queue cannot take (moto)', () => {
  const suite = motoForSuite();
  const refusal = { code: 'invalid', reason: "request: unknown field(s) 'command' (not part of the format: remove them)" };

  /** A dead-letter queue URL on the same server that names no queue: SQS answers QueueDoesNotExist (a 400, permanent). */
  const missingQueue = (queues: TestQueues) => queues.deadLetterUrl.replace(/[^/]+$/, 'no-such-dead-letter-queue');

  async function receiveOne(queue: SqsWorkQueue): Promise<QueueMessage> {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const [message] = await queue.receive({ waitSeconds: 1, visibilityTimeoutSeconds: 30, signal: new AbortController().signal });
      if (message) return message;
    }
    throw new Error('no message received');
  }

  /** The suite's client, counting the sends to a dead-letter queue (SendMessageBatch: the worker sends nothing else). */
  function countingSends(): { sqs: SQSClient; deadLetterSends: () => number } {
    let sends = 0;
    const sqs = {
      send: (command: unknown, options?: unknown) => {
        if (command instanceof SendMessageBatchCommand) sends += 1;
        return (suite.sqs.send as (c: unknown, o?: unknown) => Promise<unknown>)(command, options);
      },
    } as unknown as SQSClient;
    return { sqs, deadLetterSends: () => sends };
  }

  function queueFor(queues: TestQueues, deadLetter: string, options: SqsWorkQueueOptions, sqs: SQSClient = suite.sqs) {
    const { logger, lines } = capturingLogger();
    return { queue: new SqsWorkQueue(sqs, { queue: queues.url, deadLetter }, logger, options), lines };
  }

  it('keeps the body on disk with its refusal, acknowledges the message, and does not retry a permanent failure', async () => {
    const queues = await createQueues(suite.sqs);
    const body = signed(validRequest({ command: 'rm -rf /' }));
    await sendRaw(suite.sqs, queues.url, body);
    const directory = join(mkdtempSync(join(tmpdir(), 'harbormaster-state-')), 'undeliverable');
    const keptTime = new Date('2026-11-26T10:00:00.000Z');
    const counting = countingSends();
    const { queue, lines } = queueFor(queues, missingQueue(queues), { undeliverableDirectory: directory, now: () => keptTime }, counting.sqs);
    const message = await receiveOne(queue);

    const result: DeadLetterResult = await queue.deadLetter(message, refusal);

    assert.equal(counting.deadLetterSends(), 1, 'a permanent failure is not retried');
    assert.equal(result.deadLettered, false);
    if (result.deadLettered) return;
    assert.equal(result.keptAt, join(directory, `${message.id}.json`));
    assert.match(result.error, /QueueDoesNotExist/);
    assert.ok(!lines.some((l) => String(l.msg).includes('retrying')), 'a permanent failure was retried');

    // The file: the exact body, the refusal, the time and the error; 0600 in a 0700 directory, nothing half-written.
    const kept = JSON.parse(readFileSync(result.keptAt, 'utf8')) as Record<string, unknown>;
    assert.equal(kept.body, body);
    assert.deepEqual(kept.refusal, refusal);
    assert.equal(kept.keptAt, keptTime.toISOString());
    assert.equal(kept.messageId, message.id);
    assert.equal(kept.deadLetterQueue, missingQueue(queues));
    assert.match(String(kept.deadLetterError), /QueueDoesNotExist/);
    assert.equal(statSync(result.keptAt).mode & 0o777, 0o600);
    assert.equal(statSync(directory).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(directory), [`${message.id}.json`]);

    // Acknowledged: gone from the request queue, not coming back after its visibility timeout.
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 0 });
    const logged = lines.find((l) => String(l.msg).includes('kept on disk'));
    assert.equal(logged?.keptAt, result.keptAt);
    assert.equal(logged?.level, 'error');
  });

  it('retries a transient failure a bounded number of times, then keeps the message the same way', async () => {
    const queues = await createQueues(suite.sqs);
    await sendRaw(suite.sqs, queues.url, '{"not": "a request"}');
    // The dead-letter send is throttled every time; everything else reaches moto.
    let deadLetterAttempts = 0;
    const throttling = {
      send: (command: unknown, options?: unknown) => {
        if (command instanceof SendMessageBatchCommand) {
          deadLetterAttempts += 1;
          return Promise.reject(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }));
        }
        return (suite.sqs.send as (c: unknown, o?: unknown) => Promise<unknown>)(command, options);
      },
    } as unknown as SQSClient;
    // A directory that exists already, too open: it is closed to 0700 before anything is written in it.
    const directory = join(mkdtempSync(join(tmpdir(), 'harbormaster-state-')), 'undeliverable');
    mkdirSync(directory, { mode: 0o755 });
    const { queue, lines } = queueFor(queues, queues.deadLetterUrl, { undeliverableDirectory: directory, deadLetterRetries: 2, deadLetterMinTimeoutMs: 10 }, throttling);
    const message = await receiveOne(queue);

    const result = await queue.deadLetter(message, refusal);
    assert.equal(deadLetterAttempts, 3, 'one try and two retries');
    assert.equal(lines.filter((l) => String(l.msg).includes('retrying')).length, 2);
    assert.equal(result.deadLettered, false);
    assert.match((result as { error: string }).error, /ThrottlingException/);
    assert.equal(JSON.parse(readFileSync((result as { keptAt: string }).keptAt, 'utf8')).body, '{"not": "a request"}');
    assert.equal(statSync(directory).mode & 0o777, 0o700);
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 0 });
  });

  it('without a directory to keep it in, fails at once and leaves the message on the request queue', async () => {
    const queues = await createQueues(suite.sqs);
    await sendRaw(suite.sqs, queues.url, 'refused');
    const counting = countingSends();
    const { queue, lines } = queueFor(queues, missingQueue(queues), {}, counting.sqs);
    const message = await receiveOne(queue);
    await assert.rejects(queue.deadLetter(message, refusal), /cannot move message .* to the dead-letter queue \(QueueDoesNotExist.*\) and there is nowhere else to keep it/);
    assert.equal(counting.deadLetterSends(), 1, 'failed at once: one attempt, no retry');
    assert.ok(!lines.some((l) => String(l.msg).includes('retrying')));
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 1 }, 'not acknowledged: still on the queue');
  });

  it('end to end in the poll loop: one attempt, the message kept and gone, no second delivery', async () => {
    const queues = await createQueues(suite.sqs, { visibilityTimeoutSeconds: 1 });
    const body = signed(validRequest());
    await sendRaw(suite.sqs, queues.url, body);
    const directory = join(mkdtempSync(join(tmpdir(), 'harbormaster-state-')), 'undeliverable');
    const { logger, lines } = capturingLogger();
    const queue = new SqsWorkQueue(suite.sqs, { queue: queues.url, deadLetter: missingQueue(queues) }, logger, { undeliverableDirectory: directory });
    // What the request handler does with a refusal: dead-letter it, and say where it went.
    const results: DeadLetterResult[] = [];
    const consumer = new QueueConsumer(
      queue,
      async (message) => void results.push(await queue.deadLetter(message, { code: 'unknown-target', reason: 'this worker does not serve data/ingest/staging' })),
      { waitSeconds: 1, visibilityTimeoutSeconds: 1, heartbeatSeconds: 1 },
      logger,
    );
    const running = consumer.run();
    try {
      await eventually('the message to be kept', () => results.length > 0, 10_000);
      // Past two visibility timeouts: a message left on the queue would have come back by now.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
    } finally {
      await consumer.stop();
      await running;
    }
    assert.equal(results.length, 1, 'handled once, never delivered again');
    assert.equal(results[0]!.deadLettered, false);
    assert.deepEqual(readdirSync(directory).length, 1);
    assert.equal(JSON.parse(readFileSync((results[0] as { keptAt: string }).keptAt, 'utf8')).body, body);
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 0 });
    assert.ok(!lines.some((l) => String(l.msg).includes('will be delivered again')));
  });
});

describe('a refused message the dead-letter queue takes (moto)', () => {
  const suite = motoForSuite();

  it('goes there with its refusal in attributes SQS accepts, escaped and without credentials', async () => {
    const queues = await createQueues(suite.sqs);
    await sendRaw(suite.sqs, queues.url, 'refused');
    const { logger } = capturingLogger();
    const directory = join(mkdtempSync(join(tmpdir(), 'harbormaster-state-')), 'undeliverable');
    const queue = new SqsWorkQueue(suite.sqs, { queue: queues.url, deadLetter: queues.deadLetterUrl }, logger, { undeliverableDirectory: directory });
    const [message] = await queue.receive({ waitSeconds: 1, visibilityTimeoutSeconds: 30, signal: new AbortController().signal });
    assert.ok(message);
    // A reason built elsewhere without care: the queue still escapes what SQS would refuse.
    const result = await queue.deadLetter(message, { code: 'invalid', reason: `bad \u0007\u001b[2J\ud800 image user:hunter2@reg/app:1 ${'x'.repeat(2_000)}` });
    assert.deepEqual(result, { deadLettered: true });
    const [dead] = await drain(suite.sqs, queues.deadLetterUrl, 1);
    const reason = dead?.MessageAttributes?.['harbormaster.reason']?.StringValue ?? '';
    assert.match(reason, /^bad \\u0007\\u001b\[2J\\ud800 image user:\[redacted\]@reg\/app:1 x+\.\.\.$/);
    assert.ok(reason.length <= 1_100);
    assert.equal(dead?.MessageAttributes?.['harbormaster.refusal']?.StringValue, 'invalid');
    assert.equal(dead?.Body, 'refused');
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 0 });
    assert.throws(() => readdirSync(directory), /ENOENT/, 'nothing kept on disk when the dead-letter queue took it');
  });
});
