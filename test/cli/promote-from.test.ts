import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { MOTO_CREDENTIALS, MOTO_REGION } from '../../local-fleet/moto.js';
import { promotionFrom } from '../../src/cli/promote-from.js';
import { validateReleaseRequest } from '../../src/request/release-request.js';
import { openEnvelope } from '../../src/request/signed-envelope.js';
import { createReleaseTable, DynamoReleaseStore } from '../../src/state/dynamodb-release-store.js';
import { FileReleaseStore } from '../../src/state/file-release-store.js';
import { TARGET_SUMMARY_FORMAT } from '../../src/state/target-summary.js';
import { createQueues, motoForSuite, queueDepth } from '../support/aws.js';
import { runCli } from '../support/cli.js';
import { enqueueEnvironment, TEST_KEY, writeWorkerConfig } from '../support/worker-fixtures.js';
import { finish, type HistoryStore } from '../state/release-history-contract.js';

// `enqueue --promote-from staging --deployment production`, with the built CLI: what staging's release
// state (files, or DynamoDB on moto) says is current there is what goes on the queue, signed, with
// where it was promoted from; and nothing goes when staging has nothing good to promote.

const DIGEST = `sha256:${'4e'.repeat(32)}`;
const BY_DIGEST = `127.0.0.1:5000/data/ingest@${DIGEST}`;

describe('promotion: the decision', () => {
  const summary = (current?: object, lastFailure?: object) => ({ format: TARGET_SUMMARY_FORMAT, target: 'data/ingest/staging', updatedAt: '', ...(current ? { current } : {}), ...(lastFailure ? { lastFailure } : {}) }) as never;
  const good = { releaseId: '11111111-1111-4111-8111-111111111111', image: BY_DIGEST, status: 'succeeded', requestedBy: 'ci', commit: 'abc1234', createdAt: '2026-11-01T10:00:00.000Z', finishedAt: '2026-11-01T10:05:00.000Z', hosts: [] };
  it('refuses a deployment with no succeeded release, and one whose last release failed after it', () => {
    assert.deepEqual(promotionFrom(undefined, 'data/ingest/staging', 'staging'), { ok: false, reason: 'cannot promote from data/ingest/staging: it has no succeeded release in the release state; release it there first' });
    const failed = promotionFrom(summary(good, { ...good, releaseId: '22222222-2222-4222-8222-222222222222', status: 'failed', reason: 'h2 could not be put back', finishedAt: '2026-11-02T10:00:00.000Z' }), 'data/ingest/staging', 'staging');
    assert.deepEqual(failed, {
      ok: false,
      reason: 'cannot promote from data/ingest/staging: its last release 22222222-2222-4222-8222-222222222222 failed at 2026-11-02T10:00:00.000Z (h2 could not be put back), after the current one; promote once it has a succeeded release again',
    });
  });
  it('promotes the current image, by digest when it was released by digest, even after an older failure', () => {
    const decided = promotionFrom(summary(good, { ...good, status: 'rolled-back', finishedAt: '2026-10-30T10:00:00.000Z' }), 'data/ingest/staging', 'staging');
    assert.ok(decided.ok);
    assert.deepEqual(decided.promotion, { image: BY_DIGEST, promotedFrom: { deployment: 'staging', releaseId: good.releaseId }, source: { commit: 'abc1234' }, byDigest: true });
    const tagged = promotionFrom(summary({ ...good, image: '127.0.0.1:5000/data/ingest:v2' }), 'data/ingest/staging', 'staging');
    assert.ok(tagged.ok && !tagged.promotion.byDigest);
  });

  it("promotes a release made by tag by the digest staging's pull recorded", () => {
    const pulled = promotionFrom(summary({ ...good, image: '127.0.0.1:5000/data/ingest:v2', imageDigest: BY_DIGEST }), 'data/ingest/staging', 'staging');
    assert.ok(pulled.ok);
    assert.equal(pulled.promotion.image, BY_DIGEST);
    assert.equal(pulled.promotion.byDigest, true);
  });
});

