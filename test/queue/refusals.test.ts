import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { startMoto, type MotoServer } from '../../local-fleet/moto.js';
import { MemoryReleaseLedger } from '../../src/worker/release-ledger.js';
import { createQueues, drain, queueDepth, sendRaw, sqsClient } from '../support/aws.js';
import { RecordingRollout } from '../support/recording-rollout.js';
import { REFUSED_CASES } from '../support/requests.js';
import { capturingLogger, withWorker, workerConfig } from '../support/worker-fixtures.js';

// Every refused input, end to end: sent to a real queue, judged by the worker, moved to the real
// dead-letter queue with its reason, and never handed to the rollout.
describe('refused requests end in the dead-letter queue with their reason', () => {
  let moto: MotoServer;
  let sqs: SQSClient;
  const sent = new Map<string, string>();
  const refused = new Map<string, Message>();
  const rollout = new RecordingRollout();
  const notices: string[] = [];
  let logLines: Array<Record<string, unknown>> = [];

  before(async () => {
    moto = await startMoto();
    sqs = sqsClient(moto.endpoint);
    const queues = await createQueues(sqs);
    for (const refusal of REFUSED_CASES) sent.set(refusal.name, await sendRaw(sqs, queues.url, refusal.body()));
    const { logger, lines } = capturingLogger();
    logLines = lines;
    await withWorker(
      workerConfig(moto.endpoint, queues),
      { rollout, logger, ledger: new MemoryReleaseLedger(), onRefused: (notice) => void notices.push(notice.code) },
      async () => {
        for (const message of await drain(sqs, queues.deadLetterUrl, REFUSED_CASES.length, 60_000)) {
          refused.set(message.MessageAttributes?.['harbormaster.original-message-id']?.StringValue ?? '', message);
        }
      },
    );
    assert.deepEqual(await queueDepth(sqs, queues.url), { visible: 0, inFlight: 0 }, 'refused messages stay on the request queue');
  });
  after(async () => {
    sqs?.destroy();
    await moto?.stop();
  });

  for (const refusal of REFUSED_CASES) {
    it(refusal.name, () => {
      const messageId = sent.get(refusal.name)!;
      const dead = refused.get(messageId);
      assert.ok(dead, 'not in the dead-letter queue');
      assert.equal(dead.MessageAttributes?.['harbormaster.refusal']?.StringValue, refusal.code);
      assert.match(dead.MessageAttributes?.['harbormaster.reason']?.StringValue ?? '', refusal.reason);
      const logged = logLines.find((l) => l.msg === 'request refused' && l.messageId === messageId);
      assert.equal(logged?.refusal, refusal.code, 'the refusal is logged with its code');
    });
  }

  it('never hands a refused request to the rollout, and tells chat of each', () => {
    assert.equal(rollout.releases.length, 0);
    assert.equal(notices.length, REFUSED_CASES.length);
  });

  it('never writes a signature or key to the log', () => {
    const text = JSON.stringify(logLines);
    assert.doesNotMatch(text, /test-signing-key/);
  });
});
