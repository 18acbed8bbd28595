import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { startMoto, type MotoServer } from '../../local-fleet/moto.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { requestRefused } from '../../src/chat/release-messages.js';
import type { ChatMessage } from '../../src/chat/chat.js';
import { hasUnsafeCharacters } from '../../src/request/outside-text.js';
import type { RefusalNotice } from '../../src/worker/handle-request.js';
import { createQueues, drain, queueDepth, sendRaw, sqsClient } from '../support/aws.js';
import { RecordingRollout } from '../support/recording-rollout.js';
import { CREDENTIAL_MARKER, REFUSED_CASES } from '../support/requests.js';
import { capturingLogger, withWorker, workerConfig } from '../support/worker-fixtures.js';

// What SQS takes in a message attribute value; moto does not check, so the test does.
const SQS_ATTRIBUTE_TEXT = /^[\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]*$/u;

/** Every string in a value, with where it is (`.3.reason`), the stack traces of our own errors aside. */
function strings(value: unknown, path = ''): Array<[string, string]> {
  if (typeof value === 'string') return [[path, value]];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, item]) => (key === 'stack' ? [] : strings(item, `${path}.${key}`)));
}

// Every refused input, end to end: sent to a real queue, judged by the worker, moved to the real
// dead-letter queue with its reason, and never handed to the rollout.
describe('refused requests end in the dead-letter queue with their reason', () => {
  let moto: MotoServer;
  let sqs: SQSClient;
  const sent = new Map<string, string>();
  const refused = new Map<string, Message>();
  const rollout = new RecordingRollout();
  const notices: RefusalNotice[] = [];
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
      { rollout, logger, store: new MemoryReleaseStore(), onRefused: (notice) => void notices.push(notice) },
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

  it('tells a refusal of an authentic request (its signature verified) from one of a message nobody is known to have written', () => {
    for (const refusal of REFUSED_CASES) {
      const notice = notices.find((n) => n.messageId === sent.get(refusal.name));
      // Refused before the signature verified: the size, the envelope's JSON and shape, the key, the signature.
      const unauthentic = ['oversize', 'unknown-key', 'bad-signature'].includes(refusal.code) || (refusal.code === 'malformed' && !/request: key/.test(notice?.reason ?? ''));
      assert.equal(notice?.authentic, !unauthentic, `${refusal.name} (${notice?.code}: ${notice?.reason})`);
    }
  });

  it('echoes no control character and no credential into a log line, a dead-letter attribute or chat', () => {
    const chat: ChatMessage[] = notices.map((notice) => requestRefused(notice));
    const places: Array<[string, unknown]> = [
      ['log', logLines],
      ['dead-letter attributes', [...refused.values()].map((message) => message.MessageAttributes)],
      ['chat', chat],
    ];
    for (const [where, value] of places) {
      const found = strings(value);
      assert.ok(found.length > 0, `nothing read from ${where}`);
      for (const [path, text] of found) {
        assert.ok(!hasUnsafeCharacters(text), `${where}${path}: a control character in ${JSON.stringify(text)}`);
        assert.ok(!text.includes(CREDENTIAL_MARKER), `${where}${path}: a credential in ${text}`);
      }
    }
    for (const message of refused.values()) {
      for (const [name, attribute] of Object.entries(message.MessageAttributes ?? {})) {
        assert.match(attribute.StringValue ?? '', SQS_ATTRIBUTE_TEXT, `${name} holds characters SQS refuses`);
      }
    }
    // The hostile parts are quoted escaped or redacted, not dropped: ops can still see what was sent.
    const reasons = [...refused.values()].map((m) => m.MessageAttributes?.['harbormaster.reason']?.StringValue ?? '');
    assert.ok(reasons.some((r) => r.includes("'evil\\u001b[2J\\u0007\\r\\nrelease: ok'")), 'the escaped field name');
    assert.ok(reasons.some((r) => r.includes("'deployer:[redacted]@127.0.0.1:5000/data/ingest:1'")), 'the redacted image');
  });

  it('never writes a signature or key to the log', () => {
    const text = JSON.stringify(logLines);
    assert.doesNotMatch(text, /test-signing-key/);
  });
});
