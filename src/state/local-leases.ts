import { LeaseLostError, type TargetLease } from './release-store.js';

// Target leases held in this process, for the stores that serve one worker (files on the bastion,
// memory): the same rules as the DynamoDB leases (free, expired or mine to take; a token bumped on
// every taking; writes fenced by it), so the worker runs one code path whatever the store.

export class LocalLeases {
  private readonly leases = new Map<string, TargetLease>();
  private readonly tokens = new Map<string, number>();
  /** Set once this process may hold no lease any more (its state directory was taken over). */
  private revoked: string | undefined;

  constructor(private readonly clock: () => number = Date.now) {}

  acquire(target: string, owner: string, ttlMs: number): TargetLease | undefined {
    if (this.revoked) return undefined;
    const now = this.clock();
    const held = this.leases.get(target);
    if (held && held.owner !== owner && held.expiresAt > now) return undefined;
    const token = held && held.owner === owner && held.expiresAt > now ? held.token : (this.tokens.get(target) ?? 0) + 1;
    this.tokens.set(target, token);
    const lease = { target, owner, token, expiresAt: now + ttlMs };
    this.leases.set(target, lease);
    return lease;
  }

  /** The lease as the holder knows it is still current: same owner and token, not expired. */
  check(lease: TargetLease): void {
    if (this.revoked) throw new LeaseLostError(lease.target, this.revoked);
    const held = this.leases.get(lease.target);
    if (!held || held.owner !== lease.owner || held.token !== lease.token) throw new LeaseLostError(lease.target, 'another worker holds it now');
    if (held.expiresAt <= this.clock()) throw new LeaseLostError(lease.target, 'it expired before it was renewed');
  }

  renew(lease: TargetLease, ttlMs: number): TargetLease {
    this.check(lease);
    const renewed = { ...lease, expiresAt: this.clock() + ttlMs };
    this.leases.set(lease.target, renewed);
    return renewed;
  }

  /** Every lease held here is lost from now on, and none is given out again. */
  revokeAll(reason: string): void {
    this.revoked ??= reason;
    this.leases.clear();
  }

  release(lease: TargetLease): void {
    const held = this.leases.get(lease.target);
    if (held && held.owner === lease.owner && held.token === lease.token) this.leases.delete(lease.target);
  }
}
