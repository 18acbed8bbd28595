import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DescribeTableCommand, DescribeTimeToLiveCommand, DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { awsEndpoint, clientConfig } from '../../local-fleet/aws-resources.js';
import { createReleaseTable, DynamoReleaseStore, RELEASE_TABLE, releaseTableDefinition } from '../../src/state/dynamodb-release-store.js';
import { DamagedRecordError, LeaseLostError, StaleRecordError } from '../../src/state/release-store.js';
import { motoForSuite } from '../support/aws.js';
import { busyRecord, controlContract, recordFor, releaseStoreContract } from './release-store-contract.js';

// The DynamoDB store against a real moto_server: the contract every store passes (a fresh table per
// store, since the contract counts what unfinished() lists), then what only several workers on one table,
// DynamoDB's TTL and its errors bring.

const suite = motoForSuite();
const clients: DynamoDBClient[] = [];
after(() => {
  for (const client of clients) client.destroy();
});

/** A client of its own: each "worker" has one, as separate processes would. */
function newClient(): DynamoDBClient {
  const client = new DynamoDBClient(clientConfig(awsEndpoint(suite.moto.endpoint)));
  clients.push(client);
  return client;
}

let shared: DynamoDBClient | undefined;
const dynamo = () => (shared ??= newClient());
const raw = () => DynamoDBDocumentClient.from(dynamo());

let tables = 0;
async function freshTable(): Promise<string> {
  const table = `harbormaster-releases-${process.pid}-${++tables}`;
  await createReleaseTable(dynamo(), table);
  return table;
}

const rawItem = async (table: string, releaseId: string) => (await raw().send(new GetCommand({ TableName: table, Key: { pk: `release#${releaseId}` }, ConsistentRead: true }))).Item;

releaseStoreContract('dynamodb (moto)', async () => new DynamoReleaseStore({ client: dynamo(), table: await freshTable() }));
controlContract('dynamodb (moto), two workers on one table', async () => {
  const table = await freshTable();
  return [new DynamoReleaseStore({ client: newClient(), table }), new DynamoReleaseStore({ client: newClient(), table })];
});

describe('the DynamoDB table', () => {
  it('is created as releaseTableDefinition says, with TTL on purgeAt, and creating it again changes nothing', async () => {
    const table = await freshTable();
    await createReleaseTable(dynamo(), table);
    const { Table } = await dynamo().send(new DescribeTableCommand({ TableName: table }));
    const definition = releaseTableDefinition(table);
    assert.equal(Table?.TableStatus, 'ACTIVE');
    assert.deepEqual(Table?.KeySchema, definition.KeySchema);
    assert.deepEqual(
      (Table?.GlobalSecondaryIndexes ?? []).map((index) => ({ IndexName: index.IndexName, KeySchema: index.KeySchema, Projection: index.Projection })).sort((a, b) => a.IndexName!.localeCompare(b.IndexName!)),
      [...definition.GlobalSecondaryIndexes!].sort((a, b) => a.IndexName!.localeCompare(b.IndexName!)),
    );
    assert.equal(Table?.BillingModeSummary?.BillingMode, 'PAY_PER_REQUEST');
    const ttl = (await dynamo().send(new DescribeTimeToLiveCommand({ TableName: table }))).TimeToLiveDescription;
    assert.deepEqual({ status: ttl?.TimeToLiveStatus, attribute: ttl?.AttributeName }, { status: 'ENABLED', attribute: RELEASE_TABLE.ttlAttribute });
  });
});

