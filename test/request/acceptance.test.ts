import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judgeMessage, type AcceptancePolicy } from '../../src/request/acceptance.js';
import { hasUnsafeCharacters } from '../../src/request/outside-text.js';
import { CREDENTIAL_MARKER, REFUSED_CASES, signed, validRequest } from '../support/requests.js';
import { TEST_KEY, workerConfig } from '../support/worker-fixtures.js';

const config = workerConfig('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/dlq' });
const policy: AcceptancePolicy = { keys: new Map([[TEST_KEY.id, TEST_KEY]]), releases: config.releases, maxAgeSeconds: 300 };

describe('judging a release request', () => {
  it('accepts a signed request for a served deployment, unchanged', () => {
    const request = validRequest();
    const verdict = judgeMessage(signed(request), policy, new Date());
    assert.ok(verdict.ok, !verdict.ok ? verdict.reason : '');
    assert.deepEqual(verdict.release.request, request);
    assert.equal(verdict.release.deployment, 'staging');
    assert.equal(verdict.release.keyId, TEST_KEY.id);
  });

  it('maps a personal deployment to its tag value from the configuration', () => {
    const verdict = judgeMessage(signed(validRequest({ target: { stack: 'data', release: 'ingest', personal: { user: 'alice', feature: 'Faster-Parse' } } })), policy, new Date());
    assert.ok(verdict.ok);
    assert.equal(verdict.release.deployment, 'personal-alice');
  });

  it('holds a scoped key to its releases, deployments and personal deployments', () => {
    const scoped = (scope: { releases?: string[]; deployments: string[]; personal: boolean }) => ({ ...policy, scopes: new Map([[TEST_KEY.id, scope]]) });
    const staging = signed(validRequest());
    const personal = signed(validRequest({ target: { stack: 'data', release: 'ingest', personal: { user: 'alice', feature: 'x' } } }));
    assert.ok(judgeMessage(staging, scoped({ deployments: ['staging'], personal: false }), new Date()).ok);
    assert.ok(judgeMessage(personal, scoped({ deployments: [], personal: true }), new Date()).ok);
    const otherRelease = judgeMessage(staging, scoped({ releases: ['data/query'], deployments: ['staging'], personal: true }), new Date());
    assert.ok(!otherRelease.ok);
    assert.equal(otherRelease.code, 'key-not-allowed');
    assert.equal(otherRelease.reason, "key 'ci-test' may not release data/ingest/staging (deployment staging): its scope (signing.keys[].scope.releases) allows only data/query; sign with a key whose scope includes it, or ask ops to widen the scope of the key");
    const personalOnly = judgeMessage(staging, scoped({ deployments: [], personal: true }), new Date());
    assert.ok(!personalOnly.ok);
    assert.match(personalOnly.reason, /its scope \(signing\.keys\[\]\.scope\.deployments\) allows only personal deployments;/);
  });

  it('lets a key without a scope release only deployments not marked protected; a scope that lists a protected deployment opens it', () => {
    const releases = workerConfig('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/dlq' }, {
      releases: [{ stack: 'data', release: 'ingest', deployments: ['staging', { name: 'production', protected: true }], personal: { users: ['alice'] }, images: { allowedRepositories: ['127.0.0.1:5000/data/ingest'] } }],
    }).releases;
    const unscoped: AcceptancePolicy = { ...policy, releases };
    const production = signed(validRequest({ target: { stack: 'data', release: 'ingest', deployment: 'production' } }));
    const refused = judgeMessage(production, unscoped, new Date());
    assert.ok(!refused.ok);
    assert.equal(refused.code, 'key-not-allowed');
    assert.equal(
      refused.reason,
      "key 'ci-test' may not release data/ingest/production (deployment production): production is protected (releases[].deployments[].protected) and the key has no scope (signing.keys[].scope); sign with a key whose scope lists production in its deployments, or ask ops to give this key such a scope",
    );
    assert.ok(judgeMessage(signed(validRequest()), unscoped, new Date()).ok, 'staging is not protected');
    assert.ok(judgeMessage(signed(validRequest({ target: { stack: 'data', release: 'ingest', personal: { user: 'alice', feature: 'x' } } })), unscoped, new Date()).ok, 'a personal deployment never is');
    const scoped = (deployments: string[]) => ({ ...unscoped, scopes: new Map([[TEST_KEY.id, { deployments, personal: false }]]) });
    assert.ok(judgeMessage(production, scoped(['production']), new Date()).ok, 'a scope that lists it');
    const stagingOnly = judgeMessage(production, scoped(['staging']), new Date());
    assert.ok(!stagingOnly.ok);
    assert.match(stagingOnly.reason, /its scope \(signing\.keys\[\]\.scope\.deployments\) allows only the deployments staging;/);
  });

  it('accepts either key while keys are rotated', () => {
    const next = { id: 'ci-next', secret: Buffer.from('the-next-key-0123456789abcdef-0123456789ab') };
    const rotating = { ...policy, keys: new Map([[TEST_KEY.id, TEST_KEY], [next.id, next]]) };
    assert.ok(judgeMessage(signed(validRequest(), TEST_KEY), rotating, new Date()).ok);
    assert.ok(judgeMessage(signed(validRequest(), next), rotating, new Date()).ok);
  });

  it('refuses a request one second past its maximum age, accepts it one second before', () => {
    const made = new Date('2026-11-26T10:00:00.000Z');
    const body = signed(validRequest({ createdAt: made.toISOString() }));
    assert.ok(judgeMessage(body, policy, new Date(made.getTime() + 299_000)).ok);
    const late = judgeMessage(body, policy, new Date(made.getTime() + 301_000));
    assert.equal(late.ok, false);
    assert.equal((late as { code: string }).code, 'expired');
  });

  // The same table runs end to end against a real queue in test/queue/refusals.test.ts.
  for (const refused of REFUSED_CASES) {
    it(`refuses ${refused.name}`, () => {
      const verdict = judgeMessage(refused.body(), policy, new Date());
      assert.equal(verdict.ok, false);
      if (verdict.ok) return;
      assert.equal(verdict.code, refused.code, verdict.reason);
      assert.match(verdict.reason, refused.reason);
      assert.ok(!hasUnsafeCharacters(verdict.reason), `a control character in ${JSON.stringify(verdict.reason)}`);
      assert.ok(!verdict.reason.includes(CREDENTIAL_MARKER), `a credential in ${verdict.reason}`);
    });
  }
});
