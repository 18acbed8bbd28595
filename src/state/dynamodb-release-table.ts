import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';

// The one DynamoDB table of the release store (src/state/dynamodb-release-store.ts), defined once here.
// deploy/cloudformation.yml declares the same table for AWS (test/deploy/cloudformation.test.ts checks
// that both say the same keys, indexes, billing and TTL); createReleaseTable makes it where there is no
// CloudFormation: in tests (moto) and the local fleet. The worker itself never creates or changes the
// table, so its IAM policy has no table-level actions.
//
// Items (one partition key, `pk`; no sort key):
//   release#<releaseId>  the record as a JSON string (`record`), its `revision`, what CI may read of it
//                        (`outcome`: status, reason, progress, hosts; src/state/release-outcome.ts), and the attributes the
//                        indexes and conditions read: `target`, `createdAt` (the request's signed creation
//                        time), `acceptedAt`, `status`; `unfinished` while the release is not final (the
//                        sparse index below); `purgeAt` (TTL, epoch seconds) once it is final.
//   lease#<target>       the target's lease: `owner`, `token`, `leaseExpiresAt` (epoch ms, holder's clock),
//                        `leaseMs`, `revision` (bumped by every write), and `newestCreatedAt` /
//                        `newestReleaseId` (the newest release started on the target). Never deleted (a
//                        release expires it), so its token only ever grows: fencing stays sound.
//   control#<target>     what operators asked of the target (src/state/dynamodb-control.ts): `control` (the
//                        document as JSON), `revision`, `controlTarget`, `writeId`. Never expires.
//   target#<target>      the target's summary (src/state/target-summary.ts): `current` (the last release
//                        that succeeded), `lastFailure`, `summaryTarget`, `updatedAt`. Written with each
//                        final record; never expires (no `purgeAt`).
//   target-list          `names`: a string set of every target that has a summary item, so the summaries
//                        are read by key (GetItem, then BatchGetItem), never by a Scan.
// Lease, control, target and target-list items carry none of the index attributes, so they are in neither index.

export const RELEASE_TABLE = {
  partitionKey: 'pk',
  /** Sparse: only releases not in a final state carry `unfinished`; sorted by acceptance. */
  unfinishedIndex: 'unfinished-by-acceptance',
  unfinishedAttribute: 'unfinished',
  /** Every release of a target, sorted by the request's signed creation time (newest-wins). */
  targetIndex: 'by-target',
  /** TTL attribute, epoch seconds: set when a record reaches a final state. */
  ttlAttribute: 'purgeAt',
} as const;

/** The table exactly as CreateTable receives it (CloudFormation's AWS::DynamoDB::Table says the same). */
export function releaseTableDefinition(tableName: string): CreateTableCommandInput & { TableName: string } {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: RELEASE_TABLE.partitionKey, AttributeType: 'S' },
      { AttributeName: RELEASE_TABLE.unfinishedAttribute, AttributeType: 'S' },
      { AttributeName: 'acceptedAt', AttributeType: 'S' },
      { AttributeName: 'target', AttributeType: 'S' },
      { AttributeName: 'createdAt', AttributeType: 'S' },
    ],
    KeySchema: [{ AttributeName: RELEASE_TABLE.partitionKey, KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [
      {
        IndexName: RELEASE_TABLE.unfinishedIndex,
        KeySchema: [
          { AttributeName: RELEASE_TABLE.unfinishedAttribute, KeyType: 'HASH' },
          { AttributeName: 'acceptedAt', KeyType: 'RANGE' },
        ],
        // Keys only: the store reads the records themselves with a consistent BatchGetItem.
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
      {
        IndexName: RELEASE_TABLE.targetIndex,
        KeySchema: [
          { AttributeName: 'target', KeyType: 'HASH' },
          { AttributeName: 'createdAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ],
  };
}

/** The TTL setting, as UpdateTimeToLive and CloudFormation's TimeToLiveSpecification take it. */
export const releaseTableTimeToLive = { AttributeName: RELEASE_TABLE.ttlAttribute, Enabled: true } as const;

/**
 * Creates the release table (or finds it), waits until it is ACTIVE and makes sure TTL is enabled on
 * `purgeAt`. For tests and the local fleet: in AWS the table comes from deploy/cloudformation.yml.
 */
export async function createReleaseTable(client: DynamoDBClient, tableName: string, options: { timeoutMs?: number } = {}): Promise<void> {
  try {
    await client.send(new CreateTableCommand(releaseTableDefinition(tableName)));
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  const deadline = Date.now() + (options.timeoutMs ?? 300_000);
  for (let delay = 50; ; delay = Math.min(delay * 2, 2_000)) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') break;
    if (Date.now() > deadline) throw new Error(`DynamoDB table ${tableName} is not ACTIVE after ${options.timeoutMs ?? 300_000} ms (${Table?.TableStatus})`);
    await sleep(delay);
  }
  const ttl = (await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }))).TimeToLiveDescription;
  // AWS refuses to enable TTL again where it is enabled (or being enabled).
  if (ttl?.TimeToLiveStatus === 'ENABLED' || ttl?.TimeToLiveStatus === 'ENABLING') {
    if (ttl.AttributeName !== RELEASE_TABLE.ttlAttribute) throw new Error(`DynamoDB table ${tableName} has TTL on ${ttl.AttributeName}, not ${RELEASE_TABLE.ttlAttribute}`);
    return;
  }
  await client.send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { ...releaseTableTimeToLive } }));
}
