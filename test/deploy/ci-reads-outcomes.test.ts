import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { parse } from 'yaml';
import { MOTO_CREDENTIALS, MOTO_REGION } from '../../local-fleet/moto.js';
import { waitForRelease } from '../../src/cli/wait-for-release.js';
import type { RecordedPlan } from '../../src/state/release-record.js';
import { createReleaseTable, DynamoReleaseStore } from '../../src/state/dynamodb-release-store.js';
import { motoForSuite } from '../support/aws.js';
import { busyRecord, recordFor } from '../state/release-store-contract.js';

// CI reads outcomes, not the worker's configuration: every call `enqueue --wait` makes to the release
// state is checked against the CI policy of deploy/cloudformation.yml (its actions, leading keys and
// attribute conditions, evaluated as IAM does for GetItem), and what it reads holds nothing of the
// container spec, whose environment the record carries.

const SECRET = 'db-password-4f1c9e';

type Statement = { Action: string | string[]; Condition?: Record<string, Record<string, string | string[]>> };
const tag = (name: string) => [
  { tag: `!${name}`, resolve: (value: string) => ({ [name]: value }) },
  { tag: `!${name}`, collection: 'seq' as const, resolve: (seq: { toJSON(): unknown }) => ({ [name]: seq.toJSON() }) },
];
const template = parse(readFileSync(new URL('../../deploy/cloudformation.yml', import.meta.url), 'utf8'), { customTags: ['Ref', 'GetAtt', 'Sub', 'If', 'Not', 'Equals', 'Or', 'And', 'Condition'].flatMap(tag) }) as {
  Resources: { CiPolicy: { Properties: { PolicyDocument: { Statement: Statement[] } } } };
};
const ciStatements = template.Resources.CiPolicy.Properties.PolicyDocument.Statement;
const list = (value: string | string[]) => (Array.isArray(value) ? value : [value]);
const like = (pattern: string, value: string) => new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(value);

/** Whether the CI policy allows this GetItem, evaluated as IAM does with DynamoDB's condition keys. */
function ciMayGet(input: { Key: Record<string, unknown>; ProjectionExpression?: string; ExpressionAttributeNames?: Record<string, string> }): boolean {
  const attributes = input.ProjectionExpression?.split(',').map((name) => name.trim()).map((name) => input.ExpressionAttributeNames?.[name] ?? name);
  // Without a projection, GetItem asks for every attribute: dynamodb:Select is ALL_ATTRIBUTES.
  const context: Record<string, string[]> = {
    'dynamodb:LeadingKeys': [String(input.Key.pk)],
    'dynamodb:Attributes': attributes ?? [],
    'dynamodb:Select': [attributes ? 'SPECIFIC_ATTRIBUTES' : 'ALL_ATTRIBUTES'],
  };
  return ciStatements.some((statement) => {
    if (!list(statement.Action).includes('dynamodb:GetItem')) return false;
    return Object.entries(statement.Condition ?? {}).every(([operator, keys]) =>
      Object.entries(keys).every(([key, allowed]) => {
        const values = context[key] ?? [];
        const permitted = list(allowed);
        switch (operator) {
          case 'ForAllValues:StringLike':
            return values.every((v) => permitted.some((p) => like(p, v)));
          case 'ForAllValues:StringEquals':
            return values.every((v) => permitted.includes(v));
          case 'StringEqualsIfExists':
            return values.length === 0 || values.every((v) => permitted.includes(v));
          default:
            throw new Error(`condition operator ${operator} is not evaluated by this test`);
        }
      }),
    );
  });
}

describe('what CI reads of a release (enqueue --wait, against the CI policy)', () => {
  const suite = motoForSuite();
  const clients: DynamoDBClient[] = [];
  after(() => clients.forEach((c) => c.destroy()));

  it('reads only the outcome, as the CI policy allows, and never the container environment', async () => {
    const client = new DynamoDBClient({ endpoint: suite.moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, maxAttempts: 1 });
    clients.push(client);
    const table = `releases-ci-${process.pid}`;
    await createReleaseTable(client, table);
    const store = new DynamoReleaseStore({ client, table });
    const base = recordFor();
    const { record } = await store.claim(base);
    const plan = { spec: { name: 'ingest', image: 'reg/app:v2', environment: { DATABASE_PASSWORD: SECRET } } } as unknown as RecordedPlan;
    const running = await store.save({ ...busyRecord(record), plan });
    await store.save({ ...running, status: 'succeeded', finishedAt: new Date().toISOString() });

    // The item holds the environment (in the record, for the workers): what CI may read must not.
    const whole = await DynamoDBDocumentClient.from(client).send(new GetCommand({ TableName: table, Key: { pk: `release#${base.releaseId}` } }));
    assert.ok(JSON.stringify(whole.Item).includes(SECRET), 'the record carries the environment');
    assert.equal(ciMayGet({ Key: { pk: `release#${base.releaseId}` } }), false, 'the CI policy refuses reading the whole item');
    assert.equal(ciMayGet({ Key: { pk: `release#${base.releaseId}` }, ProjectionExpression: '#r', ExpressionAttributeNames: { '#r': 'record' } }), false, 'and the record attribute');
    assert.equal(ciMayGet({ Key: { pk: 'lease#data/ingest/staging' }, ProjectionExpression: 'outcome' }), false, 'and the leases');

    const calls: Array<{ command: string; input: any; output?: unknown }> = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const call: { command: string; input: any; output?: unknown } = { command: String(context.commandName), input: args.input };
        calls.push(call);
        const result = await next(args);
        call.output = result.output;
        return result;
      },
      { step: 'initialize', name: 'recordCalls' },
    );
    const lines: string[] = [];
    const result = await waitForRelease({ releaseId: base.releaseId, table, region: MOTO_REGION, timeoutMs: 10_000, pollMs: 50, progress: (line) => lines.push(line), client });
    client.middlewareStack.remove('recordCalls');

    assert.deepEqual(result, { status: 'succeeded' });
    assert.ok(lines.some((line) => /succeeded, 1 of 2 host\(s\) released/.test(line)), lines.join('\n'));
    assert.ok(calls.length > 0);
    for (const call of calls) {
      assert.equal(call.command, 'GetItemCommand', 'only GetItem, as the policy allows');
      assert.ok(ciMayGet({ ...call.input, Key: { pk: call.input.Key.pk.S ?? call.input.Key.pk } }), `allowed by the CI policy: ${JSON.stringify(call.input)}`);
      assert.ok(!JSON.stringify(call.output).includes(SECRET), 'nothing of the container environment is read');
    }
  });
});
