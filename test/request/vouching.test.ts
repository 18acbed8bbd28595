import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import { vouchFor, type VouchingPolicy } from '../../src/request/vouching.js';
import type { ReleaseRecord } from '../../src/state/release-record.js';
import { validRequest } from '../support/requests.js';
import { envelopeOf, signedRecord } from '../support/signed-records.js';
import { OTHER_KEY, REGISTRY, TEST_KEY, workerConfig } from '../support/worker-fixtures.js';

// What vouches for a release record before the worker acts on it: one row per rule. A record is data
// anyone with write access to the store could have written; only a CI signature the worker can
// verify now, and its own configuration, decide whether it is acted on.

const releases = workerConfig('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }).releases;
const DIGEST = `${REGISTRY}/data/ingest@sha256:${'a'.repeat(64)}`;

function ciRecord(overrides: Record<string, unknown> = {}): ReleaseRecord {
  const request = validRequest({ releaseId: randomUUID(), ...overrides }) as unknown as ReleaseRequest;
  const deployment = 'deployment' in request.target ? request.target.deployment : 'personal-alice';
  return signedRecord({ request, target: `data/ingest/${deployment}`, deployment, now: new Date(), worker: 'w' });
}

function policy(records: ReleaseRecord[] = [], keys = new Map([[TEST_KEY.id, TEST_KEY]])): VouchingPolicy {
  return { keys: () => keys, releases, get: async (id) => records.find((r) => r.releaseId === id) };
}

/** A rollback of `to`, as the worker writes it: the request copied with a new id, the voucher named. */
function rollbackOf(to: ReleaseRecord, change: (request: ReleaseRequest) => ReleaseRequest = (r) => r): ReleaseRecord {
  const releaseId = randomUUID();
  const request = change({ ...to.request, releaseId, createdAt: new Date().toISOString() });
  const { envelope: _none, ...rest } = to;
  return { ...rest, releaseId, request, status: 'accepted', revision: 0, hosts: {}, vouchedBy: to.releaseId, origin: { kind: 'rollback', to: to.releaseId, by: 'ops', at: new Date().toISOString() } };
}

const succeeded = (record: ReleaseRecord, digest?: string): ReleaseRecord => ({ ...record, status: 'succeeded', ...(digest ? { imageDigest: digest } : {}) });

describe('what vouches for a release record', () => {
  it('a CI request whose envelope verifies, for a target and image the configuration serves', async () => {
    const record = ciRecord();
    const vouched = await vouchFor(record, policy());
    assert.equal(vouched.ok, true, JSON.stringify(vouched));
    assert.ok(vouched.ok && vouched.releaseConfig.release === 'ingest' && vouched.voucher === record.releaseId);
  });

  const refused: Array<[string, () => ReleaseRecord, RegExp]> = [
    ['a record with no envelope', () => {
      const { envelope: _gone, ...rest } = ciRecord();
      return rest;
    }, /no signed envelope/],
    ['an image changed after signing', () => {
      const record = ciRecord();
      return { ...record, request: { ...record.request, image: `${REGISTRY}/data/ingest:v3` } };
    }, /differs from what its envelope signed/],
    ['a deployment changed after signing (target and request agree with each other)', () => {
      const record = ciRecord();
      return { ...record, target: 'data/ingest/integration', deployment: 'integration', request: { ...record.request, target: { stack: 'data', release: 'ingest', deployment: 'integration' } } };
    }, /differs from what its envelope signed/],
    ['a record whose target disagrees with its signed request', () => ({ ...ciRecord(), target: 'data/ingest/integration', deployment: 'integration' }), /says target data\/ingest\/integration.*request is for data\/ingest\/staging/],
    ['an envelope signed with another secret under the same key id', () => {
      const record = ciRecord();
      return { ...record, envelope: envelopeOf(record.request, OTHER_KEY) };
    }, /does not verify \(bad-signature\)/],
    ['an envelope of another release', () => ({ ...ciRecord(), envelope: ciRecord().envelope! }), /signed for release/],
    ['a target the configuration does not serve', () => ciRecord({ target: { stack: 'data', release: 'ingest', deployment: 'production' } }), /does not serve data\/ingest\/production/],
    ['an image from a repository not allowed', () => ciRecord({ image: `${REGISTRY}/other/thing:v1` }), /not allowed/],
    ['a voucher named by a record that repeats nothing', () => ({ ...ciRecord(), vouchedBy: randomUUID() }), /neither a rollback nor a release for new hosts/],
  ];
  for (const [name, make, reason] of refused) {
    it(`refuses ${name}`, async () => {
      const vouched = await vouchFor(make(), policy());
      assert.equal(vouched.ok, false);
      assert.match(!vouched.ok ? vouched.reason : '', reason);
    });
  }

  it('refuses a record signed with a key the worker no longer holds (removed or emptied)', async () => {
    const vouched = await vouchFor(ciRecord(), policy([], new Map()));
    assert.equal(vouched.ok, false);
    assert.match(!vouched.ok ? vouched.reason : '', /unknown-key/);
  });

  it('refuses a key outside its scope', async () => {
    const scoped: VouchingPolicy = { ...policy(), scopes: new Map([[TEST_KEY.id, { deployments: ['integration'], personal: false }]]) };
    const vouched = await vouchFor(ciRecord(), scoped);
    assert.equal(vouched.ok, false);
    assert.match(!vouched.ok ? vouched.reason : '', /may not release/);
  });

  it('refuses a key without a scope for a deployment marked protected, at every take-up', async () => {
    const guarded = workerConfig('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }, {
      releases: [{ stack: 'data', release: 'ingest', deployments: ['integration', { name: 'staging', protected: true }], images: { allowedRepositories: [`${REGISTRY}/data/ingest`] } }],
    }).releases;
    const vouched = await vouchFor(ciRecord(), { ...policy(), releases: guarded });
    assert.equal(vouched.ok, false);
    assert.match(!vouched.ok ? vouched.reason : '', /staging is protected \(releases\[\]\.deployments\[\]\.protected\) and the key has no scope/);
    const scoped: VouchingPolicy = { ...policy(), releases: guarded, scopes: new Map([[TEST_KEY.id, { deployments: ['staging'], personal: false }]]) };
    assert.equal((await vouchFor(ciRecord(), scoped)).ok, true, 'a scope that lists it');
  });

  it('a rollback rests on the succeeded, signed release it repeats, by its image or by the digest its pull recorded', async () => {
    const to = succeeded(ciRecord(), DIGEST);
    assert.equal((await vouchFor(rollbackOf(to), policy([to]))).ok, true);
    const byDigest = rollbackOf(to, (r) => ({ ...r, image: DIGEST }));
    assert.equal((await vouchFor(byDigest, policy([to]))).ok, true);
  });

  const refusedRollbacks: Array<[string, (to: ReleaseRecord) => { record: ReleaseRecord; known: ReleaseRecord[] }, RegExp]> = [
    ['whose voucher is not in the state', (to) => ({ record: rollbackOf(to), known: [] }), /not in the release state/],
    ['whose voucher did not succeed', (to) => ({ record: rollbackOf(to), known: [{ ...to, status: 'rolled-back' }] }), /ended rolled-back/],
    ['with an image its voucher was not signed for', (to) => ({ record: rollbackOf(to, (r) => ({ ...r, image: `${REGISTRY}/data/ingest:v9` })), known: [to] }), /neither the image/],
    ['with a digest other than the one its voucher recorded', (to) => ({ record: rollbackOf(to, (r) => ({ ...r, image: `${REGISTRY}/data/ingest@sha256:${'b'.repeat(64)}` })), known: [to] }), /neither the image/],
    ['to another target than its voucher', (to) => {
      const record = rollbackOf(to, (r) => ({ ...r, target: { stack: 'data', release: 'ingest', deployment: 'integration' } }));
      return { record: { ...record, target: 'data/ingest/integration', deployment: 'integration' }, known: [to] };
    }, /is of data\/ingest\/staging, not of data\/ingest\/integration/],
    ['whose voucher is itself unsigned', (to) => {
      const { envelope: _gone, ...unsigned } = to;
      return { record: rollbackOf(to), known: [unsigned] };
    }, /no signed envelope/],
  ];
  for (const [name, make, reason] of refusedRollbacks) {
    it(`refuses a rollback ${name}`, async () => {
      const { record, known } = make(succeeded(ciRecord(), DIGEST));
      const vouched = await vouchFor(record, policy(known));
      assert.equal(vouched.ok, false);
      assert.match(!vouched.ok ? vouched.reason : '', reason);
    });
  }
});
