import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import type { ReleaseRecord } from '../../src/state/release-record.js';
import { chooseRollback, rollbackRecord } from '../../src/worker/rollback-choice.js';
import { validRequest } from '../support/requests.js';
import { signedRecord } from '../support/signed-records.js';
import { REGISTRY } from '../support/worker-fixtures.js';

// Which release a rollback goes back to, from the target's history (newest first).

const TARGET = 'data/ingest/staging';
const digestOf = (tag: string) => `${REGISTRY}/data/ingest@sha256:${Buffer.from(tag).toString('hex').padEnd(64, '0')}`;

function succeeded(tag: string, minutesAgo: number): ReleaseRecord {
  const request = validRequest({ image: `${REGISTRY}/data/ingest:${tag}`, createdAt: new Date(Date.now() - minutesAgo * 60_000).toISOString() }) as unknown as ReleaseRequest;
  return { ...signedRecord({ request, target: TARGET, deployment: 'staging', now: new Date(), worker: 'w' }), status: 'succeeded', imageDigest: digestOf(tag) };
}

describe('the release a rollback goes back to', () => {
  it('the newest succeeded release with another image, by its recorded digest', () => {
    const [v1, v2, v3] = [succeeded('v1', 30), succeeded('v2', 20), succeeded('v3', 10)];
    const choice = chooseRollback(TARGET, [v3, v2, v1]);
    assert.ok(choice.ok);
    assert.equal(choice.to.releaseId, v2.releaseId);
    const record = rollbackRecord(choice, { releaseId: randomUUID(), by: 'carol', at: new Date().toISOString() }, new Date(), 'w');
    assert.deepEqual([record.request.image, record.vouchedBy, record.request.requestedBy, record.origin?.of], [digestOf('v2'), v2.releaseId, 'carol', v3.releaseId]);
  });

  it('a second rollback goes further back: never to the release the first undid, nor to the image now current under its tag', () => {
    const [v1, v2, v3] = [succeeded('v1', 30), succeeded('v2', 20), succeeded('v3', 10)];
    const first = chooseRollback(TARGET, [v3, v2, v1]);
    assert.ok(first.ok);
    const back = { ...rollbackRecord(first, { releaseId: randomUUID(), by: 'carol', at: new Date().toISOString() }, new Date(), 'w'), status: 'succeeded' as const, imageDigest: digestOf('v2') };
    const second = chooseRollback(TARGET, [back, v3, v2, v1]);
    assert.ok(second.ok);
    assert.equal(second.to.releaseId, v1.releaseId, 'not v3 (undone), not v2 (current, by digest)');
  });
});