describe('enqueue --promote-from', () => {
  const suite = motoForSuite();
  let client: DynamoDBClient | undefined;
  const dynamo = () => (client ??= new DynamoDBClient({ endpoint: suite.moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, maxAttempts: 1 }));
  after(() => client?.destroy());

  const promote = (queueUrl: string, store: string[], extra: string[] = []) =>
    runCli(['enqueue', '--queue-url', queueUrl, '--stack', 'data', '--release', 'ingest', '--deployment', 'production', '--promote-from', 'staging', '--requested-by', 'release-manager', ...store, ...extra], enqueueEnvironment(suite.moto.endpoint), 60_000);

  async function sentRequest(queueUrl: string) {
    const { Messages = [] } = await suite.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2 }));
    assert.equal(Messages.length, 1);
    const opened = openEnvelope(Messages[0]!.Body!, new Map([[TEST_KEY.id, TEST_KEY]]));
    assert.ok(opened.ok, 'signed with the CI key');
    const validated = validateReleaseRequest(opened.payload);
    assert.ok(validated.ok, validated.ok ? '' : validated.reason);
    return validated.value;
  }

  it('file store (--config): enqueues exactly the image current on staging, by digest, saying where it was promoted from', async () => {
    const queues = await createQueues(suite.sqs);
    const stateDirectory = mkdtempSync(join(tmpdir(), 'harbormaster-promote-'));
    const store = new FileReleaseStore(stateDirectory) as unknown as HistoryStore;
    await finish(store, 'data/ingest/staging', 'rolled-back', new Date('2026-11-01T09:00:00Z'), '127.0.0.1:5000/data/ingest:bad');
    const current = await finish(store, 'data/ingest/staging', 'succeeded', new Date('2026-11-01T10:00:00Z'), BY_DIGEST);
    await finish(store, 'data/ingest/integration', 'succeeded', new Date('2026-11-01T11:00:00Z'), '127.0.0.1:5000/data/ingest:newer');
    const config = writeWorkerConfig(suite.moto.endpoint, queues, { stateDirectory });
    const result = await promote(queues.url, ['--config', config]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, `harbormaster: promoting ${BY_DIGEST} from data/ingest/staging (release ${current.releaseId})\n`);
    const request = await sentRequest(queues.url);
    assert.equal(request.releaseId, result.stdout.trim());
    assert.equal(request.image, BY_DIGEST);
    assert.deepEqual(request.target, { stack: 'data', release: 'ingest', deployment: 'production' });
    assert.deepEqual(request.promotedFrom, { deployment: 'staging', releaseId: current.releaseId });
    assert.equal(request.requestedBy, 'release-manager');
    assert.deepEqual(request.source, current.request.source, 'the source of the image, not of the promoting job');
  });

  it('DynamoDB (--state-table): refuses with one line when staging\'s last release failed, or it has none, and sends nothing', async () => {
    const queues = await createQueues(suite.sqs);
    const table = `promote-${Math.random().toString(36).slice(2, 10)}`;
    await createReleaseTable(dynamo(), table);
    const none = await promote(queues.url, ['--state-table', table]);
    assert.equal(none.code, 2, none.stderr);
    assert.equal(none.stderr, 'harbormaster: cannot promote from data/ingest/staging: it has no succeeded release in the release state; release it there first\n');
    const store = new DynamoReleaseStore({ client: dynamo(), table });
    await finish(store, 'data/ingest/staging', 'succeeded', new Date('2026-11-01T10:00:00Z'), BY_DIGEST);
    const failed = await finish(store, 'data/ingest/staging', 'failed', new Date('2026-11-02T10:00:00Z'), '127.0.0.1:5000/data/ingest:v3');
    const result = await promote(queues.url, ['--state-table', table]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`^harbormaster: cannot promote from data/ingest/staging: its last release ${failed.releaseId} failed at 2026-11-02T10:01:00.000Z \\(it failed\\), after the current one; promote once it has a succeeded release again\\n$`));
    assert.equal(result.stdout, '');
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 0 });
  });

  it('DynamoDB (--state-table): promotes a release made by tag, and says it is not pinned by digest', async () => {
    const queues = await createQueues(suite.sqs);
    const table = `promote-${Math.random().toString(36).slice(2, 10)}`;
    await createReleaseTable(dynamo(), table);
    const current = await finish(new DynamoReleaseStore({ client: dynamo(), table }), 'data/ingest/staging', 'succeeded', new Date(), '127.0.0.1:5000/data/ingest:v2');
    const result = await promote(queues.url, ['--state-table', table]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /the release on staging named its image by tag, not by digest: this is the same image only if the tag has not moved since/);
    const request = await sentRequest(queues.url);
    assert.equal(request.image, '127.0.0.1:5000/data/ingest:v2');
    assert.deepEqual(request.promotedFrom, { deployment: 'staging', releaseId: current.releaseId });
  });

  it('refuses --image with --promote-from, and promoting a deployment to itself, before reading anything', async () => {
    const queues = await createQueues(suite.sqs);
    const both = await promote(queues.url, ['--state-table', 'x', '--image', BY_DIGEST]);
    assert.equal(both.code, 2);
    assert.equal(both.stderr, 'harbormaster: --image cannot be combined with --promote-from: the image is the one current on that deployment\n');
    const self = await runCli(['enqueue', '--queue-url', queues.url, '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--promote-from', 'staging', '--state-table', 'x'], enqueueEnvironment(suite.moto.endpoint));
    assert.equal(self.code, 2);
    assert.equal(self.stderr, 'harbormaster: --promote-from staging names the deployment it would release to: promote from another deployment\n');
  });
});
