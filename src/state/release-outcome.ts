import { type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { whereItStands, type ReleaseRecord, type ReleaseStatus } from './release-record.js';

// What CI may read of a release: its outcome, and nothing of the worker's configuration. The DynamoDB
// store writes it beside the record, in its own attribute of the release item (`outcome`), with every
// write of the record; `enqueue --wait` reads that attribute alone (a projection), and the CI policy in
// deploy/cloudformation.yml allows GetItem on release items for exactly that attribute (IAM's
// dynamodb:Attributes with dynamodb:Select SPECIFIC_ATTRIBUTES). The record itself (the plan, the
// container spec and its environment) stays readable by the workers and ops only.

/** The release item's attributes CI may read (the CI policy's dynamodb:Attributes list). */
export const CI_READABLE_ATTRIBUTES = ['outcome'] as const;

export interface ReleaseOutcome {
  readonly status: ReleaseStatus;
  readonly reason?: string;
  /** Where it stands, as `whereItStands` says it: "running, 1 of 3 host(s) released, h2 at stop-old". */
  readonly progress: string;
  /** Each host (its name, else its address) and how far it got. */
  readonly hosts: Readonly<Record<string, string>>;
  /** What needs a person, if anything. */
  readonly attention?: readonly string[];
  readonly finishedAt?: string;
}

export function outcomeOfRecord(record: ReleaseRecord): ReleaseOutcome {
  return {
    status: record.status,
    ...(record.reason !== undefined ? { reason: record.reason } : {}),
    progress: whereItStands(record),
    hosts: Object.fromEntries(Object.values(record.hosts).map((h) => [h.name ?? h.address, h.progress])),
    ...(record.attention && record.attention.length > 0 ? { attention: [...record.attention] } : {}),
    ...(record.finishedAt !== undefined ? { finishedAt: record.finishedAt } : {}),
  };
}

/** Reads a release's outcome alone (undefined: no such release yet), with a consistent read. */
export async function readOutcome(client: DynamoDBClient, table: string, releaseId: string): Promise<ReleaseOutcome | undefined> {
  const doc = DynamoDBDocumentClient.from(client);
  const names = Object.fromEntries(CI_READABLE_ATTRIBUTES.map((name, i) => [`#a${i}`, name]));
  const { Item } = await doc.send(
    new GetCommand({ TableName: table, Key: { pk: `release#${releaseId}` }, ConsistentRead: true, ProjectionExpression: Object.keys(names).join(', '), ExpressionAttributeNames: names }),
  );
  const outcome = Item?.outcome as ReleaseOutcome | undefined;
  if (Item && (typeof outcome !== 'object' || outcome === null || typeof outcome.status !== 'string')) {
    throw new Error(`release ${releaseId}: its item in ${table} holds no outcome (written by a worker older than this command?)`);
  }
  return outcome;
}
