import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { Client } from 'ssh2';
import { DockerHostSession } from '../../src/host/docker-host-session.js';
import type { HostConnector, HostSession } from '../../src/host/host-session.js';
import { ReconnectingHostSession } from '../../src/host/reconnecting-session.js';
import { LeaseLostError } from '../../src/state/release-store.js';

// A host session under a lease: when the lease is given up, the Docker call in flight is abandoned
// (its request aborted) with the lease's reason, and no call is made after it. The SSH connection is
// stood in for by a client whose forwards to the engine never answer (a host that has gone quiet):
// without the lease's signal, the call would wait for its own deadline.

/** An ssh2 client stand-in: counts the forwards asked for and never answers them. */
function quietClient() {
  const client = new EventEmitter() as EventEmitter & { forwards: number; openssh_forwardOutStreamLocal: (path: string, callback: unknown) => void; end: () => void };
  client.forwards = 0;
  client.openssh_forwardOutStreamLocal = () => void (client.forwards += 1);
  client.end = () => undefined;
  return client;
}

const lost = () => new LeaseLostError('data/ingest/staging', 'it could not be renewed in time');

describe('a host session under a lease', () => {
  it('abandons the Docker call in flight when the lease is given up, and makes no call after', async () => {
    const client = quietClient();
    const session = new DockerHostSession('10.0.0.1', client as unknown as Client, { path: '/var/run/docker.sock', source: 'configured' }, undefined, { callMs: 20_000, pullMs: 60_000, pullStallMs: 20_000 });
    const lease = new AbortController();
    session.abortOn(lease.signal);
    const stopping = session.stop('ingest', 10);
    while (client.forwards === 0) await new Promise((resolve) => setImmediate(resolve));
    lease.abort(lost());
    await assert.rejects(stopping, LeaseLostError);
    await assert.rejects(session.start('ingest'), LeaseLostError);
    assert.equal(client.forwards, 1, 'no request after the lease was given up');
  });

  it('passes the lease on to every connection a reconnecting session opens, and opens none once it is given up', async () => {
    const opened: HostSession[] = [];
    const seen: AbortSignal[] = [];
    const connector: HostConnector = {
      async connect(address) {
        const session = { address, abortOn: (signal: AbortSignal) => void seen.push(signal), close: async () => undefined, ping: async () => ({ engineId: 'e' }) } as unknown as HostSession;
        opened.push(session);
        return session;
      },
    };
    const session = new ReconnectingHostSession('10.0.0.1', undefined, connector, { attempts: 1 });
    const lease = new AbortController();
    session.abortOn(lease.signal);
    await session.ping();
    assert.deepEqual(seen, [lease.signal], 'the connection opened later has the lease');
    lease.abort(lost());
    await assert.rejects(session.ping(), LeaseLostError);
    assert.equal(opened.length, 1);
  });
});
