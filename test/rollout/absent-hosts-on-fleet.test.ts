import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Fleet } from '../../local-fleet/fleet.js';
import { assertSampledSafe, assertStagingWhole, at, releaseOnFleet } from '../support/fleet-engine.js';
import { answer } from '../support/fleet-observer.js';
import type { FleetObserver } from '../support/fleet-observer.js';
import { fleetForSuite } from '../support/fleet-suite.js';

// A host that is slow or briefly absent is waited for within policy.hostRetrySeconds, never failed on
// the spot: an engine stopped while another host rolls and started again, one stopped for longer than
// the window, and a deploy user whose login shell takes longer than a connection's deadline (the
// worker never runs the shell: the engine socket is reached over a forward).

describe('hosts that are slow or briefly absent, on the local fleet', () => {
  const suite = fleetForSuite({ hosts: 4, freshEachTest: true });
  let fleet: Fleet;
  let observer: FleetObserver;
  before(() => {
    ({ fleet, observer } = suite);
  });

  const waitedFor = (texts: string[], host: string) => texts.some((t) => new RegExp(`^data/ingest/staging: ${host} does not answer for now at .*; trying again for up to `).test(t));

  it("waits for a host whose engine is stopped while another host rolls and started again within hostRetrySeconds, and releases every host", async () => {
    // h2 is registered while its engine is down: the test's doing, excused until it serves again.
    const excused = new Set<string>();
    const h2 = fleet.hosts[1]!;
    const run = await releaseOnFleet(fleet, 'v2', {
      policy: { hostRetrySeconds: 60 },
      sample: { observer, excused },
      journal: at('h1', 'deregister', 'begin', async () => {
        excused.add('h2');
        await fleet.faults.stopDocker('h2');
        setTimeout(async () => {
          await fleet.faults.startDocker('h2');
          while ((await answer(`http://${h2.address}:8080/health`)).startsWith('unreachable')) await new Promise((r) => setTimeout(r, 100));
          excused.delete('h2');
        }, 15_000);
      }),
    });
    assert.deepEqual(run.outcome, { status: 'succeeded', hosts: 3 }, run.texts.join('\n'));
    assertSampledSafe(run.sampled);
    await assertStagingWhole(observer, { h1: 'v2', h2: 'v2', h3: 'v2' });
    assert.ok(waitedFor(run.texts, 'h2'), run.texts.join('\n'));
    assert.match(run.texts.at(-1)!, /^Released ingest:v2 to data\/ingest\/staging: 3 hosts/);
  });

  it('ends the release naming a host whose engine stays stopped past hostRetrySeconds, after saying it waited for it', async () => {
    let stoppedAt = 0;
    const run = await releaseOnFleet(fleet, 'v2', {
      policy: { hostRetrySeconds: 10 },
      sample: { observer, excused: new Set(['h2']) },
      journal: at('h1', 'deregister', 'begin', async () => {
        await fleet.faults.stopDocker('h2');
        stoppedAt = Date.now();
      }),
    });
    const waitedMs = Date.now() - stoppedAt;
    await fleet.faults.startDocker('h2');
    assert.notEqual(run.outcome.status, 'succeeded');
    assert.match((run.outcome as { reason: string }).reason, /^h2: .*(engine|unreachable)/);
    assert.ok(waitedMs >= 10_000, `waited ${waitedMs} ms before giving up on h2`);
    assertSampledSafe(run.sampled);
    assert.ok(waitedFor(run.texts, 'h2'), run.texts.join('\n'));
    assert.ok(run.texts.some((t) => /h2/.test(t) && /failed|did not/.test(t)), run.texts.join('\n'));
    // h2 never left service by the release's doing; its engine restarts its live container.
    await assertStagingWhole(observer, { h1: 'v2', h2: 'v1', h3: 'v1' });
  });

  it('releases hosts whose deploy user has a login shell slower than the connect deadline', async () => {
    const run = await releaseOnFleet(fleet, 'v2', { ssh: { user: fleet.ssh.slowLoginUser, connectTimeoutSeconds: 3 }, sample: { observer } });
    assert.deepEqual(run.outcome, { status: 'succeeded', hosts: 3 }, run.texts.join('\n'));
    assertSampledSafe(run.sampled);
    await assertStagingWhole(observer, { h1: 'v2', h2: 'v2', h3: 'v2' });
  });
});
