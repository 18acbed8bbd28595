import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import type { RefusalNotice } from '../../src/worker/handle-request.js';
import { createQueues, drain, motoForSuite, sendRaw } from '../support/aws.js';
import { RecordingRollout } from '../support/recording-rollout.js';
import { signed, validRequest } from '../support/requests.js';
import { capturingLogger, eventually, TEST_KEY, TEST_KEY_ENV, withWorker, workerConfig } from '../support/worker-fixtures.js';

// Keys scoped to targets, and rotated without a restart, through the real worker path: real queues
// on moto, the worker's admission, the dead-letter queue; the rollout only records what it is handed.

const STAGING_KEY = { id: 'ci-staging', secret: Buffer.from('staging-only-key-0123456789abcdef-0123456789') };
const DEV_KEY = { id: 'dev-personal', secret: Buffer.from('personal-only-key-0123456789abcdef-012345678') };

describe('signing keys', () => {
  const suite = motoForSuite();


  it('scoped: refuses a request signed with a key outside its scope into the dead-letter queue, naming the key, the deployment and the rule; changes nothing', async () => {
    const queues = await createQueues(suite.sqs);
    const dir = mkdtempSync(join(tmpdir(), 'harbormaster-keys-'));
    writeFileSync(join(dir, 'staging.key'), STAGING_KEY.secret);
    writeFileSync(join(dir, 'dev.key'), DEV_KEY.secret);
    const config = workerConfig(suite.moto.endpoint, queues, {
      signing: {
        keys: [
          { id: TEST_KEY.id, env: TEST_KEY_ENV },
          { id: STAGING_KEY.id, file: join(dir, 'staging.key'), scope: { deployments: ['staging'] } },
          { id: DEV_KEY.id, file: join(dir, 'dev.key'), scope: { personal: true } },
        ],
        maxAgeSeconds: 300,
      },
    });
    const rollout = new RecordingRollout();
    const store = new MemoryReleaseStore();
    const notices: RefusalNotice[] = [];
    const outOfScope = validRequest({ target: { stack: 'data', release: 'ingest', deployment: 'integration' } });
    const personalWithStagingKey = validRequest({ target: { stack: 'data', release: 'ingest', personal: { user: 'alice', feature: 'x' } } });
    const inScope = validRequest();
    const personalInScope = validRequest({ target: { stack: 'data', release: 'ingest', personal: { user: 'alice', feature: 'y' } } });
    await sendRaw(suite.sqs, queues.url, signed(outOfScope, STAGING_KEY));
    await sendRaw(suite.sqs, queues.url, signed(personalWithStagingKey, STAGING_KEY));
    await sendRaw(suite.sqs, queues.url, signed(inScope, STAGING_KEY));
    await sendRaw(suite.sqs, queues.url, signed(personalInScope, DEV_KEY));
    const dead = await withWorker(config, { rollout, store, logger: capturingLogger().logger, onRefused: (n) => void notices.push(n) }, async () => {
      await eventually('both in-scope releases handed to the rollout', () => rollout.releases.length === 2);
      return drain(suite.sqs, queues.deadLetterUrl, 2, 20_000);
    });
    assert.deepEqual(rollout.releases.map((r) => r.request.releaseId).sort(), [inScope.releaseId, personalInScope.releaseId].sort());
    assert.equal(dead.length, 2);
    const reasons = new Map(notices.map((n) => [n.releaseId, n]));
    const fixed = reasons.get(outOfScope.releaseId as string)!;
    assert.equal(fixed.code, 'key-not-allowed');
    assert.match(
      fixed.reason,
      /^key 'ci-staging' may not release data\/ingest\/integration \(deployment integration\): its scope \(signing\.keys\[\]\.scope\.deployments\) allows only the deployments staging; sign with a key whose scope includes it, or ask ops to widen the scope of the key$/,
    );
    const personal = reasons.get(personalWithStagingKey.releaseId as string)!;
    assert.match(personal.reason, /key 'ci-staging' may not release data\/ingest\/~alice \(deployment personal-alice\): its scope \(signing\.keys\[\]\.scope\.personal\) does not allow personal deployments/);
    for (const message of dead) assert.equal(message.MessageAttributes?.['harbormaster.refusal']?.StringValue, 'key-not-allowed');
    // Recorded as refused (so `enqueue --wait` learns why), never as a release of the target.
    assert.equal((await store.get(outOfScope.releaseId as string))?.status, 'refused');
  });

  it('protected: a key without a scope may not release a deployment marked protected; a key whose scope lists it may; the refusal is dead-lettered and recorded', async () => {
    const queues = await createQueues(suite.sqs);
    const dir = mkdtempSync(join(tmpdir(), 'harbormaster-keys-'));
    const PRODUCTION_KEY = { id: 'ci-production', secret: Buffer.from('production-key-0123456789abcdef-0123456789ab') };
    writeFileSync(join(dir, 'production.key'), PRODUCTION_KEY.secret);
    const config = workerConfig(suite.moto.endpoint, queues, {
      signing: { keys: [{ id: TEST_KEY.id, env: TEST_KEY_ENV }, { id: PRODUCTION_KEY.id, file: join(dir, 'production.key'), scope: { deployments: ['production'] } }], maxAgeSeconds: 300 },
      releases: [{ stack: 'data', release: 'ingest', deployments: ['staging', { name: 'production', protected: true }], images: { allowedRepositories: ['127.0.0.1:5000/data/ingest'] } }],
    });
    const rollout = new RecordingRollout();
    const store = new MemoryReleaseStore();
    const notices: RefusalNotice[] = [];
    const production = () => validRequest({ target: { stack: 'data', release: 'ingest', deployment: 'production' } });
    const unscoped = production();
    const scoped = production();
    const staging = validRequest();
    await sendRaw(suite.sqs, queues.url, signed(unscoped, TEST_KEY));
    await sendRaw(suite.sqs, queues.url, signed(staging, TEST_KEY));
    await sendRaw(suite.sqs, queues.url, signed(scoped, PRODUCTION_KEY));
    const dead = await withWorker(config, { rollout, store, logger: capturingLogger().logger, onRefused: (n) => void notices.push(n) }, async () => {
      await eventually('the staging release and the production release signed with the scoped key', () => rollout.releases.length === 2);
      return drain(suite.sqs, queues.deadLetterUrl, 1, 20_000);
    });
    assert.deepEqual(rollout.releases.map((r) => r.request.releaseId).sort(), [staging.releaseId, scoped.releaseId].sort());
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.MessageAttributes?.['harbormaster.refusal']?.StringValue, 'key-not-allowed');
    assert.deepEqual(notices.map((n) => [n.releaseId, n.code]), [[unscoped.releaseId, 'key-not-allowed']]);
    assert.match(notices[0]!.reason, /^key 'ci-test' may not release data\/ingest\/production \(deployment production\): production is protected \(releases\[\]\.deployments\[\]\.protected\) and the key has no scope/);
    assert.equal((await store.get(unscoped.releaseId as string))?.status, 'refused');
  });

  it('rotated without a restart: accepts a request signed with the new key once the key file is rewritten, refuses the old one; a deleted key file revokes the key at once', async () => {
    const queues = await createQueues(suite.sqs);
    const dir = mkdtempSync(join(tmpdir(), 'harbormaster-keys-'));
    const file = join(dir, 'ci.key');
    const first = { id: 'ci-rotating', secret: Buffer.from('first-key-of-the-rotation-0123456789abcdef-01') };
    const second = { id: 'ci-rotating', secret: Buffer.from('second-key-of-the-rotation-0123456789abcdef-0') };
    writeFileSync(file, `${first.secret.toString()}\n`);
    const config = workerConfig(suite.moto.endpoint, queues, { signing: { keys: [{ id: first.id, file }], maxAgeSeconds: 300 } });
    const rollout = new RecordingRollout();
    const notices: RefusalNotice[] = [];
    const { logger, lines } = capturingLogger();
    await withWorker(config, { rollout, store: new MemoryReleaseStore(), logger, onRefused: (n) => void notices.push(n) }, async () => {
      const before = validRequest();
      await sendRaw(suite.sqs, queues.url, signed(before, first));
      await eventually('the release signed with the first key', () => rollout.releases.length === 1);

      // Rotation as a deploy tool does it: a new file renamed over the old one.
      writeFileSync(join(dir, 'ci.key.new'), `${second.secret.toString()}\n`);
      renameSync(join(dir, 'ci.key.new'), file);
      const rotated = validRequest({ target: { stack: 'data', release: 'ingest', deployment: 'integration' } });
      const stale = validRequest();
      await sendRaw(suite.sqs, queues.url, signed(rotated, second));
      await sendRaw(suite.sqs, queues.url, signed(stale, first));
      await eventually('the release signed with the new key', () => rollout.releases.some((r) => r.request.releaseId === rotated.releaseId));
      await eventually('the request signed with the old key refused', () => notices.some((n) => n.code === 'bad-signature'));

      // Revoked by deleting its file: the next request signed with it is refused, with no reload.
      unlinkSync(file);
      const afterRevocation = validRequest({ target: { stack: 'data', release: 'ingest', personal: { user: 'alice', feature: 'z' } } });
      await sendRaw(suite.sqs, queues.url, signed(afterRevocation, second));
      await eventually('the request signed with the revoked key refused', () => notices.some((n) => n.code === 'unknown-key'));
      assert.ok(!rollout.releases.some((r) => r.request.releaseId === afterRevocation.releaseId), 'never handed to the rollout');
    });
    assert.deepEqual(notices.map((n) => n.code), ['bad-signature', 'unknown-key'], JSON.stringify(notices));
    assert.ok(lines.some((l) => l.msg?.toString().startsWith('signing key read again') && l.keyId === 'ci-rotating'));
    const removed = lines.find((l) => l.msg?.toString().startsWith('signing key removed'));
    assert.equal(removed?.keyId, 'ci-rotating');
    assert.match(String(removed?.problem), /cannot read secret from file .*ci\.key: ENOENT/);
  });
});
