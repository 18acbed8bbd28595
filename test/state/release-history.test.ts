import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { awsEndpoint, clientConfig } from '../../local-fleet/aws-resources.js';
import { createReleaseTable, DynamoReleaseStore } from '../../src/state/dynamodb-release-store.js';
import { FileReleaseStore } from '../../src/state/file-release-store.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { motoForSuite } from '../support/aws.js';
import { finish, releaseHistoryContract } from './release-history-contract.js';

// The ops reads of every store: memory, files, and DynamoDB on moto (a fresh table per store).

const suite = motoForSuite();
let client: DynamoDBClient | undefined;
const dynamo = () => (client ??= new DynamoDBClient(clientConfig(awsEndpoint(suite.moto.endpoint))));
after(() => client?.destroy());
let tables = 0;
async function freshTable(): Promise<string> {
  const table = `harbormaster-history-${process.pid}-${++tables}`;
  await createReleaseTable(dynamo(), table);
  return table;
}
const stateDirectory = () => mkdtempSync(join(tmpdir(), 'harbormaster-history-'));

releaseHistoryContract('memory', () => new MemoryReleaseStore());
releaseHistoryContract('files', () => new FileReleaseStore(stateDirectory()));
releaseHistoryContract('dynamodb (moto)', async () => new DynamoReleaseStore({ client: dynamo(), table: await freshTable() }));

describe('the current release outlives its record', () => {
  it('in DynamoDB: past the record\'s retention, get() no longer knows it, and the target summary still names it', async () => {
    const table = await freshTable();
    const writer = new DynamoReleaseStore({ client: dynamo(), table });
    const current = await finish(writer, 'data/ingest/staging', 'succeeded', new Date());
    const later = new DynamoReleaseStore({ client: dynamo(), table, clock: () => Date.now() + 31 * 86_400_000 });
    assert.equal(await later.get(current.releaseId), undefined);
    const summary = (await later.targetSummaries()).find((s) => s.target === 'data/ingest/staging');
    assert.equal(summary?.current?.releaseId, current.releaseId);
    assert.equal(summary?.current?.image, current.request.image);
  });

  it('in files: with the release files gone, the target file still names it', async () => {
    const directory = stateDirectory();
    const current = await finish(new FileReleaseStore(directory), 'data/ingest/staging', 'succeeded', new Date());
    rmSync(join(directory, 'releases'), { recursive: true });
    const reader = new FileReleaseStore(directory, { readOnly: true });
    assert.equal(await reader.get(current.releaseId), undefined);
    assert.equal((await reader.targetSummaries())[0]?.current?.releaseId, current.releaseId);
  });
});
