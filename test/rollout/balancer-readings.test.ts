import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LoadBalancerRef, Membership } from '../../src/loadbalancer/load-balancers.js';
import { awaitCallTaken, pollDelay, showsCall } from '../../src/rollout/balancer-readings.js';
import { SimulatedLoadBalancers } from '../support/simulated-fleet.js';

// Waiting out load balancer readings that lag a register or deregister call: polled with backoff
// (so that many hosts stay under the API's rate limits), bounded, and judged by what each call should change.

const WEB: LoadBalancerRef = { kind: 'classic', id: 'web' };

describe('load balancer readings after a call', () => {
  it('polls with a backoff that doubles from the first interval up to its cap, spread by at most a fifth', () => {
    const mid = () => 0.5;
    assert.deepEqual([1, 2, 3, 4, 5, 6, 12].map((attempt) => pollDelay(attempt, 500, 5_000, mid)), [500, 1_000, 2_000, 4_000, 5_000, 5_000, 5_000]);
    assert.equal(pollDelay(3, 500, 5_000, () => 0), 1_600);
    assert.equal(pollDelay(3, 500, 5_000, () => 1), 2_400);
  });

  it('reads a deregistration as taken once the host is draining or out, and a registration once it is registered', () => {
    const all: Membership[] = ['in-service', 'pending', 'unhealthy', 'draining', 'out'];
    assert.deepEqual(all.filter((m) => showsCall('deregister', m)), ['draining', 'out']);
    assert.deepEqual(all.filter((m) => showsCall('register', m)), ['in-service', 'pending', 'unhealthy']);
  });

  it('waits until the reading shows the call, reading again only after each pause', async () => {
    const lbs = new SimulatedLoadBalancers(['i-1']);
    lbs.afterDeregister = () => ['in-service', 'in-service', 'in-service', 'out'];
    await lbs.deregister(WEB, 'i-1');
    let readings = 0;
    const membership = lbs.membership.bind(lbs);
    lbs.membership = async (lb, id) => ((readings += 1), membership(lb, id));
    assert.deepEqual(await awaitCallTaken(lbs, [WEB], 'i-1', 'deregister', { firstMs: 1, maxMs: 4, timeoutMs: 60_000 }), ['out'], 'the reading that showed it');
    assert.equal(readings, 4, 'one reading per poll, until the fourth showed it');
  });

  it('gives up waiting past its bound, saying the call did not show, so that the reconciler decides again', async () => {
    const lbs = new SimulatedLoadBalancers(['i-1']);
    lbs.afterRegister = () => ['out'];
    await lbs.register(WEB, 'i-1');
    assert.equal(await awaitCallTaken(lbs, [WEB], 'i-1', 'register', { firstMs: 5, maxMs: 10, timeoutMs: 50 }), undefined);
  });
});
