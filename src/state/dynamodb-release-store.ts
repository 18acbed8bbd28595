import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { withRetry } from '../aws/transient.js';
import type { Logger } from '../log/logger.js';
import { isFinal, RECORD_FORMAT, type ReleaseRecord } from './release-record.js';
import { DamagedRecordError, LeaseLostError, StaleRecordError, type ClaimResult, type ReleaseStore, type TargetLease, type TargetRelease } from './release-store.js';
import { RELEASE_TABLE } from './dynamodb-release-table.js';
import { DynamoLeases } from './dynamodb-leases.js';
import { DynamoControl } from './dynamodb-control.js';
import type { ControlChange, TargetControl } from './control.js';
import { LeaseWatch } from './lease-watch.js';
import { outcomeOfRecord, type ReleaseOutcome } from './release-outcome.js';
import { releaseSummary, summarySlot, TARGET_SUMMARY_FORMAT, type ReleaseHistory, type TargetSummary } from './target-summary.js';

export { createReleaseTable, releaseTableDefinition, releaseTableTimeToLive, RELEASE_TABLE } from './dynamodb-release-table.js';

// Release records in one DynamoDB table, shared by several workers (HA pairs, several bastions) and read
// by CI waiting on a result. The table (keys, indexes, TTL) is defined in dynamodb-release-table.ts; in
// AWS, deploy/cloudformation.yml has the same definition.
//
// Writes are conditional:
// - claim: a put only where no release item exists (or an expired one, below): one of racing claims wins,
//   the others read the winner's record.
// - save: revision N+1 only over revision N. Under a lease, the put is a TransactWriteItems with a
//   condition on the target's lease item (same owner, same token, not expired by the writer's clock): a
//   worker that slept past its lease cannot write, so it must not act. A save that makes the release the
//   target's newest started one also records that on the lease item, in the same transaction. The
//   transaction's cancellation reasons say which condition failed: the lease (LeaseLostError) or the
//   revision (StaleRecordError).
// - leases: see dynamodb-leases.ts (taking another worker's lease never compares two clocks).
//
// Retries: transient errors (throttling, 5xx, the network) are retried with withRetry; a failed condition
// never is. A retried write may find that its first attempt landed after all (the answer was lost): every
// release write carries a random `writeId`, and a write whose condition fails reads the item back: its
// own writeId there means it succeeded. (Should another writer have written on top of it meanwhile, the
// write is reported stale: the worker then stops acting on the release, the safe way round.)
//
// Indexes, both KEYS_ONLY, each followed by a consistent BatchGetItem of the items they name (a GSI is only
// eventually consistent; the records it points at are read as they are now):
// - unfinished(): a sparse GSI on `unfinished` (present only while the release is not final) sorted by
//   acceptedAt. A Scan would read every release of the retention period, at a cost that grows with
//   history; the sparse index holds only the handful of releases in flight. A claim reaches the index
//   within about a second on AWS: unfinished() serves repair at start, where a release claimed in that
//   second is still in its worker's hands (and its message still on the queue).
// - releasesOf(target): a GSI on target sorted by the request's createdAt. Newest-wins under the lease
//   does not rest on it alone: the lease item names the newest release that started on the target (read
//   consistently with the lease), so an older request never starts after a newer one however far the
//   index lags. A just-claimed newer request the index misses, that has not started, only means the
//   older one is released first and the newer one after it, which still ends on the newest.
//
// Target summaries: a save under a lease that makes a record final also updates the target's
// `target#<target>` item in the same transaction (current release or last failure, target-summary.ts);
// a save without a lease, and a refusal claimed final, update it right after their write. A claim adds
// the release to the target item's `inFlight` set (right after it; again at a redelivery), and the final
// write takes it out. Each adds the target to the `target-list` item. These items never expire, so the current release of a target
// outlives its record. targetSummaries() reads them by key: the target list (GetItem), then the
// summaries (BatchGetItem); recent() reads a target's newest releases from the by-target index.
//
// Retention: a final record gets `purgeAt` = now + retentionDays (default 30) in epoch seconds, the
// table's TTL attribute. AWS deletes expired items within a few days; moto never does. So the store
// decides expiry itself, the same way whether or not the item is still there: an expired release is
// unknown to get() and releasesOf(), and a claim of its id may create it anew. That is safe because a
// duplicate delivery cannot come that late: SQS keeps a message at most 14 days from when it was sent
// (before the release could finish), so a retention above 14 days (enforced: at least 15) still knows
// every release a duplicate can name. A message redriven by hand from the dead-letter queue later still
// is judged as new, and refused as too old (signing.maxAgeSeconds is at most 7 days).

