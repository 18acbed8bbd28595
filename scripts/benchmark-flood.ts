// How long a good release request waits behind a flood of forged ones: a moto_server on a free
// loopback port, a request queue with its dead-letter queue, FORGED forged messages (default 1000:
// garbage, bad signatures, a key the worker does not hold, oversize; test/support/forged-messages.ts)
// and UNSERVED signed requests for a deployment the worker does not serve (default 0; handed back
// for another worker, then refused after three deliveries) sent first, one good signed request after
// them. Then the real worker (poll loop, request handler, scheduler; a memory store, a rollout that
// only records, chat that only collects) is started. The script prints how long until the good
// request was handed to the rollout, how long until every bad one was refused, the chat messages,
// and the SQS calls by operation. RUNS runs (default 1), each on new queues. Nothing is polled from
// SQS by the script while the worker runs; the dead-letter queue's depth is read once at the end.
// First, the floor: the same bad messages drained by the script alone, one call after another
// (receive ten, send them to the dead-letter queue in one batch, delete them in one batch), which is
// what moto takes for the calls a refusal needs, whatever the worker does (without UNSERVED only).
//   node --import tsx scripts/benchmark-flood.ts
//   FORGED=750 UNSERVED=250 RUNS=3 node --import tsx scripts/benchmark-flood.ts
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { destination } from 'pino';
import type { Chat, ChatMessage } from '../src/chat/chat.js';
import { createLogger } from '../src/log/logger.js';
import { MemoryReleaseStore } from '../src/state/memory-release-store.js';
import { createWorker } from '../src/worker/worker.js';
import { startMoto } from '../local-fleet/moto.js';
import { createQueues, deleteQueues, queueDepth, sendRaw, sqsClient } from '../test/support/aws.js';
import { forgedBodies, sendAll } from '../test/support/forged-messages.js';
import { RecordingRollout } from '../test/support/recording-rollout.js';
import { signed, validRequest } from '../test/support/requests.js';
import { workerConfig, workerEnvironment } from '../test/support/worker-fixtures.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const FORGED = Number(process.env.FORGED ?? 1000);
const UNSERVED = Number(process.env.UNSERVED ?? 0);
const RUNS = Number(process.env.RUNS ?? 1);
/** How long a run may take before it is given up on. */
const LIMIT_MS = Number(process.env.LIMIT_SECONDS ?? 300) * 1000;

// Every SQS call made while the worker runs, counted and timed by operation.
const calls = new Map<string, { count: number; ms: number; messages: number }>();
let counting = false;
const send = SQSClient.prototype.send as (...args: unknown[]) => Promise<{ Messages?: unknown[] }>;
SQSClient.prototype.send = async function (this: SQSClient, command: { constructor: { name: string } }, ...rest: unknown[]) {
  const started = performance.now();
  const answer = await send.call(this, command, ...rest);
  if (counting) {
    const name = command.constructor.name.replace(/Command$/, '');
    const entry = calls.get(name) ?? { count: 0, ms: 0, messages: 0 };
    calls.set(name, { count: entry.count + 1, ms: entry.ms + performance.now() - started, messages: entry.messages + (answer?.Messages?.length ?? 0) });
  }
  return answer;
} as typeof SQSClient.prototype.send;

const moto = await startMoto();
const sqs = sqsClient(moto.endpoint);
const logFile = join(mkdtempSync(join(tmpdir(), 'harbormaster-flood-')), 'worker.log');
const unservedText = UNSERVED > 0 ? ` and ${UNSERVED} signed requests for a deployment the worker does not serve` : '';
console.log(`${FORGED} forged messages${unservedText}, then one good request; worker log in ${logFile}`);

/** The bad bodies: the forged ones, with the unserved requests spread evenly among them. */
function badBodies(): string[] {
  const bodies = forgedBodies(FORGED).map((m) => m.body);
  for (let i = 0; i < UNSERVED; i += 1) {
    const body = signed(validRequest({ target: { stack: 'data', release: 'ingest', deployment: 'production' } }));
    bodies.splice(Math.floor(((i + 1) * bodies.length) / (UNSERVED + 1)), 0, body);
  }
  return bodies;
}

/** The bad messages drained by the script alone: receive ten, one SendMessageBatch, one DeleteMessageBatch, until none is left. */
async function floor(): Promise<void> {
  const queues = await createQueues(sqs);
  await sendAll(sqs, queues.url, badBodies());
  const started = performance.now();
  let drained = 0;
  for (;;) {
    const { Messages: messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queues.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60 }));
    if (messages.length === 0) break;
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: queues.deadLetterUrl, Entries: messages.map((m, i) => ({ Id: String(i), MessageBody: m.Body! })) }));
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queues.url, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    drained += messages.length;
  }
  console.log(`floor: the script alone drained ${drained} messages to the dead-letter queue in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  await deleteQueues(sqs, queues).catch(() => undefined);
}

async function run(index: number): Promise<void> {
  const queues = await createQueues(sqs);
  await sendAll(sqs, queues.url, badBodies());
  await sendRaw(sqs, queues.url, signed(validRequest()));
  const posted: ChatMessage[] = [];
  const chat: Chat = { post: (message) => void posted.push(message), flush: async () => undefined };
  const rollout = new RecordingRollout();
  const config = workerConfig(moto.endpoint, queues);
  const logger = createLogger({ level: config.log.level }, destination({ dest: logFile, sync: false }));
  let refused = 0;
  const worker = createWorker(config, { rollout, chat, store: new MemoryReleaseStore(), logger, env: workerEnvironment(), onRefused: () => void (refused += 1) });
  counting = true;
  const started = performance.now();
  const running = worker.run();
  let admittedMs: number | undefined;
  let refusedMs: number | undefined;
  try {
    while (performance.now() - started < LIMIT_MS && (admittedMs === undefined || refusedMs === undefined)) {
      if (admittedMs === undefined && rollout.releases.length > 0) admittedMs = performance.now() - started;
      if (refusedMs === undefined && refused >= FORGED + UNSERVED) refusedMs = performance.now() - started;
      await sleep(10);
    }
  } finally {
    await worker.stop();
    await running;
    counting = false;
    worker.close();
  }
  const dead = (await queueDepth(sqs, queues.deadLetterUrl)).visible;
  await deleteQueues(sqs, queues).catch(() => undefined);
  const seconds = (ms: number | undefined) => (ms === undefined ? `not within ${LIMIT_MS / 1000} s` : `${(ms / 1000).toFixed(1)} s`);
  console.log(`run ${index + 1}: the good request handed to the rollout after ${seconds(admittedMs)}; all ${FORGED + UNSERVED} bad ones refused after ${seconds(refusedMs)}; ${dead} in the dead-letter queue; ${posted.length} chat message(s)`);
  const own = posted.filter((message) => message.text.startsWith('Refused a release request'));
  if (own.length > 0) console.log(`  chat: ${own.length} x a refused signed request, one message each, e.g. "${own[0]!.text}"`);
  for (const message of posted.filter((m) => !own.includes(m))) console.log(`  chat: ${message.text}`);
  for (const [name, entry] of calls) console.log(`  ${name}: ${entry.count} calls, ${Math.round(entry.ms / entry.count)} ms each on average${entry.messages ? `, ${entry.messages} messages` : ''}`);
  calls.clear();
}

try {
  if (UNSERVED === 0) await floor();
  for (let i = 0; i < RUNS; i += 1) await run(i);
} finally {
  sqs.destroy();
  await moto.stop();
}
