import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { startMoto, type MotoServer } from '../../local-fleet/moto.js';
import type { ChatMessage } from '../../src/chat/chat.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import type { RefusalNotice } from '../../src/worker/handle-request.js';
import { createQueues, drain, queueDepth, sendRaw, sqsClient } from '../support/aws.js';
import { forgedBodies, sendAll, type ForgedKind } from '../support/forged-messages.js';
import { RecordingRollout } from '../support/recording-rollout.js';
import { signed, validRequest } from '../support/requests.js';
import { capturingLogger, eventually, withWorker, workerConfig } from '../support/worker-fixtures.js';

// A flood of forged messages ahead of one good request, on a real queue with its dead-letter queue
// (moto), through the real poll loop and request handler: every forged one ends in the dead-letter
// queue with its refusal, the good one is admitted, and chat gets a summary or two, not a message
// each. How long it takes is scripts/benchmark-flood.ts's to say; nothing here asserts a time.
const FORGED = 1000;

describe('a flood of forged messages ahead of a good request (moto)', () => {
  let moto: MotoServer;
  let sqs: SQSClient;
  const rollout = new RecordingRollout();
  const notices: RefusalNotice[] = [];
  const chat: ChatMessage[] = [];
  const kindOf = new Map<string, ForgedKind>();
  const goodRequest = validRequest();
  let dead: Message[] = [];
  let logLines: Array<Record<string, unknown>> = [];
  let left = { visible: -1, inFlight: -1 };

  before(async () => {
    moto = await startMoto();
    sqs = sqsClient(moto.endpoint);
    const queues = await createQueues(sqs);
    const forged = forgedBodies(FORGED);
    const ids = await sendAll(sqs, queues.url, forged.map((m) => m.body));
    ids.forEach((id, i) => kindOf.set(id, forged[i]!.kind));
    await sendRaw(sqs, queues.url, signed(goodRequest));
    const { logger, lines } = capturingLogger();
    logLines = lines;
    await withWorker(
      workerConfig(moto.endpoint, queues),
      { rollout, logger, store: new MemoryReleaseStore(), chat: { post: (m) => void chat.push(m), flush: async () => undefined }, onRefused: (n) => void notices.push(n) },
      async () => {
        await eventually('the good request to reach the rollout and every forged one to be refused', () => rollout.releases.length === 1 && notices.length === FORGED, 300_000);
      },
    );
    dead = await drain(sqs, queues.deadLetterUrl, FORGED, 120_000);
    left = await queueDepth(sqs, queues.url);
  });
  after(async () => {
    sqs?.destroy();
    await moto?.stop();
  });

  it('admits the good request and hands it to the rollout', () => {
    assert.equal(rollout.releases.length, 1);
    assert.equal(rollout.releases[0]!.request.releaseId, goodRequest.releaseId);
    assert.deepEqual(left, { visible: 0, inFlight: 0 }, 'nothing left on the request queue');
  });

  it('puts every forged message in the dead-letter queue with its refusal, none twice', () => {
    assert.equal(dead.length, FORGED);
    const originals = new Set<string>();
    for (const message of dead) {
      const original = message.MessageAttributes?.['harbormaster.original-message-id']?.StringValue ?? '';
      const kind = kindOf.get(original);
      assert.ok(kind, `${original} is one of the forged messages`);
      assert.equal(message.MessageAttributes?.['harbormaster.refusal']?.StringValue, kind.code, kind.name);
      assert.ok((message.MessageAttributes?.['harbormaster.reason']?.StringValue ?? '').length > 0);
      originals.add(original);
    }
    assert.equal(originals.size, FORGED);
  });

  it('tells chat in a summary or two with the count, not a message per refusal', () => {
    assert.ok(notices.every((n) => !n.authentic), 'every forged message is refused as unauthentic');
    assert.equal(chat.filter((m) => m.text.startsWith('Refused a release request')).length, 0, 'no message of its own for a forged one');
    const summaries = chat.filter((m) => m.text.includes('not signed by a key this worker holds'));
    assert.ok(summaries.length >= 1 && summaries.length <= 2, `${summaries.length} summaries: ${summaries.map((m) => m.text).join(' | ')}`);
    assert.ok(chat.length <= 3, `${chat.length} chat messages in all`);
    const counted = summaries.map((m) => Number(/^Refused (\d+) messages? not signed/.exec(m.text)?.[1]));
    assert.equal(counted.reduce((a, b) => a + b, 0), FORGED);
    const codes = summaries.map((m) => m.fields?.find((f) => f.title === 'Refusals')?.value ?? '').join(', ');
    for (const code of ['malformed', 'bad-signature', 'unknown-key', 'oversize']) assert.match(codes, new RegExp(`${code} \\d+`));
    assert.ok((summaries[0]!.fields?.find((f) => f.title === 'First reasons')?.value ?? '').split('\n').length >= 3, 'the first distinct reasons');
  });

  it('still logs each refusal, at info', () => {
    const refused = logLines.filter((l) => l.msg === 'request refused');
    assert.equal(refused.length, FORGED);
    assert.ok(refused.every((l) => l.level === 'info' && l.authentic === false && l.deadLettered === true));
  });
});
