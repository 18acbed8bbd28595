import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { createQueues, motoForSuite, queueDepth, sendRaw } from '../support/aws.js';
import { runCli } from '../support/cli.js';
import { RecordingRollout } from '../support/recording-rollout.js';
import { signed, validRequest } from '../support/requests.js';
import { capturingLogger, enqueueEnvironment, eventually, REGISTRY, withWorker, workerConfig } from '../support/worker-fixtures.js';

describe('the worker on a real SQS-compatible queue (moto)', () => {
  const suite = motoForSuite();

  async function enqueueWithCli(url: string, args: string[]): Promise<string> {
    const result = await runCli(['enqueue', '--queue-url', url, ...args], enqueueEnvironment(suite.moto.endpoint));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    return result.stdout.trim();
  }

  const emptied = (url: string) => async () => {
    const depth = await queueDepth(suite.sqs, url);
    return depth.visible === 0 && depth.inFlight === 0;
  };

  it('hands a request enqueued by the CLI to the rollout intact and verified, then deletes it', async () => {
    const queues = await createQueues(suite.sqs);
    const releaseId = await enqueueWithCli(queues.url, [
      '--stack', 'data', '--release', 'ingest', '--deployment', 'staging',
      '--image', `${REGISTRY}/data/ingest:v2`, '--requested-by', 'ci-bot',
      '--branch', 'main', '--commit', 'a1b2c3d', '--build-url', 'https://ci.example.com/b/7',
    ]);
    assert.match(releaseId, /^[0-9a-f-]{36}$/);

    const rollout = new RecordingRollout();
    const store = new MemoryReleaseStore();
    const { logger, lines } = capturingLogger();
    await withWorker(workerConfig(suite.moto.endpoint, queues), { rollout, logger, store }, async () => {
      await rollout.until(1);
      await eventually('the message to be deleted', emptied(queues.url));
    });

    const [release] = rollout.releases;
    assert.equal(release!.request.releaseId, releaseId);
    assert.deepEqual(release!.request.target, { stack: 'data', release: 'ingest', deployment: 'staging' });
    assert.equal(release!.request.image, `${REGISTRY}/data/ingest:v2`);
    assert.equal(release!.request.requestedBy, 'ci-bot');
    assert.deepEqual(release!.request.source, { branch: 'main', commit: 'a1b2c3d', buildUrl: 'https://ci.example.com/b/7' });
    assert.equal(release!.keyId, 'ci-test');
    assert.equal(release!.deployment, 'staging');
    assert.equal((await store.get(releaseId))?.status, 'succeeded');
    // One child logger per request carries the release id and the target.
    const accepted = lines.find((l) => l.msg === 'request accepted');
    assert.equal(accepted?.releaseId, releaseId);
    assert.equal(accepted?.target, 'data/ingest/staging');
  });

  it('rolls out a request delivered twice only once', async () => {
    const queues = await createQueues(suite.sqs);
    const body = signed(validRequest());
    await sendRaw(suite.sqs, queues.url, body);
    await sendRaw(suite.sqs, queues.url, body);

    const rollout = new RecordingRollout();
    const { logger, lines } = capturingLogger();
    await withWorker(workerConfig(suite.moto.endpoint, queues), { rollout, logger, store: new MemoryReleaseStore() }, async () => {
      await eventually('the duplicate to be acknowledged', () => lines.some((l) => String(l.msg).includes('duplicate delivery')));
      await eventually('both messages to be deleted', emptied(queues.url));
    });
    assert.equal(rollout.releases.length, 1);
  });

  it('keeps a request invisible with a heartbeat while the rollout outlasts the visibility timeout', async () => {
    const queues = await createQueues(suite.sqs, { visibilityTimeoutSeconds: 2 });
    await sendRaw(suite.sqs, queues.url, signed(validRequest()));
    const rollout = new RecordingRollout(7_000);
    const { logger, lines } = capturingLogger();
    const config = workerConfig(suite.moto.endpoint, queues);
    const shortVisibility = { ...config, queue: { ...config.queue, visibilityTimeoutSeconds: 2, heartbeatSeconds: 1 } };
    const stolen: string[] = [];
    await withWorker(shortVisibility, { rollout, logger, store: new MemoryReleaseStore() }, async () => {
      await rollout.until(1);
      // Another worker polls throughout the 7 s rollout: more than three visibility timeouts.
      const until = Date.now() + 6_000;
      while (Date.now() < until) {
        const result = await suite.sqs.send(new ReceiveMessageCommand({ QueueUrl: queues.url, WaitTimeSeconds: 1, VisibilityTimeout: 1 }));
        for (const m of result.Messages ?? []) stolen.push(m.MessageId!);
      }
      await eventually('the message to be deleted', emptied(queues.url));
    });
    assert.deepEqual(stolen, [], 'the request was delivered to another worker during the rollout');
    assert.ok(lines.filter((l) => l.msg === 'visibility extended').length >= 4);
    assert.equal(rollout.releases.length, 1);
  });

  it("releases only the newest of a target's requests waiting together on a FIFO queue, never an older one after a newer; the others are superseded", async () => {
    const queues = await createQueues(suite.sqs, { fifo: true });
    const tags = ['v1', 'v2', 'v3', 'v4'];
    const ids: string[] = [];
    for (const tag of tags) {
      ids.push(await enqueueWithCli(queues.url, ['--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', `${REGISTRY}/data/ingest:${tag}`, '--requested-by', 'ci']));
    }
    const rollout = new RecordingRollout(300);
    const store = new MemoryReleaseStore();
    const config = workerConfig(suite.moto.endpoint, queues, { queue: { url: queues.url, deadLetterUrl: queues.deadLetterUrl, waitSeconds: 1, visibilityTimeoutSeconds: 30 } });
    const { logger, lines } = capturingLogger();
    await withWorker(config, { rollout, logger, store }, async () => {
      // Acknowledged requests may still wait in the release state for their target: until none does.
      await eventually('the queue to be emptied and every release to end', async () => (await emptied(queues.url)()) && (await store.unfinished()).length === 0, 30_000);
    });
    const handed = rollout.releases.map((r) => r.request.image.split(':').pop()!);
    assert.equal(handed.at(-1), 'v4', `released: ${handed.join(', ')}`);
    assert.deepEqual(handed, [...handed].sort(), 'never an older release after a newer one');
    for (const [index, id] of ids.entries()) {
      const record = (await store.get(id))!;
      if (handed.includes(tags[index]!)) assert.equal(record.status, 'succeeded');
      else {
        assert.equal(record.status, 'superseded', `${tags[index]}: ${record.status}`);
        assert.match(record.reason!, /^a newer release of data\/ingest\/staging \(.*\) came first/);
      }
    }
    assert.ok(lines.some((l) => l.msg === 'release superseded'));
  });

  it('enqueue exits non-zero with one line when the queue is unreachable, the key missing or the image bad', async () => {
    const target = ['--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--requested-by', 'ci'];
    const image = ['--image', `${REGISTRY}/data/ingest:v2`];
    const unreachable = await runCli(['enqueue', '--queue-url', 'http://127.0.0.1:9/000000000000/releases', ...target, ...image], enqueueEnvironment('http://127.0.0.1:9'));
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /^harbormaster: cannot send the request to http:\/\/127\.0\.0\.1:9\/000000000000\/releases: .*ECONNREFUSED.*\n$/);

    const queues = await createQueues(suite.sqs);
    const { HARBORMASTER_SIGNING_KEY: _unused, ...withoutKey } = enqueueEnvironment(suite.moto.endpoint);
    const missingKey = await runCli(['enqueue', '--queue-url', queues.url, ...target, ...image], withoutKey);
    assert.equal(missingKey.code, 2);
    assert.equal(missingKey.stderr, 'harbormaster: no signing key: set HARBORMASTER_SIGNING_KEY or HARBORMASTER_SIGNING_KEY_FILE\n');

    const badImage = await runCli(['enqueue', '--queue-url', queues.url, ...target, '--image', 'reg.io/app'], enqueueEnvironment(suite.moto.endpoint));
    assert.equal(badImage.code, 2);
    assert.match(badImage.stderr, /^harbormaster: image 'reg\.io\/app' has neither a tag nor a digest/);

    const badFlag = await runCli(['enqueue', '--queue-url', queues.url, ...target, ...image, '--deploymnet', 'x'], enqueueEnvironment(suite.moto.endpoint));
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /^harbormaster: unknown option '--deploymnet'/);
    assert.deepEqual(await queueDepth(suite.sqs, queues.url), { visible: 0, inFlight: 0 });
  });
});
