import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  DeleteMessageBatchCommand,
  SendMessageBatchCommand,
  type BatchResultErrorEntry,
  type DeleteMessageBatchCommandOutput,
  type SendMessageBatchCommandOutput,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { MAX_BATCH_BYTES, packBatches } from '../../src/queue/sqs-batches.js';
import { SqsWorkQueue, type DeadLetterResult, type QueueMessage } from '../../src/queue/sqs-queue.js';
import { createQueues, drain, motoForSuite, queueDepth, type TestQueues } from '../support/aws.js';
import { sendAll } from '../support/forged-messages.js';
import { capturingLogger } from '../support/worker-fixtures.js';

// Refusals made together leave together: one SendMessageBatch and one DeleteMessageBatch for every
// ten, each entry still ending on its own (in the dead-letter queue, kept on disk, or left on the
// request queue when it could be neither placed nor deleted).

type Send = (command: unknown, options?: unknown) => Promise<unknown>;

/** What a test makes of a batch call before (and instead of part of) moto: entries to fail, by body or receipt handle. */
interface Interception {
  /** Entries of a SendMessageBatch failed instead of sent (the rest go to moto). */
  readonly failSend?: (body: string, attempt: number) => BatchResultErrorEntry | undefined;
  /** Entries of a DeleteMessageBatch failed instead of deleted. */
  readonly failDelete?: (receiptHandle: string) => BatchResultErrorEntry | undefined;
}

/** The suite's client, recording every batch call's entry count, and failing entries as told. */
function intercepting(real: SQSClient, interception: Interception = {}) {
  const sends: number[] = [];
  const deletes: number[] = [];
  const send: Send = async (command, options) => {
    const forward = real.send.bind(real) as Send;
    if (command instanceof SendMessageBatchCommand) {
      const entries = command.input.Entries ?? [];
      sends.push(entries.length);
      const failed: BatchResultErrorEntry[] = [];
      const passed = entries.filter((entry) => {
        const failure = interception.failSend?.(entry.MessageBody ?? '', sends.length);
        if (failure) failed.push({ ...failure, Id: entry.Id });
        return !failure;
      });
      const answer = passed.length > 0 ? ((await forward(new SendMessageBatchCommand({ ...command.input, Entries: passed }), options)) as SendMessageBatchCommandOutput) : { Successful: [], Failed: [] };
      return { ...answer, Failed: [...(answer.Failed ?? []), ...failed] };
    }
    if (command instanceof DeleteMessageBatchCommand) {
      const entries = command.input.Entries ?? [];
      deletes.push(entries.length);
      const failed: BatchResultErrorEntry[] = [];
      const passed = entries.filter((entry) => {
        const failure = interception.failDelete?.(entry.ReceiptHandle ?? '');
        if (failure) failed.push({ ...failure, Id: entry.Id });
        return !failure;
      });
      const answer = passed.length > 0 ? ((await forward(new DeleteMessageBatchCommand({ ...command.input, Entries: passed }), options)) as DeleteMessageBatchCommandOutput) : { Successful: [], Failed: [] };
      return { ...answer, Failed: [...(answer.Failed ?? []), ...failed] };
    }
    return forward(command, options);
  };
  return { sqs: { send } as unknown as SQSClient, sends, deletes };
}

async function receiveAll(queue: SqsWorkQueue, count: number): Promise<QueueMessage[]> {
  const messages = new Map<string, QueueMessage>();
  for (let attempt = 0; attempt < count + 10 && messages.size < count; attempt += 1) {
    for (const message of await queue.receive({ waitSeconds: 1, visibilityTimeoutSeconds: 60, signal: new AbortController().signal, max: 10 })) messages.set(message.id, message);
  }
  assert.equal(messages.size, count, 'every message received');
  return [...messages.values()];
}

const refusal = (body: string) => ({ code: 'malformed', reason: `message is not JSON (${body})` });

