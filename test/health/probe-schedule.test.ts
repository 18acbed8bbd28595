import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FAST_PROBE_MS, FAST_PROBE_WINDOW_MS, probeDelay } from '../../src/health/probe-schedule.js';

describe('the probe schedule of a host out of service', () => {
  it('probes every 25 ms for the first two seconds', () => {
    assert.equal(FAST_PROBE_MS, 25);
    for (const elapsed of [0, 500, FAST_PROBE_WINDOW_MS - 1]) assert.equal(probeDelay(elapsed, 500), 25);
  });

  it('then backs off, doubling, up to the configured interval and never past it', () => {
    const delays = [2_000, 4_000, 6_000, 8_000, 10_000, 60_000].map((elapsed) => probeDelay(elapsed, 500));
    assert.deepEqual(delays, [50, 100, 200, 400, 500, 500]);
  });

  it('never waits longer than an interval shorter than the fast pace', () => {
    assert.equal(probeDelay(0, 10), 10);
  });
});
