import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { createQueues, drain, motoForSuite, queueDepth, sendRaw, type TestQueues } from '../support/aws.js';
import { RecordingRollout } from '../support/recording-rollout.js';
import { signed, validRequest } from '../support/requests.js';
import { capturingLogger, eventually, REGISTRY, withWorker, workerConfig } from '../support/worker-fixtures.js';

// Several requests, several targets, several workers, on a real SQS-compatible queue (moto), with a
// rollout that only records and takes its time: releases to different targets side by side, one at
// a time per target, newest wins, waiting never expires a request, and workers that serve different
// targets on one queue hand each other's requests back instead of refusing them.

const target = (deployment: string) => ({ stack: 'data', release: 'ingest', deployment });
const request = (deployment: string, tag: string, createdAt = new Date()) => signed(validRequest({ target: target(deployment), image: `${REGISTRY}/data/ingest:${tag}`, createdAt: createdAt.toISOString() }));

describe('scheduling releases', () => {
  const suite = motoForSuite();

  const configFor = (queues: TestQueues, overrides: Record<string, unknown> = {}) =>
    workerConfig(suite.moto.endpoint, queues, {
      queue: { url: queues.url, deadLetterUrl: queues.deadLetterUrl, waitSeconds: 1, visibilityTimeoutSeconds: 30 },
      releases: [{ stack: 'data', release: 'ingest', deployments: ['integration', 'staging', 'production', 'qa'], images: { allowedRepositories: [`${REGISTRY}/data/ingest`] } }],
      ...overrides,
    });
  const emptied = (url: string) => async () => {
    const depth = await queueDepth(suite.sqs, url);
    return depth.visible === 0 && depth.inFlight === 0;
  };
  /** The queue emptied and no release waiting in the state either (a request acknowledged as busy waits there). */
  const settled = (url: string, ...stores: MemoryReleaseStore[]) => async () => (await emptied(url)()) && (await Promise.all(stores.map((store) => store.unfinished()))).every((left) => left.length === 0);

  it('runs releases to four targets side by side, and a second release of one target only after the first', async () => {
    const queues = await createQueues(suite.sqs);
    for (const deployment of ['integration', 'staging', 'production', 'qa']) await sendRaw(suite.sqs, queues.url, request(deployment, 'v2', new Date(Date.now() - 1_000)));
    const rollout = new RecordingRollout(2_000);
    const store = new MemoryReleaseStore();
    await withWorker(configFor(queues, { parallelReleases: 4 }), { rollout, logger: capturingLogger().logger, store }, async () => {
      await eventually('four releases', () => rollout.releases.length === 4, 10_000);
      await sendRaw(suite.sqs, queues.url, request('staging', 'v3'));
      await eventually('the queue to be emptied and every release to end', settled(queues.url, store), 30_000);
    });
    assert.equal(rollout.releases.length, 5);
    assert.equal(rollout.maxActive, 4, 'four at once');
    assert.equal(rollout.maxActivePerTarget, 1, 'never two releases of one target at once');
    // Side by side: the four v2 releases all started before any of them ended.
    const v2 = rollout.events.filter((e) => e.image.endsWith(':v2')).map((e) => e.event);
    assert.deepEqual(v2, ['start', 'start', 'start', 'start', 'end', 'end', 'end', 'end'], 'the four ran side by side, not one after the other');
    // One at a time per target: staging's v3 started only after its v2 ended.
    const staging = rollout.events.filter((e) => e.target.endsWith('/staging')).map((e) => `${e.event} ${e.image.split(':').pop()}`);
    assert.deepEqual(staging, ['start v2', 'end v2', 'start v3', 'end v3']);
  });

  it('keeps to parallelReleases, and a long release never holds another target behind it', async () => {
    const queues = await createQueues(suite.sqs);
    const rollout = new RecordingRollout((release) => (release.record.deployment === 'production' ? 6_000 : 300));
    await sendRaw(suite.sqs, queues.url, request('production', 'v2'));
    await withWorker(configFor(queues, { parallelReleases: 2 }), { rollout, logger: capturingLogger().logger, store: new MemoryReleaseStore() }, async () => {
      await eventually('the production release to start', () => rollout.releases.length === 1, 10_000);
      for (const deployment of ['integration', 'staging', 'qa']) await sendRaw(suite.sqs, queues.url, request(deployment, 'v2'));
      // The three short ones go through the one free slot while production still runs.
      await eventually('the three others', () => rollout.releases.length === 4, 5_000);
      await eventually('the queue to be emptied', emptied(queues.url), 30_000);
    });
    assert.equal(rollout.maxActive, 2);
    assert.equal(rollout.releases[0]!.deployment, 'production');
  });

  it('releases a request that waited longer than signing.maxAgeSeconds behind a long release of its target: its age ends when the queue received it', async () => {
    const queues = await createQueues(suite.sqs);
    const rollout = new RecordingRollout((release) => (release.record.request.image.endsWith(':v2') ? 13_000 : 100));
    const store = new MemoryReleaseStore();
    const { logger, lines } = capturingLogger();
    await sendRaw(suite.sqs, queues.url, request('staging', 'v2'));
    await withWorker(configFor(queues, { signing: { keys: [{ id: 'ci-test', env: 'HARBORMASTER_TEST_KEY' }], maxAgeSeconds: 10 } }), { rollout, logger, store }, async () => {
      await eventually('the long release to start', () => rollout.releases.length === 1, 10_000);
      await sendRaw(suite.sqs, queues.url, request('staging', 'v3'));
      await eventually('the waiting request to be released', () => rollout.releases.length === 2, 30_000);
      await eventually('the queue to be emptied', emptied(queues.url), 30_000);
    });
    assert.deepEqual(rollout.releases.map((r) => r.request.image.split(':').pop()), ['v2', 'v3']);
    assert.ok(lines.some((l) => l.msg === 'request waits: its target is busy; the release state holds it until the target is free'), 'it waited');
    assert.ok(!lines.some((l) => l.msg === 'request refused'));
    assert.deepEqual(await queueDepth(suite.sqs, queues.deadLetterUrl), { visible: 0, inFlight: 0 });
  });

  it('releases only the newest of a burst of five requests to one target; the four others are superseded', async () => {
    const queues = await createQueues(suite.sqs);
    const made = Date.now() - 5_000;
    const tags = ['v1', 'v2', 'v3', 'v4', 'v5'];
    // Sent out of order: which is newest is the signed creation time, not the order of arrival.
    for (const index of [2, 0, 4, 1, 3]) await sendRaw(suite.sqs, queues.url, request('staging', tags[index]!, new Date(made + index * 100)));
    const rollout = new RecordingRollout();
    const store = new MemoryReleaseStore();
    const { logger, lines } = capturingLogger();
    await withWorker(configFor(queues), { rollout, logger, store }, async () => {
      await eventually('the queue to be emptied and every release to end', settled(queues.url, store), 20_000);
    });
    assert.deepEqual(rollout.releases.map((r) => r.request.image.split(':').pop()), ['v5']);
    assert.equal(lines.filter((l) => l.msg === 'release superseded').length, 4);
  });

  it('supersedes a request older than the target\'s last release: it changes nothing', async () => {
    const queues = await createQueues(suite.sqs);
    const rollout = new RecordingRollout();
    const store = new MemoryReleaseStore();
    const { logger, lines } = capturingLogger();
    const older = new Date(Date.now() - 5_000);
    await withWorker(configFor(queues), { rollout, logger, store }, async () => {
      await sendRaw(suite.sqs, queues.url, request('staging', 'v3'));
      await eventually('v3 released', () => rollout.releases.length === 1, 10_000);
      await eventually('the queue to be emptied', emptied(queues.url), 10_000);
      await sendRaw(suite.sqs, queues.url, request('staging', 'v2', older));
      await eventually('the old request to be ended', () => lines.some((l) => l.msg === 'release superseded'), 10_000);
      await eventually('the queue to be emptied', emptied(queues.url), 10_000);
    });
    assert.deepEqual(rollout.releases.map((r) => r.request.image.split(':').pop()), ['v3'], 'v2 was never rolled out');
    const superseded = lines.find((l) => l.msg === 'release superseded')!;
    assert.equal((await store.get(String(superseded.releaseId)))?.status, 'superseded');
  });

  it('shares one queue between workers that serve different targets: each request reaches a worker that serves it, none is refused', async () => {
    // The queue's own redrive limit stays above unservedDeliveries, as the README says it must.
    const queues = await createQueues(suite.sqs, { maxReceiveCount: 20 });
    const serving = (deployments: string[]) =>
      configFor(queues, {
        queue: { url: queues.url, deadLetterUrl: queues.deadLetterUrl, waitSeconds: 1, visibilityTimeoutSeconds: 30, unservedDeliveries: 15 },
        releases: [{ stack: 'data', release: 'ingest', deployments, images: { allowedRepositories: [`${REGISTRY}/data/ingest`] } }],
      });
    const stagingRollout = new RecordingRollout();
    const productionRollout = new RecordingRollout();
    const stagingStore = new MemoryReleaseStore();
    const productionStore = new MemoryReleaseStore();
    const staging = capturingLogger();
    for (let i = 0; i < 3; i += 1) {
      await sendRaw(suite.sqs, queues.url, request('production', 'v2'));
      await sendRaw(suite.sqs, queues.url, request('staging', 'v2'));
    }
    await withWorker(serving(['staging']), { rollout: stagingRollout, logger: staging.logger, store: stagingStore }, async () => {
      // The staging worker alone first: it takes every request, and must hand the production ones back.
      await eventually('a production request handed back', () => staging.lines.some((l) => l.msg === 'request for a target this worker does not serve: handed back for a worker that does'), 10_000);
      await withWorker(serving(['production']), { rollout: productionRollout, logger: capturingLogger().logger, store: productionStore }, async () => {
        await eventually('the queue to be emptied and every release to end', settled(queues.url, stagingStore, productionStore), 40_000);
      });
    });
    assert.ok(stagingRollout.releases.length >= 1 && stagingRollout.releases.every((r) => r.deployment === 'staging'));
    assert.ok(productionRollout.releases.length >= 1 && productionRollout.releases.every((r) => r.deployment === 'production'));
    assert.deepEqual(await drain(suite.sqs, queues.deadLetterUrl, 0, 1_000), [], 'nothing dead-lettered');
  });

  it('refuses a request no worker serves once it has been delivered unservedDeliveries times', async () => {
    const queues = await createQueues(suite.sqs);
    await sendRaw(suite.sqs, queues.url, request('nowhere', 'v2'));
    const { logger, lines } = capturingLogger();
    const config = configFor(queues, { queue: { url: queues.url, deadLetterUrl: queues.deadLetterUrl, waitSeconds: 1, visibilityTimeoutSeconds: 30, unservedDeliveries: 2 } });
    await withWorker(config, { rollout: new RecordingRollout(), logger, store: new MemoryReleaseStore() }, async () => {
      await eventually('the queue to be emptied', emptied(queues.url), 20_000);
    });
    const [dead] = await drain(suite.sqs, queues.deadLetterUrl, 1);
    assert.equal(dead?.MessageAttributes?.['harbormaster.refusal']?.StringValue, 'unknown-target');
    assert.match(dead?.MessageAttributes?.['harbormaster.reason']?.StringValue ?? '', /does not serve data\/ingest\/nowhere \(no worker took it in 2 deliveries\)/);
    assert.equal(lines.filter((l) => l.msg === 'request for a target this worker does not serve: handed back for a worker that does').length, 1);
  });
});
