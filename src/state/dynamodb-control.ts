import { randomUUID } from 'node:crypto';
import { GetCommand, PutCommand, type PutCommandInput } from '@aws-sdk/lib-dynamodb';
import { emptyControl, type ControlChange, type TargetControl } from './control.js';
import type { LeaseIo } from './dynamodb-leases.js';
import { RELEASE_TABLE } from './dynamodb-release-table.js';

// The DynamoDB store's control documents (control.ts): one `control#<target>` item per target in the
// release table, holding the document as JSON (`control`), its `revision`, `controlTarget` and the
// `writeId` of the write that made it. A write is a put conditional on the revision it was computed
// from (or on no item, for revision 0); when another writer came first, the document is read again and
// the change applied to it. Never fenced by a lease: operators write while a worker holds the target.
// The item carries none of the index attributes, so it is in neither index.

const CONTROL_PREFIX = 'control#';
const WRITE_ROUNDS = 20;

export const controlPk = (target: string) => `${CONTROL_PREFIX}${target}`;
const controlKey = (target: string) => ({ [RELEASE_TABLE.partitionKey]: controlPk(target) });

interface ControlItem {
  readonly pk: string;
  readonly kind: 'control';
  readonly controlTarget: string;
  readonly revision: number;
  readonly control: string;
  readonly writeId: string;
}

export class DynamoControl {
  constructor(private readonly io: LeaseIo) {}

  private async item(target: string): Promise<ControlItem | undefined> {
    const { io } = this;
    const { Item } = await io.call(`reading the control of ${target}`, () => io.doc.send(new GetCommand({ TableName: io.table, Key: controlKey(target), ConsistentRead: true })));
    return Item as ControlItem | undefined;
  }

  private decode(target: string, item: ControlItem | undefined): TargetControl {
    if (!item) return emptyControl(target);
    const parsed = JSON.parse(item.control) as TargetControl;
    return { ...parsed, target, revision: item.revision };
  }

  async read(target: string): Promise<TargetControl> {
    return this.decode(target, await this.item(target));
  }

  async update(target: string, change: ControlChange): Promise<TargetControl> {
    const { io } = this;
    for (let round = 0; round < WRITE_ROUNDS; round++) {
      const current = await this.read(target);
      const next = change(current);
      if (next === undefined) return current;
      const stored: TargetControl = { ...structuredClone(next), target, revision: current.revision + 1 };
      const writeId = randomUUID();
      const item: ControlItem = { pk: controlPk(target), kind: 'control', controlTarget: target, revision: stored.revision, control: JSON.stringify(stored), writeId };
      const condition: Omit<PutCommandInput, 'TableName' | 'Item'> =
        current.revision === 0
          ? { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': RELEASE_TABLE.partitionKey } }
          : { ConditionExpression: '#revision = :expected', ExpressionAttributeNames: { '#revision': 'revision' }, ExpressionAttributeValues: { ':expected': current.revision } };
      const written = await io.conditional(`writing the control of ${target}`, () => io.doc.send(new PutCommand({ TableName: io.table, Item: item, ...condition })));
      if (written) return stored;
      // The condition failed: another writer came first, or an earlier attempt of this one landed and its answer was lost.
      if ((await this.item(target))?.writeId === writeId) return stored;
    }
    throw new Error(`the control of ${target}: ${WRITE_ROUNDS} writes in a row lost to other writers; try again`);
  }
}
