import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { RecordedRelease } from '../../src/state/recorded-release.js';
import { newReleaseRecord } from '../../src/state/release-record.js';
import { LeaseLostError } from '../../src/state/release-store.js';
import { validRequest } from '../support/requests.js';

// The running release's handle on its record stops writing the moment this worker gives its lease up,
// even while the store would still take a write under it.

describe('a recorded release under a lease', () => {
  it('refuses every write once the lease is given up by this worker, and the record stays as last written', async () => {
    const store = new MemoryReleaseStore();
    const request = validRequest() as unknown as ReleaseRequest;
    const { record } = await store.claim(newReleaseRecord({ request, keyId: 'ci-test', target: 'data/ingest/staging', deployment: 'staging', now: new Date(), worker: 'w' }));
    const lease = await store.acquireLease('data/ingest/staging', 'w', 30_000);
    assert.ok(lease);
    const lost = new AbortController();
    const release = new RecordedRelease(store, record, { lease, leaseLost: lost.signal });
    await release.update((draft) => void (draft.status = 'running'));

    lost.abort(new LeaseLostError('data/ingest/staging', 'it could not be renewed before it ran out'));
    await assert.rejects(
      release.update((draft) => void (draft.status = 'succeeded')),
      (error: unknown) => error instanceof LeaseLostError && /lost the lease on data\/ingest\/staging: it could not be renewed/.test(error.message),
    );
    assert.equal((await store.get(record.releaseId))?.status, 'running', 'the store would still have taken it: the lease has not expired there');
  });
});
