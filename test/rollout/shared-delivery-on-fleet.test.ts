import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, DeleteQueueCommand } from '@aws-sdk/client-sqs';
import type { Fleet } from '../../local-fleet/fleet.js';
import { DynamoReleaseStore } from '../../src/state/dynamodb-release-store.js';
import { isFinal } from '../../src/state/release-record.js';
import { queueDepth, sendRaw, sqsClient } from '../support/aws.js';
import { assertStagingWhole } from '../support/fleet-engine.js';
import { startSampler, type FleetObserver } from '../support/fleet-observer.js';
import { fleetWorkerEnvironment } from '../support/fleet-release.js';
import { fleetForSuite } from '../support/fleet-suite.js';
import { effectCounts, releaseIdOf, signedRequest, writeSharedWorkerConfig } from '../support/fleet-workers.js';
import { eventually } from '../support/worker-fixtures.js';
import { WorkerProcess } from '../support/worker-process.js';

// Real worker processes sharing the release table (moto): one request held by two workers at the same
// moment is rolled out once, every effect counted; a release whose worker dies is taken over, and the
// worker taking it over dies too, and a third finishes it. A sampler watches the invariants throughout.

const LEASE_SECONDS = 6;

describe('one request, several workers, on the local fleet', () => {
  const suite = fleetForSuite({ hosts: 4, freshEachTest: true });
  let fleet: Fleet;
  let observer: FleetObserver;
  before(() => {
    ({ fleet, observer } = suite);
  });

  const store = () => new DynamoReleaseStore({ client: new DynamoDBClient({ endpoint: fleet.aws.endpoint, region: fleet.aws.region, credentials: fleet.aws.credentials, maxAttempts: 1 }), table: fleet.aws.releaseTable });

  async function ended(releaseId: string): Promise<string> {
    const releases = store();
    let status = '';
    await eventually(`release ${releaseId} to end`, async () => {
      const record = await releases.get(releaseId);
      status = record?.status ?? '';
      return record !== undefined && isFinal(record.status);
    }, 180_000);
    return status;
  }

  it('rolls a request out once when two workers each hold a copy at the same moment, counting every effect', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'harbormaster-copies-'));
    const sqs = sqsClient(fleet.aws.endpoint);
    // The same signed request on two queues, each read by its own worker: both hold a copy at once.
    const other = (await sqs.send(new CreateQueueCommand({ QueueName: `releases-copy-${process.pid}-${Date.now()}` }))).QueueUrl!;
    const env = fleetWorkerEnvironment(fleet);
    const workers = [
      new WorkerProcess(writeSharedWorkerConfig(fleet, directory, 'a', { leaseSeconds: LEASE_SECONDS }), env),
      new WorkerProcess(writeSharedWorkerConfig(fleet, directory, 'b', { leaseSeconds: LEASE_SECONDS, queueUrl: other }), env),
    ];
    const sampler = startSampler(observer, fleet);
    try {
      await Promise.all(workers.map((w) => w.waitFor('polling', (l) => l.msg === 'polling for release requests')));
      const body = signedRequest(fleet, 'staging', 'v2', new Date());
      const releaseId = releaseIdOf(body);
      await Promise.all([sendRaw(sqs, fleet.aws.queueUrl, body), sendRaw(sqs, other, body)]);
      assert.equal(await ended(releaseId), 'succeeded');
      await Promise.all(workers.map((w) => w.waitFor('its copy handled', (l) => l.releaseId === releaseId)));
      for (const url of [fleet.aws.queueUrl, other]) await eventually('both copies acknowledged', async () => (await queueDepth(sqs, url)).visible + (await queueDepth(sqs, url)).inFlight === 0, 60_000);

      const counts = effectCounts(workers.flatMap((w) => w.lines), releaseId);
      const hosts = observer.stagingHosts.map((h) => h.name);
      const expected = [
        ...['suspend-auto-scaling', 'mute-alarms', 'resume-auto-scaling', 'unmute-alarms'].map((step) => `${step} -`),
        ...hosts.flatMap((host) => ['deregister', 'stop-old', 'start-new', 'register'].map((step) => `${step} ${host}`)),
      ].sort();
      assert.deepEqual([...counts.keys()].sort(), expected, 'every effect of the release was made');
      assert.deepEqual([...counts].filter(([, n]) => n !== 1), [], 'and each once, by one worker');
      const actors = workers.filter((w) => w.lines.some((l) => l.msg === 'step started' && l.releaseId === releaseId));
      assert.equal(actors.length, 1, 'one worker acted');

      const sampled = await sampler.stop();
      assert.deepEqual(sampled.unhealthyRegistered, []);
      assert.ok(sampled.maxOutOfService <= 1, `at most one out of service (saw ${sampled.maxOutOfService})`);
      await assertStagingWhole(observer, { h1: 'v2', h2: 'v2', h3: 'v2' });
    } finally {
      await sampler.stop();
      for (const worker of workers) assert.equal((await worker.kill('SIGTERM')).code, 0, worker.stderr);
      await sqs.send(new DeleteQueueCommand({ QueueUrl: other })).catch(() => undefined);
      sqs.destroy();
    }
  });

  it('ends whole when the worker that took a dead worker\'s release over is killed during the takeover, and a third finishes it', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'harbormaster-takeover-kill-'));
    const env = fleetWorkerEnvironment(fleet);
    const config = (name: string) => writeSharedWorkerConfig(fleet, directory, name, { leaseSeconds: LEASE_SECONDS });
    const first = new WorkerProcess(config('first'), env, { holdAt: 'h2:stop-old:end' });
    let second: WorkerProcess | undefined;
    let third: WorkerProcess | undefined;
    const sampler = startSampler(observer, fleet);
    try {
      await first.waitFor('polling', (l) => l.msg === 'polling for release requests');
      const body = signedRequest(fleet, 'staging', 'v3', new Date());
      const releaseId = releaseIdOf(body);
      const sqs = sqsClient(fleet.aws.endpoint);
      await sendRaw(sqs, fleet.aws.queueUrl, body);
      sqs.destroy();
      await first.waitFor('the first hold', (l) => l.msg === 'test hold reached', 90_000);
      await first.kill('SIGKILL');

      // The second takes it over and dies in the middle of it, h2 started on v3 but not yet back.
      second = new WorkerProcess(config('second'), env, { holdAt: 'h2:start-new:end' });
      // At its start (repair), at a sweep (takeover) or at the message's redelivery: whichever comes first.
      await second.waitFor('the takeover', (l) => l.msg === 'resuming an unfinished release' && l.releaseId === releaseId, 90_000);
      await second.waitFor('the second hold', (l) => l.msg === 'test hold reached', 90_000);
      assert.deepEqual((await observer.liveContainers()).h2, ['ingest']);
      await second.kill('SIGKILL');

      third = new WorkerProcess(config('third'), env);
      assert.equal(await ended(releaseId), 'succeeded');
      assert.ok(third.lines.some((l) => l.msg === 'resuming an unfinished release' && l.releaseId === releaseId), 'the third worker resumed it');
      const counts = effectCounts([...first.lines, ...second.lines, ...third.lines], releaseId);
      assert.equal(counts.get('start-new h1'), 1, 'h1 was released once, before the first kill');
      assert.equal(counts.get('start-new h3'), 1, 'h3 was released once, by the third worker');

      const sampled = await sampler.stop();
      assert.deepEqual(sampled.unhealthyRegistered, [], 'a registered host always answered healthy, across both kills');
      assert.ok(sampled.maxOutOfService <= 1, `at most one out of service (saw ${sampled.maxOutOfService})`);
      await assertStagingWhole(observer, { h1: 'v3', h2: 'v3', h3: 'v3' });
    } finally {
      await sampler.stop();
      await first.kill('SIGKILL');
      await second?.kill('SIGKILL');
      if (third) assert.equal((await third.kill('SIGTERM')).code, 0, third.stderr);
    }
  });
});
