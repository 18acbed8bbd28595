import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import type { Rollout } from '../../src/rollout/rollout.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { newReleaseRecord } from '../../src/state/release-record.js';
import { createQueues, motoForSuite, sendRaw } from '../support/aws.js';
import { signed, validRequest } from '../support/requests.js';
import { capturingLogger, eventually, REGISTRY, withWorker, workerConfig } from '../support/worker-fixtures.js';
import { signedRecord } from '../support/signed-records.js';

// The repair at start never holds the queue back: an unfinished release whose end takes long (a
// restore that AWS keeps refusing, say) is carried on alongside the requests of other targets, and a
// stop request ends it.

const target = (deployment: string) => ({ stack: 'data', release: 'ingest', deployment });

describe('repair at start', () => {
  const suite = motoForSuite();

  it('runs alongside reading the queue: a request for another target is released while a repaired release is still under way, and stopping ends both', async () => {
    const queues = await createQueues(suite.sqs);
    const store = new MemoryReleaseStore();
    const stuck = validRequest({ target: target('production'), image: `${REGISTRY}/data/ingest:stuck` }) as unknown as ReleaseRequest;
    const { record } = await store.claim(signedRecord({ request: stuck, target: 'data/ingest/production', deployment: 'production', now: new Date(), worker: 'dead-worker' }));
    await store.save({ ...record, status: 'running', attempts: 1 });
    const handed: string[] = [];
    const rollout: Rollout = {
      async run(release, context) {
        handed.push(release.record.deployment);
        if (release.record.deployment !== 'production') return { status: 'succeeded', hosts: 1 };
        // The repaired release does not end until the worker is asked to stop.
        await new Promise((resolve) => context.stopRequested.addEventListener('abort', resolve, { once: true }));
        return { status: 'interrupted', reason: 'stopped on request with restores pending' };
      },
    };
    const config = workerConfig(suite.moto.endpoint, queues, {
      queue: { url: queues.url, deadLetterUrl: queues.deadLetterUrl, waitSeconds: 1, visibilityTimeoutSeconds: 30 },
      releases: [{ stack: 'data', release: 'ingest', deployments: ['production', 'qa'], images: { allowedRepositories: [`${REGISTRY}/data/ingest`] } }],
    });
    await withWorker(config, { rollout, logger: capturingLogger().logger, store }, async () => {
      await eventually('the repair to take the unfinished release up', () => handed.includes('production'), 10_000);
      await sendRaw(suite.sqs, queues.url, signed(validRequest({ target: target('qa'), image: `${REGISTRY}/data/ingest:v2` })));
      await eventually('the request for another target to be released meanwhile', async () => (await store.unfinished()).every((r) => r.deployment !== 'qa') && handed.includes('qa'), 15_000);
    });
    assert.deepEqual(handed, ['production', 'qa']);
    const [left] = await store.unfinished();
    assert.equal(left?.releaseId, record.releaseId, 'the stopped release stays unfinished, for the next start');
  });
});
