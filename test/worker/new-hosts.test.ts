import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReleaseConfig } from '../../src/config/worker-config.js';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { newReleaseRecord, type ReleaseRecord } from '../../src/state/release-record.js';
import { releaseNewHosts, uncovered } from '../../src/worker/new-hosts.js';
import { validRequest } from '../support/requests.js';
import { capturingLogger } from '../support/worker-fixtures.js';
import { signedRecord } from '../support/signed-records.js';

// Hosts that join a target between releases: which instances no release of the current image
// covered, and the release of that image claimed for them alone (once per instance and image).

const TARGET = 'data/ingest/staging';
const instance = (n: number) => ({ instanceId: `i-${n}`, address: `10.0.0.${n}` });

function released(image: string, hosts: number[], status: ReleaseRecord['status'] = 'succeeded', createdAt = '2026-12-01T10:00:00.000Z'): ReleaseRecord {
  const request = { ...(validRequest({ image }) as unknown as ReleaseRequest), createdAt };
  const record = signedRecord({ request, target: TARGET, deployment: 'staging', now: new Date(createdAt), worker: 'w' });
  return { ...record, status, hosts: Object.fromEntries(hosts.map((n) => [`i-${n}`, { instanceId: `i-${n}`, address: `10.0.0.${n}`, before: { registeredIn: [], live: null }, progress: 'released' as const }])) };
}

describe('hosts that join a target between releases', () => {
  it('are the running instances no release of the current image covered; none while a release is open or before any succeeded', () => {
    const current = released('reg/app:v2', [1, 2, 3]);
    assert.deepEqual(uncovered([instance(1), instance(2), instance(3), instance(4)], [current])?.instances, ['i-4']);
    assert.equal(uncovered([instance(1), instance(2), instance(3)], [current]), undefined, 'every host covered');
    assert.equal(uncovered([instance(4)], [released('reg/app:v3', [1], 'running', '2026-12-01T11:00:00.000Z'), current]), undefined, 'a release is under way');
    assert.equal(uncovered([instance(4)], [released('reg/app:v2', [1], 'rolled-back')]), undefined, 'no succeeded release');
    // A release for new hosts (any outcome) covers its instances: one try per instance and image.
    const tried = { ...released('reg/app:v2', [], 'failed', '2026-12-01T12:00:00.000Z'), newHosts: { of: current.releaseId, instances: ['i-4'] } };
    assert.equal(uncovered([instance(1), instance(2), instance(3), instance(4)], [tried, current]), undefined);
    assert.deepEqual(uncovered([instance(1), instance(4), instance(5)], [tried, current])?.instances, ['i-5']);
  });

  it('claims a release of the current image, with its request, for the new instances alone', async () => {
    const store = new MemoryReleaseStore();
    const current = released('reg/app:v2', [1, 2]);
    await store.claim(current);
    const { logger } = capturingLogger();
    let claimedCalls = 0;
    const releases = [{ stack: 'data', release: 'ingest', deployments: ['staging'], rollout: { newHosts: { periodSeconds: 60 } } }] as unknown as ReleaseConfig[];
    const finder = { find: async () => [instance(1), instance(2), instance(7)] };
    const [claimed] = await releaseNewHosts({ store, finder, releases, logger, workerId: 'w', onClaimed: () => void (claimedCalls += 1) });
    assert.ok(claimed);
    assert.deepEqual(claimed.newHosts, { of: current.releaseId, instances: ['i-7'] });
    assert.equal(claimed.request.image, 'reg/app:v2');
    assert.notEqual(claimed.releaseId, current.releaseId);
    assert.equal(claimed.status, 'accepted');
    assert.equal(claimedCalls, 1);
    // Looked at again while it is open: nothing more.
    assert.deepEqual(await releaseNewHosts({ store, finder, releases, logger, workerId: 'w', onClaimed: () => undefined }), []);
  });
});