describe('refusals made together are dead-lettered in batches (moto)', () => {
  const suite = motoForSuite();

  async function setUp(count: number, interception?: Interception) {
    const queues: TestQueues = await createQueues(suite.sqs);
    const bodies = Array.from({ length: count }, (_, i) => `forged ${i}`);
    await sendAll(suite.sqs, queues.url, bodies);
    const client = intercepting(suite.sqs, interception);
    const { logger, lines } = capturingLogger();
    const directory = join(mkdtempSync(join(tmpdir(), 'harbormaster-state-')), 'undeliverable');
    const queue = new SqsWorkQueue(client.sqs, { queue: queues.url, deadLetter: queues.deadLetterUrl }, logger, { undeliverableDirectory: directory, deadLetterMinTimeoutMs: 10 });
    const messages = await receiveAll(new SqsWorkQueue(suite.sqs, { queue: queues.url, deadLetter: queues.deadLetterUrl }, logger), count);
    return { queues, queue, messages, client, lines, directory };
  }

  it('sends and deletes ten to a call, every message in the dead-letter queue with its refusal', async () => {
    const { queues, queue, messages, client } = await setUp(25);
    // All in one turn, as the worker's admission of a receive makes them.
    const results = await Promise.all(messages.map((message) => queue.deadLetter(message, refusal(message.body))));
    assert.ok(results.every((result) => result.deadLettered));
    // The batches go side by side: their calls in any order.
    assert.deepEqual([...client.sends].sort(), [10, 10, 5].sort());
    assert.deepEqual([...client.deletes].sort(), [10, 10, 5].sort());
    const dead = await drain(suite.sqs, queues.deadLetterUrl, 25);
    assert.equal(dead.length, 25);
    for (const message of dead) {
      const id = message.MessageAttributes?.['harbormaster.original-message-id']?.StringValue;
      const original = messages.find((m) => m.id === id);
      assert.ok(original, 'the original message id is attached');
      assert.equal(message.Body, original.body);
      assert.equal(message.MessageAttributes?.['harbormaster.refusal']?.StringValue, 'malformed');
      assert.equal(message.MessageAttributes?.['harbormaster.reason']?.StringValue, `message is not JSON (${original.body})`);
    }
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 0 });
  });

  it('keeps on disk only the entry the dead-letter queue refused as the sender\'s fault, without retrying it', async () => {
    const refused = { Code: 'InvalidMessageContents', SenderFault: true, Message: 'Invalid characters found' } as BatchResultErrorEntry;
    const { queues, queue, messages, client, directory } = await setUp(4, { failSend: (body) => (body === 'forged 2' ? refused : undefined) });
    const results = await Promise.all(messages.map((message) => queue.deadLetter(message, refusal(message.body))));
    assert.deepEqual(client.sends, [4], 'one call: a sender fault is not retried');
    const kept = results.filter((result): result is Extract<DeadLetterResult, { deadLettered: false }> => !result.deadLettered);
    assert.equal(kept.length, 1);
    assert.match(kept[0]!.error, /^InvalidMessageContents: Invalid characters found$/);
    const file = JSON.parse(readFileSync(kept[0]!.keptAt, 'utf8')) as { body: string; refusal: unknown };
    assert.equal(file.body, 'forged 2');
    assert.deepEqual(file.refusal, refusal('forged 2'));
    assert.equal(readdirSync(directory).length, 1);
    assert.equal((await drain(suite.sqs, queues.deadLetterUrl, 3)).length, 3);
    assert.deepEqual(client.deletes, [4], 'the kept one is deleted with the others');
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 0 });
  });

  it('sends again, alone, an entry the server failed', async () => {
    const busy = { Code: 'InternalError', SenderFault: false, Message: 'try again' } as BatchResultErrorEntry;
    const { queues, queue, messages, client, directory } = await setUp(3, { failSend: (body, attempt) => (body === 'forged 1' && attempt === 1 ? busy : undefined) });
    const results = await Promise.all(messages.map((message) => queue.deadLetter(message, refusal(message.body))));
    assert.ok(results.every((result) => result.deadLettered));
    assert.deepEqual(client.sends, [3, 1]);
    assert.equal((await drain(suite.sqs, queues.deadLetterUrl, 3)).length, 3);
    assert.throws(() => readdirSync(directory), /ENOENT/, 'nothing kept on disk');
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 0 });
  });

  it('keeps on disk an entry the server keeps failing, once its retries are spent', async () => {
    const busy = { Code: 'InternalError', SenderFault: false, Message: 'try again' } as BatchResultErrorEntry;
    const { queues, queue, messages, client } = await setUp(2, { failSend: (body) => (body === 'forged 0' ? busy : undefined) });
    const results = await Promise.all(messages.map((message) => queue.deadLetter(message, refusal(message.body))));
    assert.deepEqual(client.sends, [2, 1, 1, 1, 1, 1], 'one call and five retries of the failed entry');
    const kept = results.filter((result) => !result.deadLettered);
    assert.equal(kept.length, 1);
    assert.match((kept[0] as { error: string }).error, /^InternalError: try again$/);
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 0 });
  });

  it('leaves on the request queue only the message whose delete failed', async () => {
    let invalidHandle = '';
    const invalid = { Code: 'ReceiptHandleIsInvalid', SenderFault: true, Message: 'The receipt handle is not valid' } as BatchResultErrorEntry;
    const { queues, queue, messages, lines } = await setUp(3, { failDelete: (handle) => (handle === invalidHandle ? invalid : undefined) });
    invalidHandle = messages[1]!.receiptHandle;
    const settled = await Promise.allSettled(messages.map((message) => queue.deadLetter(message, refusal(message.body))));
    assert.deepEqual(settled.map((s) => s.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((settled[1] as PromiseRejectedResult).reason), new RegExp(`message ${messages[1]!.id} was placed but deleting it failed \\(ReceiptHandleIsInvalid`));
    assert.ok(lines.some((l) => l.messageId === messages[1]!.id && String(l.msg).includes('deleting it from the request queue failed')));
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 1 });
  });
});

describe('packing refusals into batches', () => {
  it('puts at most ten entries and MAX_BATCH_BYTES in a batch, in order; a larger entry alone', () => {
    assert.deepEqual(packBatches([]), []);
    assert.deepEqual(packBatches(Array(23).fill(100)).map((b) => b.length), [10, 10, 3]);
    const half = MAX_BATCH_BYTES / 2;
    assert.deepEqual(packBatches([half, half, 1, MAX_BATCH_BYTES * 3, 1, 1]), [[0, 1], [2], [3], [4, 5]]);
  });
});
