import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ReleaseRecord } from './release-record.js';
import { LeaseLostError, type TargetLease } from './release-store.js';
import { RELEASE_TABLE } from './dynamodb-release-table.js';
import { LeaseWatch } from './lease-watch.js';

// Target leases in the release table (one `lease#<target>` item per target), for the DynamoDB store.
//
// - Taking: read, decide, then a write conditional on the item being exactly as read (same token and
//   revision). Free, given up (expiry 0) or this owner's: taken at once. Another owner's: taken only
//   once this worker has seen it unchanged for a full lease period (the period its holder
//   asked for) on its own monotonic clock (lease-watch.ts): its expiry, written by the other worker's clock, is never compared with ours.
// - Every write to the item bumps its `revision`: a renewal, a release, the newest release started.
// - The token grows by one at every taking, and the item is never deleted (releasing sets expiry 0),
//   so a token is never handed out twice for a target.
// - Newest wins (release-scheduler.ts): the item keeps `newestCreatedAt` and `newestReleaseId`, the
//   newest release that started on the target, written by the fenced save of that release (below) in
//   the same transaction as its record. The scheduler reads it with the lease, consistently, so a
//   by-target index that lags cannot let an older request start after a newer one.

/** Conditional-write rounds in acquire before it concludes another worker is taking the lease. */
const LEASE_ROUNDS = 5;
const LEASE_PREFIX = 'lease#';

interface LeaseItem {
  pk: string;
  kind: 'lease';
  leaseTarget: string;
  owner: string;
  token: number;
  leaseExpiresAt: number;
  /** The lease period its holder asked for. */
  leaseMs?: number;
  /** Bumped by every write to the item (absent on items written before it existed: read as 0). */
  revision?: number;
  newestCreatedAt?: string;
  newestReleaseId?: string;
}

export const leasePk = (target: string) => `${LEASE_PREFIX}${target}`;
const leaseKey = (target: string) => ({ [RELEASE_TABLE.partitionKey]: leasePk(target) });

const NAMES = { '#owner': 'owner', '#token': 'token', '#expires': 'leaseExpiresAt', '#rev': 'revision' };
const BUMP = '#rev = if_not_exists(#rev, :zero) + :one';

/** Whether a save of `record` under `lease` records it as the target's newest started release. */
export function startsNewest(record: ReleaseRecord, lease: TargetLease): boolean {
  if (record.status === 'accepted' || record.status === 'refused' || record.status === 'superseded') return false;
  if (!record.request.createdAt) return false;
  const newest = lease.newest;
  if (!newest) return true;
  const mine = record.request.createdAt;
  return mine > newest.createdAt || (mine === newest.createdAt && record.releaseId >= newest.releaseId);
}

export interface LeaseIo {
  readonly doc: DynamoDBDocumentClient;
  readonly table: string;
  readonly clock: () => number;
  /** A call retried on transient errors. */
  call<T>(what: string, work: () => Promise<T>): Promise<T>;
  /** A conditional write: false when its condition failed. */
  conditional(what: string, work: () => Promise<unknown>): Promise<boolean>;
}

export class DynamoLeases {
  constructor(
    private readonly io: LeaseIo,
    private readonly watch = new LeaseWatch(),
  ) {}

  private async read(target: string): Promise<LeaseItem | undefined> {
    const { io } = this;
    const { Item } = await io.call(`reading the lease on ${target}`, () => io.doc.send(new GetCommand({ TableName: io.table, Key: leaseKey(target), ConsistentRead: true })));
    return Item as LeaseItem | undefined;
  }

  private leaseOf(item: LeaseItem, expiresAt: number): TargetLease {
    const newest = item.newestCreatedAt && item.newestReleaseId ? { newest: { releaseId: item.newestReleaseId, createdAt: item.newestCreatedAt } } : {};
    return { target: item.leaseTarget, owner: item.owner, token: item.token, expiresAt, ...newest };
  }

