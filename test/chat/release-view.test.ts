import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as say from '../../src/chat/release-messages.js';
import { apply, headline, viewBlocks, viewOf } from '../../src/chat/release-view.js';
import { storedRelease } from '../support/signal-release.js';

// The one message of a release: built from its record, moved by the events of the messages posted
// about it, every outside text escaped.

const TARGET = 'data/ingest/staging';
const IMAGE = 'registry.example.com:5000/data/ingest:v2';

describe('release view', () => {
  it('follows a release: started, hosts k of n, the step, the outcome', async () => {
    const { release } = await storedRelease();
    const view = viewOf(release.record);
    assert.equal(view.step, 'preparing');
    apply(view, say.releaseStarted({ target: TARGET, image: IMAGE, requestedBy: 'ci-bot', hosts: ['h1', 'h2'], releaseId: release.releaseId }));
    assert.equal(headline(view), ':arrows_counterclockwise: Releasing ingest:v2 to data/ingest/staging: 0 of 2 hosts');
    apply(view, say.hostProgress({ target: TARGET, host: 'h1', index: 1, total: 2, durationMs: 1, outOfServiceMs: 1 }));
    assert.deepEqual([view.done, view.total, view.step], [1, 2, 'h1 released']);
    apply(view, say.releaseFailed({ target: TARGET, image: IMAGE, host: 'h2', step: 'health check', reason: 'unhealthy', rolledBack: ['h2'] }));
    assert.equal(view.outcome, 'rolled-back');
    assert.equal(view.step, 'failed at health check on h2');
    assert.equal(headline(view), ':x: Release of ingest:v2 to data/ingest/staging failed');
    assert.match(view.latest, /^Release of ingest:v2 to data\/ingest\/staging failed on h2/);
  });

  it('escapes what came from the request, so it cannot mention @channel or post links', async () => {
    const { release } = await storedRelease({ requestedBy: '<!channel> @here <http://evil|x>' });
    const text = JSON.stringify(viewBlocks(viewOf(release.record)));
    assert.ok(!text.includes('<!channel>'));
    assert.ok(!text.includes('<http://evil'));
    assert.match(text, /&lt;!channel&gt; @\u200Bhere/);
  });

  it('counts the hosts of a release taken up again from its record', async () => {
    const { release } = await storedRelease();
    await release.update((draft) => {
      draft.status = 'running';
      const host = (id: string, progress: 'released' | 'pending' | 'gone') => ({ instanceId: id, address: id, before: { registeredIn: [], live: null }, progress });
      draft.hosts = { a: host('a', 'released'), b: host('b', 'pending'), c: host('c', 'gone') };
    });
    const view = viewOf(release.record);
    assert.deepEqual([view.done, view.total, view.step], [1, 2, 'rolling out']);
  });
});