describe('two workers on one table', () => {
  const twoWorkers = async () => {
    const table = await freshTable();
    return { table, a: new DynamoReleaseStore({ client: newClient(), table }), b: new DynamoReleaseStore({ client: newClient(), table }) };
  };

  it('see each other\'s claims: of racing claims from both, exactly one wins, and both read the winner\'s record', async () => {
    const { a, b } = await twoWorkers();
    const record = recordFor();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).claim({ ...record, keyId: `k${i}` })));
    assert.equal(results.filter((r) => r.claimed).length, 1);
    const winner = results.find((r) => r.claimed)!.record;
    assert.deepEqual(await a.get(record.releaseId), winner);
    assert.deepEqual(await b.get(record.releaseId), winner);
    assert.deepEqual((await b.unfinished()).map((r) => r.releaseId), [record.releaseId]);
    assert.deepEqual(await a.releasesOf(record.target), [{ releaseId: record.releaseId, createdAt: record.request.createdAt, status: 'accepted' }]);
  });

  it('refuse a write from one worker working from a copy the other has since changed', async () => {
    const { a, b } = await twoWorkers();
    const { record } = await a.claim(recordFor());
    const bCopy = (await b.get(record.releaseId))!;
    const saved = await a.save(busyRecord(record));
    await assert.rejects(b.save({ ...bCopy, status: 'refused' }), (error: unknown) => {
      assert.ok(error instanceof StaleRecordError);
      assert.deepEqual({ expected: error.expected, found: error.found }, { expected: 1, found: 2 });
      return true;
    });
    assert.deepEqual(await b.get(record.releaseId), saved);
    assert.deepEqual((await b.unfinished()).map((r) => r.status), ['running'], 'the other worker sees the release running');
  });

  it('hold a target\'s lease one at a time, hand it over when it expires, and fence the old holder out', async () => {
    const { a, b } = await twoWorkers();
    const target = `data/ingest/t-${randomUUID().slice(0, 8)}`;
    const { record } = await a.claim(recordFor({ target }));
    const leaseA = (await a.acquireLease(target, 'worker-a', 400))!;
    assert.ok(leaseA);
    const savedByA = await a.save({ ...record, status: 'running' }, leaseA);
    // (Each write of worker a to the lease item, this save's included, starts b's watch again.)
    assert.equal(await b.acquireLease(target, 'worker-b', 5_000), undefined, 'worker a holds it');

    await sleep(550);
    const leaseB = (await b.acquireLease(target, 'worker-b', 60_000))!;
    assert.ok(leaseB, 'worker b takes the lease nobody renewed for a lease period');
    assert.ok(leaseB.token > leaseA.token);
    await assert.rejects(a.renewLease(leaseA, 60_000), (error: unknown) => error instanceof LeaseLostError && /worker-b holds it now/.test(error.message));
    await assert.rejects(a.save({ ...savedByA, reason: 'worker a woke up' }, leaseA), LeaseLostError);
    assert.equal((await b.get(record.releaseId))!.reason, undefined, 'the fenced write changed nothing');

    const savedByB = await b.save({ ...(await b.get(record.releaseId))!, reason: 'worker b carries it on' }, leaseB);
    assert.equal(savedByB.revision, 3);
    await a.releaseLease(leaseA); // stale: must not free b's lease
    assert.equal(await a.acquireLease(target, 'worker-a', 60_000), undefined, 'worker b still holds it');
    await b.releaseLease(leaseB);
    const again = await a.acquireLease(target, 'worker-a', 60_000);
    assert.ok(again && again.token > leaseB.token, 'released by its holder, it is free at once, with the next token');
  });

  it('judge a lease\'s expiry by the writer\'s clock', async () => {
    const { table, a } = await twoWorkers();
    const target = `data/ingest/t-${randomUUID().slice(0, 8)}`;
    const { record } = await a.claim(recordFor({ target }));
    const lease = (await a.acquireLease(target, 'worker-a', 60_000))!;
    const fastClock = new DynamoReleaseStore({ client: newClient(), table, clock: () => Date.now() + 120_000 });
    await assert.rejects(fastClock.save({ ...record, status: 'running' }, lease), (error: unknown) => error instanceof LeaseLostError && /expired/.test(error.message));
    assert.equal((await a.save({ ...record, status: 'running' }, lease)).revision, 2, 'by its own clock the holder may still write');
  });
});

