import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { callJson } from '../../src/chat/json-call.js';

// One call to a JSON web API and what its answer means: done, worth another try (and after how long
// the server asked), or refused for good; never a secret in a reason.

describe('JSON API call', () => {
  let server: Server;
  let base: string;
  const answers = new Map<string, { status: number; body: string; headers?: Record<string, string> }>([
    ['/ok', { status: 201, body: '{"id":7}' }],
    ['/discord-429', { status: 429, body: '{"message":"You are being rate limited.","retry_after":1.5,"global":false}' }],
    ['/github-primary', { status: 403, body: '{"message":"API rate limit exceeded"}', headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 30) } }],
    ['/forbidden', { status: 403, body: '{"message":"Resource not accessible by integration (token secret-token-123)"}' }],
    ['/down', { status: 503, body: 'busy' }],
  ]);

  before(async () => {
    server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        const answer = answers.get(request.url!) ?? { status: 404, body: '{"message":"Not Found"}' };
        response.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end(answer.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const call = (path: string) => callJson({ method: 'POST', url: `${base}${path}`, body: {} }, { fetchImpl: fetch, timeoutMs: 5_000, secrets: ['secret-token-123'] });

  it('is done on a 2xx, with the answer parsed', async () => {
    assert.deepEqual(await call('/ok'), { kind: 'delivered', status: 201, body: { id: 7 } });
  });

  it("retries a Discord 429 after its body's retry_after, and a GitHub primary rate limit after x-ratelimit-reset", async () => {
    const discord = await call('/discord-429');
    assert.equal(discord.kind, 'retry');
    assert.equal(discord.kind === 'retry' && discord.retryAfterMs, 1500);
    const github = await call('/github-primary');
    assert.equal(github.kind, 'retry');
    assert.ok(github.kind === 'retry' && github.retryAfterMs !== undefined && github.retryAfterMs > 0);
  });

  it('retries a 5xx with its own backoff, drops any other 4xx, and scrubs secrets from the reason', async () => {
    assert.deepEqual(await call('/down'), { kind: 'retry', reason: 'HTTP 503: busy' });
    const forbidden = await call('/forbidden');
    assert.equal(forbidden.kind, 'drop');
    assert.ok(forbidden.kind === 'drop' && forbidden.reason.includes('[secret]') && !forbidden.reason.includes('secret-token-123'));
    assert.equal((await call('/missing')).kind, 'drop');
  });
});
