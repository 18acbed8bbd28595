import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LeaseWatch } from '../../src/state/lease-watch.js';

// The rule that lets a worker take another's lease without reading the other's clock: only a lease
// state seen unchanged for a full period on this worker's own monotonic clock is over.

describe('watching another worker\'s lease', () => {
  const state = { owner: 'worker-a', token: 3, revision: 7 };

  it('calls a lease over only once the same state has been seen for a full period', () => {
    let now = 1_000;
    const watch = new LeaseWatch(() => now);
    assert.equal(watch.unchangedFor('t', state, 30_000), false, 'first sighting');
    now += 29_999;
    assert.equal(watch.unchangedFor('t', state, 30_000), false, 'not yet a full period');
    now += 1;
    assert.equal(watch.unchangedFor('t', state, 30_000), true);
  });

  it('starts again when the holder renews (a new revision) or another worker takes it (a new token)', () => {
    let now = 0;
    const watch = new LeaseWatch(() => now);
    watch.unchangedFor('t', state, 10);
    now = 20;
    assert.equal(watch.unchangedFor('t', { ...state, revision: 8 }, 10), false, 'renewed: seen anew');
    now = 25;
    assert.equal(watch.unchangedFor('t', { ...state, revision: 8, token: 4, owner: 'worker-c' }, 10), false, 'taken by another: seen anew');
    now = 35;
    assert.equal(watch.unchangedFor('t', { ...state, revision: 8, token: 4, owner: 'worker-c' }, 10), true);
  });

  it('watches each target on its own, and forgets a target once told', () => {
    let now = 0;
    const watch = new LeaseWatch(() => now);
    watch.unchangedFor('t1', state, 10);
    now = 10;
    assert.equal(watch.unchangedFor('t2', state, 10), false, 't2 is seen for the first time');
    assert.equal(watch.unchangedFor('t1', state, 10), true);
    watch.forget('t1');
    assert.equal(watch.unchangedFor('t1', state, 10), false);
  });
});