const DAY_SECONDS = 86_400;
/** SQS's longest message retention is 14 days: a finished release must be known longer than that. */
export const MIN_RETENTION_DAYS = 15;
export const DEFAULT_RETENTION_DAYS = 30;
/** DynamoDB items are at most 400 KB; records are a few KiB. */
const MAX_RECORD_BYTES = 350_000;
const RELEASE_PREFIX = 'release#';
const TARGET_PREFIX = 'target#';
const TARGET_LIST = 'target-list';
const UNFINISHED = 'yes';
/** DynamoDB answers: 100 keys per BatchGetItem. */
const BATCH_GET_LIMIT = 100;

/** Cancellation reasons and error names that say "try again", not "your condition failed". */
const RETRYABLE_REASONS = new Set(['TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded', 'RequestLimitExceeded']);
const RETRYABLE_ERRORS = new Set(['TransactionConflictException', 'TransactionInProgressException']);

interface ReleaseItem {
  pk: string;
  kind: 'release';
  releaseId: string;
  revision: number;
  record: string;
  target: string;
  createdAt?: string;
  acceptedAt: string;
  status: string;
  outcome: ReleaseOutcome;
  unfinished?: string;
  purgeAt?: number;
  writeId: string;
}


/** A failure that withRetry must try again (isTransient honours `$retryable`). */
class RetryableConflict extends Error {
  override name = 'RetryableConflict';
  readonly $retryable = { throttling: false };
}

const isConditionalFailure = (error: unknown) => error instanceof Error && error.name === 'ConditionalCheckFailedException';

