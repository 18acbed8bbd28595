import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueueConsumer } from '../../src/queue/consumer.js';
import { SqsWorkQueue, type QueueMessage, type WorkQueue } from '../../src/queue/sqs-queue.js';
import { createQueues, deleteQueues, motoForSuite } from '../support/aws.js';
import { capturingLogger, eventually } from '../support/worker-fixtures.js';

// Failures a real server cannot be made to give on demand, with a scripted queue.
class ScriptedQueue implements WorkQueue {
  receives = 0;
  /** How many messages each receive asked for. */
  readonly asked: number[] = [];
  constructor(private readonly script: Array<Error | QueueMessage | QueueMessage[] | undefined>) {}
  async receive(options: { signal: AbortSignal; max?: number }): Promise<QueueMessage[]> {
    this.receives += 1;
    this.asked.push(options.max ?? 1);
    const next = this.script.shift();
    if (next instanceof Error) throw next;
    if (Array.isArray(next)) return next;
    if (next) return [next];
    // An empty long poll: wait until aborted.
    return new Promise<QueueMessage[]>((resolve, reject) => {
      const timer = setTimeout(() => resolve([]), 50);
      options.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      }, { once: true });
    });
  }
  async extendVisibility() {}
  async acknowledge() {}
  readonly handedBack: Array<[string, number]> = [];
  async handBack(m: QueueMessage, seconds: number) {
    this.handedBack.push([m.id, seconds]);
  }
  async deadLetter() {
    return { deadLettered: true } as const;
  }
}

const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
const refused = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
const message: QueueMessage = { id: 'm-1', receiptHandle: 'r-1', body: '{}', receiveCount: 1 };

describe('the poll loop', () => {
  it('outlives transient and network errors, backing off, and then handles the next message', async () => {
    const queue = new ScriptedQueue([throttled(), refused(), new Error('AccessDenied'), message]);
    const handled: string[] = [];
    const { logger, lines } = capturingLogger();
    const consumer = new QueueConsumer(queue, async (m) => void handled.push(m.id), { waitSeconds: 1, visibilityTimeoutSeconds: 30, heartbeatSeconds: 10, backoffMinMs: 10, backoffMaxMs: 40 }, logger);
    const running = consumer.run();
    await eventually('the message to be handled', () => handled.length === 1, 5_000);
    await consumer.stop();
    await running;
    assert.deepEqual(handled, ['m-1']);
    const failures = lines.filter((l) => l.msg === 'receiving from the queue failed');
    assert.deepEqual(failures.map((l) => l.failures), [1, 2, 3]);
    assert.ok(failures.every((l) => typeof l.retryInMs === 'number' && (l.retryInMs as number) <= 40));
  });

  it('keeps polling after a handler throws, leaving that message for redelivery', async () => {
    const queue = new ScriptedQueue([message, { ...message, id: 'm-2' }]);
    const handled: string[] = [];
    const { logger, lines } = capturingLogger();
    const consumer = new QueueConsumer(queue, async (m) => {
      handled.push(m.id);
      if (m.id === 'm-1') throw new Error('boom');
    }, { waitSeconds: 1, visibilityTimeoutSeconds: 30, heartbeatSeconds: 10 }, logger);
    const running = consumer.run();
    await eventually('both messages to be handled', () => handled.length === 2, 5_000);
    await consumer.stop();
    await running;
    assert.ok(lines.some((l) => l.msg === 'handling the message failed; it will be delivered again'));
  });
});

