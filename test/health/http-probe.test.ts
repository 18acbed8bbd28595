import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { probeHttp } from '../../src/health/http-probe.js';
import { startSilentServer, type SilentServer } from '../support/silent-server.js';

// The bastion's health probe against loopback servers: one that answers, and one that accepts the
// connection and never answers. The probe's deadline is shown by the test's own timeout: a probe
// without one would wait for ever and fail the test by timing out.

describe('the HTTP health probe', () => {
  let silent: SilentServer;
  let answering: Server;
  let port: number;
  before(async () => {
    silent = await startSilentServer();
    answering = createServer((request, response) => {
      response.writeHead(request.url === '/health' ? 200 : 503).end(request.url === '/health' ? 'ok: ready' : 'starting');
    });
    await new Promise<void>((resolve) => answering.listen(0, '127.0.0.1', resolve));
    port = (answering.address() as AddressInfo).port;
    // fetch loads its HTTP client on first use: done here, so no probe's deadline is spent on it.
    await probeHttp('127.0.0.1', { port, path: '/health', expectStatus: 200 }, 30_000);
  });
  after(async () => {
    await silent.stop();
    answering.closeAllConnections();
    await new Promise<void>((resolve) => answering.close(() => resolve()));
  });

  it('says not healthy, with no answer as the reason, when the server accepts and never answers', { timeout: 5_000 }, async () => {
    const result = await probeHttp('127.0.0.1', { port: silent.port, path: '/health', expectStatus: 200 }, 1_000);
    assert.equal(result.ok, false);
    assert.match((result as { reason: string }).reason, new RegExp(`^http://127\\.0\\.0\\.1:${silent.port}/health: .*(timeout|aborted)`, 'i'));
    assert.ok(silent.received() > 0, 'the request was sent');
  });

  it('says healthy when the expected status and body come back, and not healthy otherwise', { timeout: 5_000 }, async () => {
    assert.deepEqual(await probeHttp('127.0.0.1', { port, path: '/health', expectStatus: 200, expectBodyContains: 'ready' }), { ok: true });
    assert.deepEqual(await probeHttp('127.0.0.1', { port, path: '/health', expectStatus: 200, expectBodyContains: 'live' }), {
      ok: false,
      reason: `http://127.0.0.1:${port}/health answered without 'live'`,
    });
    assert.deepEqual(await probeHttp('127.0.0.1', { port, path: '/other', expectStatus: 200 }), { ok: false, reason: `http://127.0.0.1:${port}/other answered 503, expected 200` });
  });
});
