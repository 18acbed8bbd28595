import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { awsEndpoint, clientConfig } from '../../local-fleet/aws-resources.js';
import { createReleaseTable, DynamoReleaseStore, RELEASE_TABLE } from '../../src/state/dynamodb-release-store.js';
import { LeaseLostError, type TargetLease } from '../../src/state/release-store.js';
import { ReleaseScheduler } from '../../src/worker/release-scheduler.js';
import { motoForSuite } from '../support/aws.js';
import { RecordingRollout } from '../support/recording-rollout.js';
import { capturingLogger, workerConfig } from '../support/worker-fixtures.js';
import { recordFor } from './release-store-contract.js';
import { vouchWithTestKey } from '../support/signed-records.js';

// Two workers on one DynamoDB table in moto, where their clocks disagree and where the by-target index
// lags behind the table: a lease renewed by its holder is never taken, and an older request never
// starts after a newer one started, whatever the index says.

const suite = motoForSuite();
const clients: DynamoDBClient[] = [];
after(() => {
  for (const client of clients) client.destroy();
});

function newClient(): DynamoDBClient {
  const client = new DynamoDBClient(clientConfig(awsEndpoint(suite.moto.endpoint)));
  clients.push(client);
  return client;
}

/** A client whose by-target index answers nothing, as a global secondary index that has not caught up yet. */
function laggingIndexClient(): DynamoDBClient {
  const client = newClient();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const input = args.input as { IndexName?: string };
      if (context.commandName === 'QueryCommand' && input.IndexName === RELEASE_TABLE.targetIndex) {
        Object.assign(result.output as object, { Items: [], Count: 0, LastEvaluatedKey: undefined });
      }
      return result;
    },
    { step: 'initialize', name: 'laggingIndex' },
  );
  return client;
}

let tables = 0;
async function freshTable(): Promise<string> {
  const table = `harbormaster-takeover-${process.pid}-${++tables}`;
  await createReleaseTable(newClient(), table);
  return table;
}

const uniqueTarget = () => `data/ingest/t-${randomUUID().slice(0, 8)}`;
const LEASE_MS = 1_000;

/** Tries to take the lease every 100 ms until it is taken; gives up after `tries`. */
async function takeEventually(store: DynamoReleaseStore, target: string, owner: string, tries = 60): Promise<TargetLease | undefined> {
  for (let i = 0; i < tries; i++) {
    const lease = await store.acquireLease(target, owner, LEASE_MS);
    if (lease) return lease;
    await sleep(100);
  }
  return undefined;
}

describe('a lease under clock skew (two DynamoDB stores on moto)', () => {
  it('is never taken from a holder that renews it by a worker whose clock runs 25 s ahead, and is taken once the holder stops', async () => {
    const table = await freshTable();
    const holder = new DynamoReleaseStore({ client: newClient(), table });
    const ahead = new DynamoReleaseStore({ client: newClient(), table, clock: () => Date.now() + 25_000 });
    const target = uniqueTarget();
    const { record } = await holder.claim(recordFor({ target }));
    let held = (await holder.acquireLease(target, 'worker-a', LEASE_MS))!;
    assert.ok(held);
    // Three lease periods of renewals every quarter period, the other worker trying all along.
    for (let i = 0; i < 12; i++) {
      assert.equal(await ahead.acquireLease(target, 'worker-b', LEASE_MS), undefined, `try ${i}: the holder still renews it`);
      held = await holder.renewLease(held, LEASE_MS);
      await sleep(LEASE_MS / 4);
    }
    assert.equal((await holder.save({ ...record, status: 'running' }, held)).revision, 2, 'the holder still writes under it');
    const taken = await takeEventually(ahead, target, 'worker-b');
    assert.ok(taken, 'once nobody renews it, the other worker takes it');
    assert.ok(taken.token > held.token);
    await assert.rejects(holder.renewLease(held, LEASE_MS), LeaseLostError);
  });

  it('is taken from a holder that stopped renewing by a worker whose clock runs 25 s behind', async () => {
    const table = await freshTable();
    const holder = new DynamoReleaseStore({ client: newClient(), table });
    const behind = new DynamoReleaseStore({ client: newClient(), table, clock: () => Date.now() - 25_000 });
    const target = uniqueTarget();
    const held = (await holder.acquireLease(target, 'worker-a', LEASE_MS))!;
    const taken = await takeEventually(behind, target, 'worker-b');
    assert.ok(taken, 'taken after a lease period unchanged, though by its own clock it has not expired');
    assert.ok(taken.token > held.token);
  });
});

describe('newest wins when the by-target index lags (scheduler on two DynamoDB stores in moto)', () => {
  it('ends an older request as superseded when a newer one already ran on the target, though the index shows neither', async () => {
    const table = await freshTable();
    const releases = workerConfig('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }).releases;
    const worker = (store: DynamoReleaseStore, rollout: RecordingRollout, workerId: string) =>
      new ReleaseScheduler({ store, rollout, vouch: vouchWithTestKey(releases, (id) => store.get(id)), logger: capturingLogger().logger, workerId, leaseMs: 30_000, parallel: 4, stopRequested: new AbortController().signal });
    const storeA = new DynamoReleaseStore({ client: newClient(), table });
    const storeB = new DynamoReleaseStore({ client: laggingIndexClient(), table });
    const target = 'data/ingest/staging';
    const newer = (await storeA.claim(recordFor({ target, createdAt: new Date() }))).record;
    const rolloutA = new RecordingRollout();
    const { logger } = capturingLogger();
    assert.equal((await worker(storeA, rolloutA, 'worker-a').take(newer.releaseId, logger, 'new')).status, 'ended');
    assert.equal((await storeA.get(newer.releaseId))?.status, 'succeeded');

    const older = (await storeB.claim(recordFor({ target, createdAt: new Date(Date.now() - 60_000) }))).record;
    assert.deepEqual(await storeB.releasesOf(target), [], 'the index lags: worker b sees no release of the target');
    const rolloutB = new RecordingRollout();
    const result = await worker(storeB, rolloutB, 'worker-b').take(older.releaseId, logger, 'new');
    assert.equal(rolloutB.releases.length, 0, 'the older request never started');
    assert.deepEqual(result.status === 'ended' ? result.outcome.status : result.status, 'superseded');
    const stored = await storeA.get(older.releaseId);
    assert.equal(stored?.status, 'superseded');
    assert.match(stored?.reason ?? '', new RegExp(newer.releaseId));
  });
});