describe('retention of finished releases (TTL)', () => {
  const DAY = 86_400_000;
  const t0 = Date.parse('2026-11-29T10:00:00.000Z');

  /** One table, and a store on it whose clock the test moves. */
  const atTime = async (options: { retentionDays?: number } = {}) => {
    const table = await freshTable();
    let now = t0;
    const store = new DynamoReleaseStore({ client: dynamo(), table, clock: () => now, ...options });
    return { table, store, setNow: (ms: number) => (now = ms) };
  };

  it('marks a release unfinished until it reaches a final state, then sets purgeAt (epoch seconds) to the retention from that write', async () => {
    const { table, store, setNow } = await atTime();
    const { record } = await store.claim(recordFor({ acceptedAt: new Date(t0) }));
    let item = await rawItem(table, record.releaseId);
    assert.equal(item?.unfinished, 'yes');
    assert.equal(item?.purgeAt, undefined);
    const running = await store.save({ ...record, status: 'running' });
    assert.equal((await rawItem(table, record.releaseId))?.purgeAt, undefined, 'a running release never expires');
    setNow(t0 + 3_600_000);
    await store.save({ ...running, status: 'succeeded', finishedAt: new Date(t0 + 3_600_000).toISOString() });
    item = await rawItem(table, record.releaseId);
    assert.equal(item?.purgeAt, (t0 + 3_600_000) / 1000 + 30 * 86_400);
    assert.equal(item?.unfinished, undefined, 'out of the sparse index');
    assert.equal(item?.status, 'succeeded');
  });

  it('takes the retention from its options', async () => {
    const { table, store } = await atTime({ retentionDays: 20 });
    const { record } = await store.claim(recordFor());
    await store.save({ ...record, status: 'refused' });
    assert.equal((await rawItem(table, record.releaseId))?.purgeAt, t0 / 1000 + 20 * 86_400);
  });

  it('refuses a retention shorter than SQS can deliver a duplicate', () => {
    assert.throws(() => new DynamoReleaseStore({ client: dynamo(), table: 'x', retentionDays: 14 }), /at least 15 days/);
    assert.doesNotThrow(() => new DynamoReleaseStore({ client: dynamo(), table: 'x', retentionDays: 15 }));
  });

  it('still knows a finished release a day before its retention ends: a late duplicate finds it and claims nothing', async () => {
    const { store, setNow } = await atTime();
    const { record } = await store.claim(recordFor());
    const finished = await store.save({ ...record, status: 'succeeded' });
    setNow(t0 + 29 * DAY);
    assert.deepEqual(await store.get(record.releaseId), finished);
    const duplicate = await store.claim(recordFor({ releaseId: record.releaseId }));
    assert.equal(duplicate.claimed, false);
    assert.deepEqual(duplicate.record, finished);
    assert.deepEqual((await store.releasesOf(record.target)).map((r) => r.releaseId), [record.releaseId]);
  });

  it('treats a release past its TTL as gone even though moto kept the item (AWS deletes it within days)', async () => {
    const { table, store, setNow } = await atTime();
    const { record } = await store.claim(recordFor());
    const finished = await store.save({ ...record, status: 'succeeded' });
    setNow(t0 + 31 * DAY);
    assert.ok(await rawItem(table, record.releaseId), 'moto has not deleted the expired item');
    assert.equal(await store.get(record.releaseId), undefined);
    assert.deepEqual(await store.releasesOf(record.target), []);
    await assert.rejects(store.save({ ...finished, reason: 'late' }), (error: unknown) => error instanceof StaleRecordError && error.found === undefined);
    const reclaimed = await store.claim({ ...recordFor({ releaseId: record.releaseId }), keyId: 'new' });
    assert.equal(reclaimed.claimed, true, 'its id is free again, as it would be once AWS deleted the item');
    assert.equal(reclaimed.record.revision, 1);
    assert.equal((await store.get(record.releaseId))?.keyId, 'new');
    assert.equal((await rawItem(table, record.releaseId))?.purgeAt, undefined);
  });
});

/** A client whose calls can be made to fail, by operation name, before or after DynamoDB answered. */
function faultyClient() {
  const client = newClient();
  const sent: string[] = [];
  const faults: { command: string; when: 'before' | 'after'; error: () => Error }[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String(context.commandName);
      sent.push(command);
      const index = faults.findIndex((fault) => fault.command === command);
      const fault = index >= 0 ? faults.splice(index, 1)[0] : undefined;
      if (fault?.when === 'before') throw fault.error();
      const result = await next(args);
      if (fault?.when === 'after') throw fault.error();
      return result;
    },
    { step: 'initialize', name: 'harbormasterFaults' },
  );
  return { client, sent, faults, count: (command: string) => sent.filter((name) => name === command).length };
}

const throttled = () => Object.assign(new Error('Rate of requests exceeds the allowed throughput'), { name: 'ProvisionedThroughputExceededException', $metadata: { httpStatusCode: 400 } });
const connectionReset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

