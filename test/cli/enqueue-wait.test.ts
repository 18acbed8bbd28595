import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { MOTO_CREDENTIALS, MOTO_REGION } from '../../local-fleet/moto.js';
import { createReleaseTable } from '../../src/state/dynamodb-release-table.js';
import { createQueues, drain, motoForSuite } from '../support/aws.js';
import { runCli } from '../support/cli.js';
import { RecordingRollout } from '../support/recording-rollout.js';
import { capturingLogger, enqueueEnvironment, OTHER_KEY, REGISTRY, withWorker, workerConfig } from '../support/worker-fixtures.js';

// CI that waits: `harbormaster enqueue --wait` follows its release in the workers' DynamoDB release
// state (moto) and exits with its outcome, as a build step that fails when the release does.

describe('enqueue --wait', () => {
  const suite = motoForSuite();

  async function setUp() {
    const queues = await createQueues(suite.sqs);
    const table = `releases-${Math.random().toString(36).slice(2, 10)}`;
    const dynamo = new DynamoDBClient({ endpoint: suite.moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, maxAttempts: 1 });
    await createReleaseTable(dynamo, table);
    dynamo.destroy();
    const config = workerConfig(suite.moto.endpoint, queues, { state: { store: 'dynamodb', table } });
    const enqueue = (image: string, extra: string[] = []) =>
      runCli(['enqueue', '--queue-url', queues.url, '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', image, '--requested-by', 'ci', '--wait', '--state-table', table, ...extra], enqueueEnvironment(suite.moto.endpoint), 60_000);
    return { config, enqueue };
  }

  it('exits 0 once the release has succeeded, saying where it stood on the way', async () => {
    const { config, enqueue } = await setUp();
    const result = await withWorker(config, { rollout: new RecordingRollout(1_500), logger: capturingLogger().logger }, () => enqueue(`${REGISTRY}/data/ingest:v2`));
    assert.equal(result.code, 0, result.stderr);
    const releaseId = result.stdout.trim();
    assert.match(releaseId, /^[0-9a-f-]{36}$/);
    assert.match(result.stderr, new RegExp(`harbormaster: release ${releaseId}: (waiting for a worker to take the request|accepted|running)`));
    assert.match(result.stderr, new RegExp(`harbormaster: release ${releaseId} succeeded\\n$`));
  });

  it('exits 3 with the reason when the worker refuses the request', async () => {
    const { config, enqueue } = await setUp();
    const result = await withWorker(config, { rollout: new RecordingRollout(), logger: capturingLogger().logger }, () => enqueue('registry.elsewhere:5000/data/ingest:v2'));
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /release [0-9a-f-]{36} refused: image repository 'registry.elsewhere:5000\/data\/ingest' is not allowed for data\/ingest\n$/);
  });

  it('exits 5 when the release has not ended in time, and says it goes on', async () => {
    const { enqueue } = await setUp();
    const result = await enqueue(`${REGISTRY}/data/ingest:v2`, ['--wait-minutes', '0.05']);
    assert.equal(result.code, 5, result.stderr);
    assert.match(result.stderr, /still not ended after 0.05 min; stopped waiting \(it goes on\)\n$/);
  });

  it('exits 7 at once, naming the table and the cause, when the release table cannot be read (no such table): the request was sent all the same', async () => {
    const queues = await createQueues(suite.sqs);
    // --wait-minutes 30: a CLI that waited it out would be killed by runCli's 60 s bound and fail the test.
    const result = await runCli(['enqueue', '--queue-url', queues.url, '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', `${REGISTRY}/data/ingest:v2`, '--requested-by', 'ci', '--wait', '--wait-minutes', '30', '--state-table', 'no-such-table'], enqueueEnvironment(suite.moto.endpoint), 60_000);
    // 7 (sent, cannot be followed), not 5 (a wait that ran out) nor 1 (nothing sent).
    assert.equal(result.code, 7, result.stderr);
    const releaseId = result.stdout.trim();
    assert.match(releaseId, /^[0-9a-f-]{36}$/);
    assert.match(result.stderr, new RegExp(`^harbormaster: following release ${releaseId} in table no-such-table failed: ResourceNotFoundException: .*; the request was sent and goes on\n$`));
  });

  it('exits 3 within a minute, with the refusal, when the worker refuses the request as unauthentic (it never reaches the release state, only the dead-letter queue)', async () => {
    const { config, enqueue } = await setUp();
    // Signed with a key of the worker's key id but another secret: refused as bad-signature.
    const env = { ...enqueueEnvironment(suite.moto.endpoint), HARBORMASTER_SIGNING_KEY: OTHER_KEY.secret.toString() };
    const queues = config.queue;
    const result = await withWorker(config, { rollout: new RecordingRollout(), logger: capturingLogger().logger }, () =>
      runCli(['enqueue', '--queue-url', queues.url, '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', `${REGISTRY}/data/ingest:v2`, '--requested-by', 'ci', '--wait', '--wait-minutes', '30', '--state-table', config.state.store === 'dynamodb' ? config.state.table : ''], env, 60_000),
    );
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /release [0-9a-f-]{36} refused: refused before it was recorded \(bad-signature\), now on the dead-letter queue: signature does not match key 'ci-test'/);
    // Only looked at: the refused message is still on the dead-letter queue for ops.
    const dead = await drain(suite.sqs, queues.deadLetterUrl, 1, 10_000);
    assert.equal(dead.length, 1);
  });

  it('exits 8 within a minute when no worker takes anything from the queue, instead of waiting out --wait-minutes', async () => {
    const { enqueue } = await setUp();
    const result = await enqueue(`${REGISTRY}/data/ingest:v2`, ['--wait-minutes', '30', '--idle-queue-seconds', '2']);
    assert.equal(result.code, 8, result.stderr);
    assert.match(result.stderr, /not taken by any worker: messages wait on the queue and none is in flight; stopped waiting \(the request stays on the queue\)\n$/);
  });

  it('exits 7 within a minute when a worker takes the request but does not write the table (a file store), instead of waiting out --wait-minutes', async () => {
    const { config: dynamoConfig, enqueue } = await setUp();
    // The same queue served by a worker whose release state is files: the table stays empty.
    const fileConfig = workerConfig(suite.moto.endpoint, { url: dynamoConfig.queue.url, deadLetterUrl: dynamoConfig.queue.deadLetterUrl }, { state: { store: 'file' } });
    const started = Date.now();
    const result = await withWorker(fileConfig, { rollout: new RecordingRollout(), logger: capturingLogger().logger }, () => enqueue(`${REGISTRY}/data/ingest:v2`, ['--wait-minutes', '30', '--unrecorded-seconds', '3']));
    assert.equal(result.code, 7, result.stderr);
    const releaseId = result.stdout.trim();
    const table = dynamoConfig.state.store === 'dynamodb' ? dynamoConfig.state.table : '';
    assert.match(result.stderr, new RegExp(`release ${releaseId} was taken from the queue, but no worker recorded it in table ${table} within 3 s: the workers do not write this table \\(state.store: file, or another table\\), so --wait cannot follow it; it goes on \\(on the bastion: harbormaster show ${releaseId}\\)\n$`));
    assert.ok(Date.now() - started < 45_000, 'found out in well under a minute');
  });

  it('refuses --wait without the release table, before sending anything', async () => {
    const queues = await createQueues(suite.sqs);
    const result = await runCli(['enqueue', '--queue-url', queues.url, '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', `${REGISTRY}/data/ingest:v2`, '--requested-by', 'ci', '--wait'], enqueueEnvironment(suite.moto.endpoint));
    assert.equal(result.code, 2);
    assert.equal(result.stderr, "harbormaster: --wait needs --state-table (or HARBORMASTER_STATE_TABLE): the workers' DynamoDB release table\n");
    assert.equal(result.stdout, '');
  });
});