describe('the poll loop with admission', () => {
  const messages = (prefix: string, count: number): QueueMessage[] => Array.from({ length: count }, (_, i) => ({ ...message, id: `${prefix}-${i}`, receiptHandle: `r-${prefix}-${i}` }));

  it('receives ten at a time, admission ending the refused ones at once, whatever maxInFlight is', async () => {
    const queue = new ScriptedQueue([messages('bad', 10), [...messages('worse', 9), { ...message, id: 'good' }]]);
    const handled: string[] = [];
    const { logger } = capturingLogger();
    const admit = async (m: QueueMessage) => (m.id === 'good' ? ('handle' as const) : ('done' as const));
    const consumer = new QueueConsumer(queue, async (m) => void handled.push(m.id), { waitSeconds: 1, visibilityTimeoutSeconds: 30, heartbeatSeconds: 10, maxInFlight: 3 }, logger, admit);
    const running = consumer.run();
    await eventually('the good message to be handled', () => handled.length === 1, 5_000);
    await consumer.stop();
    await running;
    assert.deepEqual(handled, ['good']);
    assert.ok(queue.asked.every((max) => max === 10), `asked for ${queue.asked.join(', ')}`);
  });

  it('hands a message back after the pause admission asks for, without a handling slot, and stops only once it is handed back', async () => {
    const queue = new ScriptedQueue([messages('unserved', 5), { ...message, id: 'good' }]);
    const handled: Array<{ id: string; at: number }> = [];
    const { logger } = capturingLogger();
    const started = Date.now();
    const admit = async (m: QueueMessage) => (m.id === 'good' ? ('handle' as const) : { handBackSeconds: 1, afterMs: 400 });
    const consumer = new QueueConsumer(queue, async (m) => void handled.push({ id: m.id, at: Date.now() - started }), { waitSeconds: 1, visibilityTimeoutSeconds: 30, heartbeatSeconds: 10, maxInFlight: 1 }, logger, admit);
    const running = consumer.run();
    await eventually('the good message to be handled', () => handled.length === 1, 5_000);
    assert.ok(handled[0]!.at < 400, `handled after ${handled[0]!.at} ms: it waited for the hand-backs`);
    assert.equal(queue.handedBack.length, 0, 'the hand-backs wait out their pause');
    await consumer.stop();
    await running;
    assert.deepEqual(queue.handedBack.map(([id, seconds]) => `${id}:${seconds}`).sort(), messages('unserved', 5).map((m) => `${m.id}:1`));
  });
});

describe('stopping the poll loop (moto)', () => {
  const suite = motoForSuite();

  // The 20 s long poll is moto's own; the test is bounded well below it, so a stop() that does not
  // cut the poll fails by timing out, and the receive must end aborted, not answered empty.
  it('stops during a long poll at once: the receive in flight is aborted', { timeout: 12_000 }, async () => {
    const queues = await createQueues(suite.sqs);
    const { logger } = capturingLogger();
    const sqsQueue = new SqsWorkQueue(suite.sqs, { queue: queues.url, deadLetter: queues.deadLetterUrl }, logger);
    const receives: Array<{ signal: AbortSignal; settled?: 'answered' | 'rejected'; error?: unknown }> = [];
    const watched: WorkQueue = Object.assign(Object.create(sqsQueue) as SqsWorkQueue, {
      receive: (options: Parameters<WorkQueue['receive']>[0]) => {
        const entry: (typeof receives)[number] = { signal: options.signal };
        receives.push(entry);
        return sqsQueue.receive(options).then(
          (messages) => ((entry.settled = 'answered'), messages),
          (error: unknown) => {
            entry.settled = 'rejected';
            entry.error = error;
            throw error;
          },
        );
      },
    });
    const consumer = new QueueConsumer(watched, async () => undefined, { waitSeconds: 20, visibilityTimeoutSeconds: 30, heartbeatSeconds: 10 }, logger);
    const running = consumer.run();
    await eventually('a long poll to be in flight at moto', () => receives.length === 1, 5_000);
    // Give the request time to reach moto and start waiting there.
    await sleep(300);
    assert.equal(receives[0]!.settled, undefined, 'the long poll is still waiting at moto');
    await consumer.stop();
    await running;
    assert.equal(receives.length, 1, 'no poll after stop()');
    assert.equal(receives[0]!.signal.aborted, true);
    assert.equal(receives[0]!.settled, 'rejected', 'the long poll ended by being cut, not by moto answering');
    assert.equal((receives[0]!.error as Error).name, 'AbortError');
    await deleteQueues(suite.sqs, queues);
  });
});
