import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withRetry } from '../../src/aws/transient.js';
import { LeaseLostError } from '../../src/state/release-store.js';
import { leaseTiming } from '../../src/worker/lease-timing.js';

// How a lease is kept, as numbers, and how an AWS call under it behaves at its limits.

describe('lease timing', () => {
  it('gives a lease up early enough that an AWS call attempt sent just before ends within the lease, after several renewals were tried', () => {
    for (const leaseMs of [3_000, 6_000, 30_000, 600_000]) {
      const { renewEveryMs, callMs, holdMs } = leaseTiming(leaseMs);
      assert.ok(holdMs + callMs <= leaseMs, `${leaseMs}: no call outlives the lease`);
      assert.ok(holdMs >= 3 * renewEveryMs, `${leaseMs}: at least three renewals are tried before giving up`);
      assert.ok(callMs > 0);
    }
  });
});

describe('an AWS call under a CallLimit', () => {
  /** A call that answers only on its `answerOn`-th attempt and otherwise hangs until its signal aborts. */
  const hanging = (answerOn: number) => {
    let attempts = 0;
    const call = (signal?: AbortSignal) => {
      attempts += 1;
      if (attempts === answerOn) return Promise.resolve('answered');
      return new Promise<string>((_, reject) => signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })), { once: true }));
    };
    return { call, attempts: () => attempts };
  };

  it('abandons an attempt past its deadline and tries again', async () => {
    const { call, attempts } = hanging(2);
    const result = await withRetry(call, { what: 'a call', minTimeoutMs: 1, maxTimeoutMs: 1, limit: { signal: new AbortController().signal, attemptMs: 50 } });
    assert.equal(result, 'answered');
    assert.equal(attempts(), 2);
  });

  it('ends with the lease\'s reason, and makes no attempt, once the limit is aborted', async () => {
    const lost = new AbortController();
    lost.abort(new LeaseLostError('data/ingest/staging', 'it could not be renewed in time'));
    const { call, attempts } = hanging(1);
    await assert.rejects(withRetry(call, { what: 'a call', limit: { signal: lost.signal, attemptMs: 50 } }), LeaseLostError);
    assert.equal(attempts(), 0);
  });
});
