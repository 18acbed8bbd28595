import { randomBytes } from 'node:crypto';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { ENVELOPE_FORMAT } from '../../src/request/signed-envelope.js';
import { signed, validRequest } from './requests.js';
import { OTHER_KEY, TEST_KEY } from './worker-fixtures.js';

// Messages nobody with a key the worker holds wrote: what a flood of forgeries looks like. Each kind
// is refused before its signature is verified (or because it does not verify).

export interface ForgedKind {
  readonly name: string;
  /** The refusal the worker must give it. */
  readonly code: 'malformed' | 'bad-signature' | 'unknown-key' | 'oversize';
  readonly body: (index: number) => string;
}

export const FORGED_KINDS: readonly ForgedKind[] = [
  { name: 'garbage', code: 'malformed', body: (i) => `garbage ${i} ${randomBytes(12).toString('hex')}` },
  { name: 'JSON that is not an envelope', code: 'malformed', body: (i) => JSON.stringify([i]) },
  { name: 'signed with another secret', code: 'bad-signature', body: () => signed(validRequest(), OTHER_KEY) },
  {
    name: 'unsigned',
    code: 'bad-signature',
    body: () => JSON.stringify({ format: ENVELOPE_FORMAT, keyId: TEST_KEY.id, payload: JSON.stringify(validRequest()) }),
  },
  { name: 'signed with a key the worker does not hold', code: 'unknown-key', body: () => signed(validRequest(), { id: 'ci-forger', secret: TEST_KEY.secret }) },
  { name: 'oversize', code: 'oversize', body: (i) => `${i}${'x'.repeat(17_000)}` },
];

/** The `count` forged messages, kinds in turn: message i is of kind i mod FORGED_KINDS.length. */
export function forgedBodies(count: number): Array<{ kind: ForgedKind; body: string }> {
  return Array.from({ length: count }, (_, i) => {
    const kind = FORGED_KINDS[i % FORGED_KINDS.length]!;
    return { kind, body: kind.body(i) };
  });
}

/** Sends bodies in order, ten to a call, a few calls at once; the message ids, in the same order. */
export async function sendAll(sqs: SQSClient, url: string, bodies: readonly string[], concurrency = 4): Promise<string[]> {
  const ids: string[] = new Array(bodies.length);
  const chunks = Array.from({ length: Math.ceil(bodies.length / 10) }, (_, c) => c * 10);
  let next = 0;
  const sender = async () => {
    while (next < chunks.length) {
      const start = chunks[next++]!;
      const entries = bodies.slice(start, start + 10).map((body, i) => ({ Id: String(start + i), MessageBody: body }));
      const result = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
      if (result.Failed?.length) throw new Error(`sending forged messages failed: ${result.Failed.map((f) => f.Message).join('; ')}`);
      for (const sent of result.Successful ?? []) ids[Number(sent.Id)] = sent.MessageId!;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, sender));
  return ids;
}