  async acquire(target: string, owner: string, ttlMs: number): Promise<TargetLease | undefined> {
    const { io } = this;
    for (let round = 0; round < LEASE_ROUNDS; round++) {
      const held = await this.read(target);
      const now = io.clock();
      const expiresAt = now + ttlMs;
      if (held && held.owner === owner && held.leaseExpiresAt > now) {
        // Already this owner's (by its own clock): renewed, same token.
        const renewed = await io.conditional(`renewing the lease on ${target}`, () => this.writeExpiry(target, held, expiresAt, ttlMs, now));
        if (renewed) return this.leaseOf(held, expiresAt);
        continue;
      }
      const others = held !== undefined && held.owner !== owner && held.leaseExpiresAt !== 0;
      if (others && !this.watch.unchangedFor(target, { owner: held.owner, token: held.token, revision: held.revision ?? 0 }, held.leaseMs ?? ttlMs)) return undefined;
      // Free, given up, this owner's and expired, or another's unchanged for a full lease period:
      // taken with the next token, only if nobody wrote the item since it was read.
      const item: LeaseItem = {
        ...(held ?? {}),
        pk: leasePk(target),
        kind: 'lease',
        leaseTarget: target,
        owner,
        token: (held?.token ?? 0) + 1,
        leaseExpiresAt: expiresAt,
        leaseMs: ttlMs,
        revision: (held?.revision ?? 0) + 1,
      };
      const taken = await io.conditional(`taking the lease on ${target}`, () =>
        io.doc.send(
          new PutCommand({
            TableName: io.table,
            Item: item,
            ...(held
              ? {
                  ConditionExpression: held.revision === undefined ? '#token = :seen AND attribute_not_exists(#rev)' : '#token = :seen AND #rev = :rev',
                  ExpressionAttributeNames: { '#token': 'token', '#rev': 'revision' },
                  ExpressionAttributeValues: { ':seen': held.token, ...(held.revision === undefined ? {} : { ':rev': held.revision }) },
                }
              : { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': RELEASE_TABLE.partitionKey } }),
          }),
        ),
      );
      if (taken) {
        this.watch.forget(target);
        return this.leaseOf(item, expiresAt);
      }
      // Someone wrote it between the read and the write (or an earlier attempt of ours did): read again.
    }
    return undefined;
  }

  private writeExpiry(target: string, lease: { owner: string; token: number }, expiresAt: number, ttlMs: number, now: number) {
    const { io } = this;
    return io.doc.send(
      new UpdateCommand({
        TableName: io.table,
        Key: leaseKey(target),
        UpdateExpression: `SET #expires = :expires, #ms = :ms, ${BUMP}`,
        ConditionExpression: '#owner = :owner AND #token = :token AND #expires > :now',
        ExpressionAttributeNames: { ...NAMES, '#ms': 'leaseMs' },
        ExpressionAttributeValues: { ':owner': lease.owner, ':token': lease.token, ':now': now, ':expires': expiresAt, ':ms': ttlMs, ':zero': 0, ':one': 1 },
      }),
    );
  }

  async whyLost(lease: TargetLease): Promise<string> {
    const held = await this.read(lease.target);
    if (!held) return 'the lease is not in the table';
    if (held.owner !== lease.owner || held.token !== lease.token) return `${held.owner} holds it now (token ${held.token}, ours was ${lease.token})`;
    if (held.leaseExpiresAt === 0) return 'it was released';
    return 'it expired before it was renewed';
  }

  async renew(lease: TargetLease, ttlMs: number): Promise<TargetLease> {
    const now = this.io.clock();
    const expiresAt = now + ttlMs;
    // A retry after a lost answer passes again (same owner and token, and now unexpired).
    const renewed = await this.io.conditional(`renewing the lease on ${lease.target}`, () => this.writeExpiry(lease.target, lease, expiresAt, ttlMs, now));
    if (!renewed) throw new LeaseLostError(lease.target, await this.whyLost(lease));
    return { ...lease, expiresAt };
  }

  async release(lease: TargetLease): Promise<void> {
    const { io } = this;
    // Expiry 0 rather than deleted, so the next taking still counts on from this token. Only the holder's
    // own token releases it: a stale release never frees another owner's lease.
    await io.conditional(`releasing the lease on ${lease.target}`, () =>
      io.doc.send(
        new UpdateCommand({
          TableName: io.table,
          Key: leaseKey(lease.target),
          UpdateExpression: `SET #expires = :zero, ${BUMP}`,
          ConditionExpression: '#owner = :owner AND #token = :token',
          ExpressionAttributeNames: NAMES,
          ExpressionAttributeValues: { ':owner': lease.owner, ':token': lease.token, ':zero': 0, ':one': 1 },
        }),
      ),
    );
  }

  /**
   * The lease item's part of a fenced save's transaction: a check that the lease is still the
   * holder's (same owner and token, unexpired by the writer's clock), or, for a save that makes the
   * release the target's newest started one (startsNewest), an update recording it under that same
   * condition. The store puts it in its transaction as a ConditionCheck or an Update item.
   */
  fence(lease: TargetLease, now: number, record: ReleaseRecord) {
    const check = {
      TableName: this.io.table,
      Key: leaseKey(lease.target),
      ConditionExpression: '#owner = :owner AND #token = :token AND #expires > :now',
    };
    const values = { ':owner': lease.owner, ':token': lease.token, ':now': now };
    if (!startsNewest(record, lease)) {
      return { check: { ...check, ExpressionAttributeNames: { '#owner': 'owner', '#token': 'token', '#expires': 'leaseExpiresAt' }, ExpressionAttributeValues: values } };
    }
    return {
      update: {
        ...check,
        UpdateExpression: `SET #newestAt = :newestAt, #newestId = :newestId, ${BUMP}`,
        ExpressionAttributeNames: { ...NAMES, '#newestAt': 'newestCreatedAt', '#newestId': 'newestReleaseId' },
        ExpressionAttributeValues: { ...values, ':newestAt': record.request.createdAt, ':newestId': record.releaseId, ':zero': 0, ':one': 1 },
      },
    };
  }
}