function cancellationCodes(error: unknown): (string | undefined)[] | undefined {
  if (!(error instanceof Error) || error.name !== 'TransactionCanceledException') return undefined;
  const reasons = (error as Error & { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return reasons.map((reason) => reason?.Code);
}

/** DynamoDB's "someone else is writing this item right now" becomes a transient error. */
function asRetryable(error: unknown): unknown {
  if (error instanceof Error && RETRYABLE_ERRORS.has(error.name)) return new RetryableConflict(error.message, { cause: error });
  const codes = cancellationCodes(error);
  if (codes && !codes.includes('ConditionalCheckFailed') && codes.some((code) => code !== undefined && RETRYABLE_REASONS.has(code))) {
    return new RetryableConflict(`transaction cancelled (${codes.join(', ')})`, { cause: error });
  }
  return error;
}

const releasePk = (releaseId: string) => `${RELEASE_PREFIX}${releaseId}`;
const releaseKey = (releaseId: string) => ({ [RELEASE_TABLE.partitionKey]: releasePk(releaseId) });

export interface DynamoReleaseStoreOptions {
  readonly client: DynamoDBClient;
  readonly table: string;
  readonly logger?: Logger;
  /** How long a finished release stays known (TTL); at least MIN_RETENTION_DAYS. Default 30. */
  readonly retentionDays?: number;
  /** Epoch ms; this worker's own lease expiry, fencing and retention are judged by it. */
  readonly clock?: () => number;
  /** Monotonic ms (default performance.now): how long another worker's lease has been seen unchanged. */
  readonly monotonic?: () => number;
}

export class DynamoReleaseStore implements ReleaseStore, ReleaseHistory {
  readonly description: string;
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly logger: Logger | undefined;
  private readonly retentionSeconds: number;
  private readonly clock: () => number;
  private readonly leases: DynamoLeases;
  private readonly controls: DynamoControl;

  constructor(options: DynamoReleaseStoreOptions) {
    const retentionDays = options.retentionDays ?? DEFAULT_RETENTION_DAYS;
    if (!Number.isFinite(retentionDays) || retentionDays < MIN_RETENTION_DAYS) {
      throw new Error(
        `retentionDays ${retentionDays}: a finished release must stay known for at least ${MIN_RETENTION_DAYS} days (SQS can deliver a duplicate up to 14 days after it was sent)`,
      );
    }
    this.table = options.table;
    this.description = `DynamoDB table ${options.table}`;
    this.logger = options.logger?.child({ store: this.description });
    this.retentionSeconds = Math.round(retentionDays * DAY_SECONDS);
    this.clock = options.clock ?? Date.now;
    // The caller owns `client` (and destroys it); the document client only wraps it.
    this.doc = DynamoDBDocumentClient.from(options.client, { marshallOptions: { removeUndefinedValues: true } });
    const io = { doc: this.doc, table: this.table, clock: this.clock, call: <T>(what: string, work: () => Promise<T>) => this.call(what, work), conditional: (what: string, work: () => Promise<unknown>) => this.conditional(what, work) };
    this.leases = new DynamoLeases(io, options.monotonic ? new LeaseWatch(options.monotonic) : undefined);
    this.controls = new DynamoControl(io);
  }

  private call<T>(what: string, work: () => Promise<T>): Promise<T> {
    return withRetry(
      async () => {
        try {
          return await work();
        } catch (error) {
          throw asRetryable(error);
        }
      },
      { what: `${what} (${this.description})`, ...(this.logger ? { logger: this.logger } : {}) },
    );
  }

  /** A conditional write: true when it was made, false when its condition failed (never retried). */
  private async conditional(what: string, work: () => Promise<unknown>): Promise<boolean> {
    try {
      await this.call(what, work);
      return true;
    } catch (error) {
      if (isConditionalFailure(error)) return false;
      throw error;
    }
  }

  private nowSeconds(now = this.clock()): number {
    return Math.floor(now / 1000);
  }

  private expired(item: { purgeAt?: unknown }, now = this.clock()): boolean {
    return typeof item.purgeAt === 'number' && item.purgeAt <= this.nowSeconds(now);
  }

  private toItem(record: ReleaseRecord, writeId: string, now: number): ReleaseItem {
    const json = JSON.stringify(record);
    if (Buffer.byteLength(json) > MAX_RECORD_BYTES) throw new Error(`release ${record.releaseId}: the record is ${Buffer.byteLength(json)} bytes, more than a DynamoDB item holds`);
    const final = isFinal(record.status);
    return {
      pk: releasePk(record.releaseId),
      kind: 'release',
      releaseId: record.releaseId,
      revision: record.revision,
      record: json,
      target: record.target,
      // Index keys cannot be empty strings; a request always has one (acceptance checked it).
      ...(record.request.createdAt ? { createdAt: record.request.createdAt } : {}),
      acceptedAt: record.acceptedAt,
      status: record.status,
      // What CI may read, apart from the record (see release-outcome.ts).
      outcome: outcomeOfRecord(record),
      ...(final ? { purgeAt: this.nowSeconds(now) + this.retentionSeconds } : { unfinished: UNFINISHED }),
      writeId,
    };
  }

  /** The record an item holds; DamagedRecordError when it cannot be trusted. */
  private decode(releaseId: string, item: Record<string, unknown>): ReleaseRecord {
    const where = `${this.description}, item ${RELEASE_PREFIX}${releaseId}`;
    if (typeof item.record !== 'string') throw new DamagedRecordError(releaseId, where, 'the item has no record');
    let record: ReleaseRecord;
    try {
      record = JSON.parse(item.record) as ReleaseRecord;
    } catch (error) {
      throw new DamagedRecordError(releaseId, where, `the record is not whole JSON: ${(error as Error).message}`);
    }
    if (record === null || typeof record !== 'object') throw new DamagedRecordError(releaseId, where, 'the record is not an object');
    if (record.format !== RECORD_FORMAT) throw new DamagedRecordError(releaseId, where, `unknown record format ${String(record.format)}`);
    if (record.releaseId !== releaseId) throw new DamagedRecordError(releaseId, where, `the record is of release ${String(record.releaseId)}`);
    if (record.revision !== item.revision) throw new DamagedRecordError(releaseId, where, `the record says revision ${String(record.revision)}, the item ${String(item.revision)}`);
    return record;
  }

  private async readItem(releaseId: string): Promise<Record<string, unknown> | undefined> {
    const { Item } = await this.call(`reading release ${releaseId}`, () => this.doc.send(new GetCommand({ TableName: this.table, Key: releaseKey(releaseId), ConsistentRead: true })));
    return Item;
  }

  /**
   * The updates a record makes to its target's item and the target list: a final record writes the
   * summary and leaves the target's releases in flight; a new one joins them. Either adds the target
   * to the target list.
   */
  private summaryUpdates(record: ReleaseRecord, now: number): Array<UpdateCommandInput & { UpdateExpression: string }> {
    const final = isFinal(record.status);
    const slot = final ? summarySlot(record) : undefined;
    // Not final: the release is only added to the target's releases in flight (at its claim).
    const set = final ? `SET #kind = :kind, #format = :format, #target = :target, #updatedAt = :now${slot ? ', #slot = :summary' : ''} ` : 'SET #kind = :kind, #target = :target ';
    return [
      {
        TableName: this.table,
        Key: { [RELEASE_TABLE.partitionKey]: `${TARGET_PREFIX}${record.target}` },
        UpdateExpression: `${set}${final ? 'DELETE' : 'ADD'} #inFlight :id`,
        ExpressionAttributeNames: { '#kind': 'kind', '#target': 'summaryTarget', '#inFlight': 'inFlight', ...(final ? { '#format': 'format', '#updatedAt': 'updatedAt' } : {}), ...(slot ? { '#slot': slot } : {}) },
        ExpressionAttributeValues: { ':kind': 'target', ':target': record.target, ':id': new Set([record.releaseId]), ...(final ? { ':format': TARGET_SUMMARY_FORMAT, ':now': new Date(now).toISOString() } : {}), ...(slot ? { ':summary': releaseSummary(record) } : {}) },
      },
      {
        TableName: this.table,
        Key: { [RELEASE_TABLE.partitionKey]: TARGET_LIST },
        UpdateExpression: 'ADD #names :name',
        ExpressionAttributeNames: { '#names': 'names' },
        ExpressionAttributeValues: { ':name': new Set([record.target]) },
      },
    ];
  }

  private async writeSummaries(record: ReleaseRecord): Promise<void> {
    for (const update of this.summaryUpdates(record, this.clock())) await this.call(`summarising ${record.target}`, () => this.doc.send(new UpdateCommand(update)));
  }

  async claim(record: ReleaseRecord): Promise<ClaimResult> {
    const result = await this.claimRecord(record);
    // Also for a record claimed before: a redelivery adds a release in flight that a worker killed
    // right after its claim left out (ADD is idempotent).
    if (result.claimed || !isFinal(result.record.status)) await this.writeSummaries(result.record);
    return result;
  }

  private async claimRecord(record: ReleaseRecord): Promise<ClaimResult> {
    const stored: ReleaseRecord = { ...record, revision: 1 };
    for (let round = 0; ; round++) {
      const writeId = randomUUID();
      const now = this.clock();
      const created = await this.conditional(`claiming release ${record.releaseId}`, () =>
        this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: this.toItem(stored, writeId, now),
            // Free, or holding a release whose retention has passed (AWS may not have deleted it yet; moto never does).
            ConditionExpression: 'attribute_not_exists(#pk) OR #purgeAt <= :now',
            ExpressionAttributeNames: { '#pk': RELEASE_TABLE.partitionKey, '#purgeAt': RELEASE_TABLE.ttlAttribute },
            ExpressionAttributeValues: { ':now': this.nowSeconds(now) },
          }),
        ),
      );
      if (created) return { claimed: true, record: stored };
      const item = await this.readItem(record.releaseId);
      if (item?.writeId === writeId) return { claimed: true, record: stored }; // an earlier attempt landed
      // Gone meanwhile (deleted by TTL) or expired by now: claim again.
      if (!item || this.expired(item)) {
        if (round < 3) continue;
        throw new Error(`release ${record.releaseId}: the claim was refused ${round + 1} times, yet ${this.description} holds no live record of it`);
      }
      return { claimed: false, record: this.decode(record.releaseId, item) };
    }
  }

  async get(releaseId: string): Promise<ReleaseRecord | undefined> {
    const item = await this.readItem(releaseId);
    if (!item) return undefined;
    if (this.expired(item)) {
      this.logger?.debug({ releaseId, purgeAt: item.purgeAt }, 'the release is past its retention: treated as unknown, as if DynamoDB had deleted it');
      return undefined;
    }
    return this.decode(releaseId, item);
  }

  async save(record: ReleaseRecord, lease?: TargetLease): Promise<ReleaseRecord> {
    const next: ReleaseRecord = { ...record, revision: record.revision + 1 };
    delete next.damaged;
    const writeId = randomUUID();
    const revisionCondition = {
      ConditionExpression: '#revision = :expected AND (attribute_not_exists(#purgeAt) OR #purgeAt > :nowSeconds)',
      names: { '#revision': 'revision', '#purgeAt': RELEASE_TABLE.ttlAttribute },
    };
    let failed: 'lease' | 'revision' | undefined;
    await this.call(`saving release ${record.releaseId}`, async () => {
      failed = undefined;
      const now = this.clock();
      const put = {
        TableName: this.table,
        Item: this.toItem(next, writeId, now),
        ConditionExpression: revisionCondition.ConditionExpression,
        ExpressionAttributeNames: revisionCondition.names,
        ExpressionAttributeValues: { ':expected': record.revision, ':nowSeconds': this.nowSeconds(now) },
      };
      const summaries = isFinal(next.status) ? this.summaryUpdates(next, now) : [];
      try {
        if (!lease) {
          await this.doc.send(new PutCommand(put));
          return;
        }
        const fence = this.leases.fence(lease, now, next);
        await this.doc.send(
          new TransactWriteCommand({
            TransactItems: [fence.update ? { Update: fence.update } : { ConditionCheck: fence.check }, { Put: put }, ...summaries.map((update) => ({ Update: update }))],
          }),
        );
      } catch (error) {
        if (isConditionalFailure(error)) {
          failed = 'revision';
          return;
        }
        const codes = cancellationCodes(error);
        if (codes?.includes('ConditionalCheckFailed')) {
          failed = codes[0] === 'ConditionalCheckFailed' ? 'lease' : 'revision';
          return;
        }
        throw error;
      }
    });
    if (!failed) {
      // Under a lease the summary went in the same transaction; a write without one updates it after.
      if (!lease && isFinal(next.status)) await this.writeSummaries(next);
      return next;
    }

    const item = await this.readItem(record.releaseId);
    if (item?.writeId === writeId) return next; // an earlier attempt landed; its answer was lost
    if (failed === 'lease') throw new LeaseLostError(lease!.target, await this.leases.whyLost(lease!));
    const found = item && !this.expired(item) && typeof item.revision === 'number' ? item.revision : undefined;
    throw new StaleRecordError(record.releaseId, record.revision, found);
  }

  /** Every release item an index names, read consistently (BatchGetItem, 100 keys at a time). */
  private async readMany(keys: Record<string, unknown>[], projection?: string[]): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    const names = projection && Object.fromEntries(projection.map((name, i) => [`#p${i}`, name]));
    for (let start = 0; start < keys.length; start += BATCH_GET_LIMIT) {
      let pending: Record<string, unknown>[] = keys.slice(start, start + BATCH_GET_LIMIT);
      for (let round = 0; pending.length > 0; round++) {
        if (round > 0) {
          if (round > 10) throw new RetryableConflict(`${pending.length} item(s) of ${this.description} stayed unprocessed by BatchGetItem`);
          await sleep(Math.min(50 * 2 ** round, 2_000) * (0.5 + Math.random() / 2));
        }
        const request = {
          Keys: pending,
          ConsistentRead: true,
          ...(names ? { ProjectionExpression: Object.keys(names).join(', '), ExpressionAttributeNames: names } : {}),
        };
        const result = await this.call('reading releases', () => this.doc.send(new BatchGetCommand({ RequestItems: { [this.table]: request } })));
        items.push(...(result.Responses?.[this.table] ?? []));
        pending = (result.UnprocessedKeys?.[this.table]?.Keys as Record<string, unknown>[] | undefined) ?? [];
      }
    }
    return items;
  }

  /** The keys of every item of an index partition, in the index's order. */
  private async queryKeys(index: string, attribute: string, value: string): Promise<Record<string, unknown>[]> {
    const keys: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.call(`listing ${index}`, () =>
        this.doc.send(
          new QueryCommand({
            TableName: this.table,
            IndexName: index,
            KeyConditionExpression: '#key = :value',
            ExpressionAttributeNames: { '#key': attribute },
            ExpressionAttributeValues: { ':value': value },
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        ),
      );
      for (const item of page.Items ?? []) keys.push({ [RELEASE_TABLE.partitionKey]: item[RELEASE_TABLE.partitionKey] });
      start = page.LastEvaluatedKey;
    } while (start);
    return keys;
  }

  async unfinished(): Promise<ReleaseRecord[]> {
    const keys = await this.queryKeys(RELEASE_TABLE.unfinishedIndex, RELEASE_TABLE.unfinishedAttribute, UNFINISHED);
    const now = this.clock();
    const records: ReleaseRecord[] = [];
    for (const item of await this.readMany(keys)) {
      const releaseId = String(item.releaseId);
      if (this.expired(item, now)) continue;
      try {
        const record = this.decode(releaseId, item);
        if (!isFinal(record.status)) records.push(record);
      } catch (error) {
        if (!(error instanceof DamagedRecordError)) throw error;
        // As the file store does: said, left out, never a reason to stop listing the others.
        this.logger?.error({ err: error, releaseId }, 'the record of an unfinished release cannot be read; it is left out');
      }
    }
    return records.sort((a, b) => a.acceptedAt.localeCompare(b.acceptedAt) || a.releaseId.localeCompare(b.releaseId));
  }

  async releasesOf(target: string): Promise<TargetRelease[]> {
    const keys = await this.queryKeys(RELEASE_TABLE.targetIndex, 'target', target);
    const now = this.clock();
    const items = await this.readMany(keys, ['releaseId', 'target', 'createdAt', 'status', RELEASE_TABLE.ttlAttribute]);
    return items
      .filter((item) => item.target === target && !this.expired(item, now) && typeof item.createdAt === 'string')
      .map((item) => ({ releaseId: String(item.releaseId), createdAt: item.createdAt as string, status: item.status as ReleaseRecord['status'] }))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.releaseId.localeCompare(b.releaseId));
  }

  acquireLease(target: string, owner: string, ttlMs: number): Promise<TargetLease | undefined> {
    return this.leases.acquire(target, owner, ttlMs);
  }

  /** A read of the target items under way: targetSummaries() and openReleases() side by side share it. */
  private targetItemsRead: Promise<Record<string, unknown>[]> | undefined;

  private targetItems(): Promise<Record<string, unknown>[]> {
    if (!this.targetItemsRead) {
      this.targetItemsRead = this.readTargetItems();
      const clear = () => (this.targetItemsRead = undefined);
      this.targetItemsRead.then(clear, clear);
    }
    return this.targetItemsRead;
  }

  /** Every target item, by key: the target list (GetItem), then the items (BatchGetItem). */
  private async readTargetItems(): Promise<Record<string, unknown>[]> {
    const { Item } = await this.call('reading the target list', () => this.doc.send(new GetCommand({ TableName: this.table, Key: { [RELEASE_TABLE.partitionKey]: TARGET_LIST }, ConsistentRead: true })));
    const names = Item?.names instanceof Set ? [...(Item.names as Set<string>)] : [];
    return this.readMany(names.sort().map((name) => ({ [RELEASE_TABLE.partitionKey]: `${TARGET_PREFIX}${name}` })));
  }

  async targetSummaries(): Promise<TargetSummary[]> {
    return (await this.targetItems())
      .filter((item) => item.format === TARGET_SUMMARY_FORMAT && typeof item.summaryTarget === 'string')
      .map((item): TargetSummary => ({ format: TARGET_SUMMARY_FORMAT, target: item.summaryTarget as string, updatedAt: String(item.updatedAt), ...(item.current ? { current: item.current as TargetSummary['current'] } : {}), ...(item.lastFailure ? { lastFailure: item.lastFailure as TargetSummary['lastFailure'] } : {}) }))
      .sort((a, b) => a.target.localeCompare(b.target));
  }

  /**
   * The releases not yet final, by key: each target's releases in flight, then their records. Unlike
   * unfinished() (the worker's, from the sparse index), its cost does not depend on the index at all.
   */
  async openReleases(): Promise<ReleaseRecord[]> {
    const ids = (await this.targetItems()).flatMap((item) => (item.inFlight instanceof Set ? [...(item.inFlight as Set<string>)] : []));
    const now = this.clock();
    const records: ReleaseRecord[] = [];
    for (const item of await this.readMany(ids.map((id) => releaseKey(id)))) {
      if (this.expired(item, now)) continue;
      try {
        const record = this.decode(String(item.releaseId), item);
        if (!isFinal(record.status)) records.push(record);
      } catch (error) {
        if (!(error instanceof DamagedRecordError)) throw error;
      }
    }
    return records.sort((a, b) => a.acceptedAt.localeCompare(b.acceptedAt) || a.releaseId.localeCompare(b.releaseId));
  }

  async recent(target: string, limit: number): Promise<ReleaseRecord[]> {
    const records: ReleaseRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.call(`listing the releases of ${target}`, () =>
        this.doc.send(
          new QueryCommand({
            TableName: this.table,
            IndexName: RELEASE_TABLE.targetIndex,
            KeyConditionExpression: '#key = :value',
            ExpressionAttributeNames: { '#key': 'target' },
            ExpressionAttributeValues: { ':value': target },
            ScanIndexForward: false,
            Limit: limit - records.length,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        ),
      );
      const keys = (page.Items ?? []).map((item) => ({ [RELEASE_TABLE.partitionKey]: item[RELEASE_TABLE.partitionKey] }));
      const now = this.clock();
      for (const item of await this.readMany(keys)) {
        if (item.target !== target || this.expired(item, now)) continue;
        records.push(this.decode(String(item.releaseId), item));
      }
      start = page.LastEvaluatedKey;
    } while (start && records.length < limit);
    // BatchGetItem answers in any order.
    return records.sort((a, b) => b.request.createdAt.localeCompare(a.request.createdAt) || b.releaseId.localeCompare(a.releaseId));
  }

  renewLease(lease: TargetLease, ttlMs: number): Promise<TargetLease> {
    return this.leases.renew(lease, ttlMs);
  }

  releaseLease(lease: TargetLease): Promise<void> {
    return this.leases.release(lease);
  }

  control(target: string): Promise<TargetControl> {
    return this.controls.read(target);
  }

  updateControl(target: string, change: ControlChange): Promise<TargetControl> {
    return this.controls.update(target, change);
  }
}