describe('errors on the way to DynamoDB', () => {
  it('retries throttling, and never a failed condition', async () => {
    const table = await freshTable();
    const { client, faults, count } = faultyClient();
    const store = new DynamoReleaseStore({ client, table });
    faults.push({ command: 'PutItemCommand', when: 'before', error: throttled }, { command: 'PutItemCommand', when: 'before', error: throttled });
    const { claimed, record } = await store.claim(recordFor());
    assert.equal(claimed, true);
    assert.equal(count('PutItemCommand'), 3, 'two throttled attempts, then the write');
    await store.save({ ...record, status: 'running' });
    const before = count('PutItemCommand');
    await assert.rejects(store.save({ ...record, status: 'refused' }), StaleRecordError);
    assert.equal(count('PutItemCommand') - before, 1, 'a refused condition is not tried again');
  });

  it('recognises its own write when the answer was lost and the retry finds the condition taken', async () => {
    const table = await freshTable();
    const { client, faults, count } = faultyClient();
    const store = new DynamoReleaseStore({ client, table });
    faults.push({ command: 'PutItemCommand', when: 'after', error: connectionReset });
    const claim = await store.claim(recordFor());
    assert.equal(claim.claimed, true, 'the first attempt landed: the claim is ours');
    assert.equal(count('PutItemCommand'), 2);
    faults.push({ command: 'PutItemCommand', when: 'after', error: connectionReset });
    const saved = await store.save({ ...claim.record, status: 'running' });
    assert.equal(saved.revision, 2);
    assert.equal((await store.get(claim.record.releaseId))?.status, 'running');
    // The same for a fenced save.
    const lease = (await store.acquireLease(claim.record.target, 'worker-a', 60_000))!;
    faults.push({ command: 'TransactWriteItemsCommand', when: 'after', error: connectionReset });
    assert.equal((await store.save({ ...saved, reason: 'fenced' }, lease)).revision, 3);
    assert.equal(count('TransactWriteItemsCommand'), 2);
  });

  it('retries a transaction cancelled by a conflicting transaction, and tells a lease failure from a stale revision', async () => {
    const table = await freshTable();
    const { client, faults, count } = faultyClient();
    const store = new DynamoReleaseStore({ client, table });
    const target = `data/ingest/t-${randomUUID().slice(0, 8)}`;
    const { record } = await store.claim(recordFor({ target }));
    const lease = (await store.acquireLease(target, 'worker-a', 60_000))!;
    faults.push({
      command: 'TransactWriteItemsCommand',
      when: 'before',
      error: () => new TransactionCanceledException({ message: 'Transaction cancelled', $metadata: { httpStatusCode: 400 }, CancellationReasons: [{ Code: 'None' }, { Code: 'TransactionConflict' }] }),
    });
    const saved = await store.save({ ...record, status: 'running' }, lease);
    assert.equal(saved.revision, 2);
    assert.equal(count('TransactWriteItemsCommand'), 2);
    await assert.rejects(store.save({ ...record, status: 'refused' }, lease), StaleRecordError, 'lease good, revision stale');
    await store.releaseLease(lease);
    await assert.rejects(store.save({ ...saved, status: 'refused' }, lease), LeaseLostError, 'revision good, lease gone');
  });

  it('reports a release item it cannot read as DamagedRecordError, never claims over it, and lists the others', async () => {
    const table = await freshTable();
    const store = new DynamoReleaseStore({ client: dynamo(), table });
    const releaseId = randomUUID();
    await raw().send(
      new PutCommand({
        TableName: table,
        Item: { pk: `release#${releaseId}`, releaseId, revision: 3, record: '{"format":"harbormaster.release/1","relea', target: 'data/ingest/staging', acceptedAt: new Date().toISOString(), status: 'running', unfinished: 'yes' },
      }),
    );
    const { record: healthy } = await store.claim(recordFor());
    await assert.rejects(store.get(releaseId), (error: unknown) => error instanceof DamagedRecordError && /not whole JSON/.test(error.message));
    await assert.rejects(store.claim(recordFor({ releaseId })), DamagedRecordError);
    assert.deepEqual((await store.unfinished()).map((r) => r.releaseId), [healthy.releaseId]);
  });
});
