import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import * as say from '../../src/chat/release-messages.js';
import { createDiscordChat } from '../../src/chat/discord-chat.js';
import { createLogger } from '../../src/log/logger.js';
import { storedRelease, whileRunning } from '../support/signal-release.js';

// The Discord chat against a loopback server that checks Discord's webhook contract: execute
// (POST /webhooks/{id}/{token}, with ?wait=true answering the message object, else 204), edit
// (PATCH /webhooks/{id}/{token}/messages/{message_id}, answering the message; 404 Unknown Message
// for one it did not send), content at most 2000 characters, at most 10 embeds with fields of
// name <= 256 and value <= 1024, and 429 {retry_after} with Retry-After when rate limited.

const ID = '112233';
const TOKEN = 'discord-webhook-token-abc';
const TARGET = 'data/ingest/staging';
const IMAGE = 'registry.example.com:5000/data/ingest:v2';

interface Sent { id: string; content: string; embeds: unknown[]; edits: number; allowedMentions: unknown }

describe('Discord chat', () => {
  let server: Server;
  let base: string;
  const messages: Sent[] = [];
  let rateLimitNext = 0;
  let calls = 0;
  let raw: string[];

  before(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        calls += 1;
        const json = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
          response.writeHead(status, { 'content-type': 'application/json', ...headers });
          response.end(body === undefined ? undefined : JSON.stringify(body));
        };
        if (rateLimitNext > 0) {
          rateLimitNext -= 1;
          return json(429, { message: 'You are being rate limited.', retry_after: 0, global: false }, { 'retry-after': '0' });
        }
        const url = new URL(request.url!, 'http://127.0.0.1');
        const match = /^\/api\/webhooks\/(\d+)\/([^/]+)(?:\/messages\/(\d+))?$/.exec(url.pathname);
        if (!match) return json(404, { message: '404: Not Found', code: 0 });
        if (match[1] !== ID || match[2] !== TOKEN) return json(401, { message: 'Invalid Webhook Token', code: 50027 });
        if (!String(request.headers['content-type']).startsWith('application/json')) return json(400, { message: 'Cannot send an empty message', code: 50006 });
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { content?: string; embeds?: Array<{ fields?: Array<{ name: string; value: string }> }>; allowed_mentions?: unknown };
        const valid = (body.content ?? '').length <= 2000 && (body.embeds ?? []).length <= 10 && (body.embeds ?? []).every((e) => (e.fields ?? []).length <= 25 && (e.fields ?? []).every((f) => f.name.length <= 256 && f.value.length <= 1024 && f.value.length > 0));
        if (!valid) return json(400, { message: 'Invalid Form Body', code: 50035 });
        const messageId = match[3];
        if (request.method === 'POST' && !messageId) {
          if (!body.content && !body.embeds?.length) return json(400, { message: 'Cannot send an empty message', code: 50006 });
          const sent: Sent = { id: String(900000 + messages.length), content: body.content ?? '', embeds: body.embeds ?? [], edits: 0, allowedMentions: body.allowed_mentions };
          messages.push(sent);
          if (url.searchParams.get('wait') !== 'true') return json(204);
          return json(200, { id: sent.id, type: 0, channel_id: '445566', webhook_id: ID, content: sent.content, embeds: sent.embeds });
        }
        if (request.method === 'PATCH' && messageId) {
          const sent = messages.find((m) => m.id === messageId);
          if (!sent) return json(404, { message: 'Unknown Message', code: 10008 });
          Object.assign(sent, { content: body.content ?? sent.content, embeds: body.embeds ?? sent.embeds, edits: sent.edits + 1 });
          return json(200, { id: sent.id, type: 0, channel_id: '445566', webhook_id: ID, content: sent.content, embeds: sent.embeds });
        }
        return json(405, { message: '405: Method Not Allowed', code: 0 });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/webhooks/${ID}/${TOKEN}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    messages.length = 0;
    rateLimitNext = 0;
    calls = 0;
    raw = [];
  });

  const chat = (url = base) =>
    createDiscordChat({ url, logger: createLogger({ level: 'debug' }, { write: (line: string) => void raw.push(line) }), minBackoffMs: 600_000, maxBackoffMs: 600_000 });

  it('edits its own message: executed with ?wait=true for its id, then PATCHed in place', async () => {
    const { release, store } = await storedRelease();
    const discord = chat();
    await whileRunning(release, discord, (c) => {
      c.post(say.releaseStarted({ target: TARGET, image: IMAGE, requestedBy: 'ci-bot', hosts: ['h1', 'h2'], releaseId: release.releaseId }));
      c.post(say.hostProgress({ target: TARGET, host: 'h1', index: 1, total: 2, durationMs: 1000, outOfServiceMs: 900 }));
      c.post(say.hostProgress({ target: TARGET, host: 'h2', index: 2, total: 2, durationMs: 1000, outOfServiceMs: 900 }));
      c.post(say.releaseSucceeded({ target: TARGET, image: IMAGE, hosts: ['h1', 'h2'], durationMs: 3000 }));
    });
    await discord.flush(5_000);
    assert.equal(messages.length, 1, 'one message for the release; host lines folded into it');
    assert.ok(messages[0]!.edits >= 1);
    assert.match(messages[0]!.content, /^Released ingest:v2 to data\/ingest\/staging: 2 hosts/);
    assert.match(JSON.stringify(messages[0]!.embeds), /"name":"Hosts","value":"2 of 2"/);
    assert.deepEqual(messages[0]!.allowedMentions, { parse: [] }, 'nothing from a request pings anyone');
    assert.deepEqual((await store.get(release.releaseId))!.chatMessage, { via: 'discord', id: messages[0]!.id });
  });

  it('sends a failure as a message of its own, and waits out a 429 by its retry_after', async () => {
    const { release } = await storedRelease();
    rateLimitNext = 1;
    const discord = chat();
    await whileRunning(release, discord, (c) => {
      c.post(say.releaseStarted({ target: TARGET, image: IMAGE, requestedBy: 'ci-bot', hosts: ['h1'], releaseId: release.releaseId }));
      c.post(say.releaseFailed({ target: TARGET, image: IMAGE, host: 'h1', step: 'health check', reason: 'a & b <c>', rolledBack: ['h1'] }));
    });
    await discord.flush(5_000);
    assert.equal(messages.length, 2);
    assert.match(messages[1]!.content, /failed on h1 at health check: a & b <c>/, "Slack's escapes undone for Discord");
    assert.equal(calls, 4, 'one 429, the post, the edit, the failure');
  });

  it('never logs the webhook token', async () => {
    const discord = chat(`http://127.0.0.1:${new URL(base).port}/api/webhooks/${ID}/wrong-token-xyz`);
    discord.post(say.needsAttention({ what: 'x', reason: 'y' }));
    await discord.flush(5_000);
    assert.ok(raw.some((line) => line.includes('Invalid Webhook Token')), 'the refusal is logged');
    assert.ok(!raw.some((line) => line.includes('wrong-token-xyz')), 'no token in the log');
  });
});
