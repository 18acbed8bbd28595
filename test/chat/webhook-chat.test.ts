import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startChatServer, type ChatServer } from '../../local-fleet/chat-server.js';
import type { ChatMessage } from '../../src/chat/chat.js';
import { parseRetryAfter } from '../../src/chat/retry-after.js';
import { createWebhookChat, type WebhookChatOptions } from '../../src/chat/webhook-chat.js';
import { createLogger } from '../../src/log/logger.js';
import { startSilentServer } from '../support/silent-server.js';

// The webhook chat against the project's real loopback webhook server: order, the Slack payload,
// retries through an outage, Retry-After, refusals, the retry window, flush, and a URL that never
// reaches the log. Backoffs are shrunk through options so the whole file runs in a few seconds.

interface LogCapture {
  /** Raw pino output, line by line: what ops would read, so what a leaked URL would be in. */
  readonly raw: string[];
  records(): Array<Record<string, unknown>>;
}

function captureLogs(): { logger: ReturnType<typeof createLogger>; logs: LogCapture } {
  const raw: string[] = [];
  const logger = createLogger({ level: 'debug' }, { write: (line: string) => void raw.push(line) });
  return { logger, logs: { raw, records: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>) } };
}

function assertUrlNeverLogged(logs: LogCapture, url: string): void {
  const { pathname } = new URL(url);
  for (const line of logs.raw) {
    assert.ok(!line.includes(url), `log line contains the webhook URL: ${line}`);
    assert.ok(!line.includes(pathname), `log line contains the webhook path: ${line}`);
  }
}

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await sleep(5);
  }
}

const message = (text: string, extra: Partial<ChatMessage> = {}): ChatMessage => ({ text, ...extra });

describe('webhook chat', () => {
  let server: ChatServer;
  let capture: ReturnType<typeof captureLogs>;

  before(async () => {
    server = await startChatServer();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(() => {
    server.recover();
    server.clear();
    capture = captureLogs();
  });

  function chat(options: Partial<WebhookChatOptions> = {}) {
    return createWebhookChat({ url: server.url, logger: capture.logger, minBackoffMs: 20, maxBackoffMs: 100, ...options });
  }

  it('delivers messages in order with the Slack incoming-webhook payload, in Block Kit', async () => {
    const notifier = chat({ username: 'harbormaster' });
    notifier.post(message('first', { severity: 'success', fields: [{ title: 'Target', value: 'data/ingest/staging' }] }));
    for (let index = 2; index <= 20; index += 1) notifier.post(message(`message ${index}`));
    await notifier.flush(5_000);

    const received = server.messages();
    assert.deepEqual(
      received.map((entry) => entry.text),
      ['first', ...Array.from({ length: 19 }, (_, index) => `message ${index + 2}`)],
    );
    assert.deepEqual(received[0]!.body, {
      text: 'first',
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: ':white_check_mark: first' } },
        { type: 'section', fields: [{ type: 'mrkdwn', text: '*Target*\ndata/ingest/staging' }] },
      ],
      username: 'harbormaster',
    });
    assert.deepEqual(
      received[1]!.body,
      { text: 'message 2', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: ':information_source: message 2' } }], username: 'harbormaster' },
      'no empty fields section without fields',
    );
    assert.equal(received.some((entry) => 'attachments' in entry.body), false, 'no legacy attachments');
    assert.equal(server.attempts(), 20, 'one attempt per message');
    assertUrlNeverLogged(capture.logs, server.url);
  });

  it('returns at once while the webhook fails, and delivers everything, once, when it recovers', async () => {
    server.fail();
    const notifier = chat();
    const returned = ['started', 'host 1/2 done', 'host 2/2 done', 'succeeded'].map((text) => notifier.post(message(text)) as unknown);
    assert.deepEqual(returned, [undefined, undefined, undefined, undefined], 'post() hands back nothing to wait on');
    assert.equal(server.attempts(), 0, 'every post() returned before the webhook was tried');

    await waitFor(() => server.attempts() >= 4);
    assert.deepEqual(server.messages(), [], 'nothing accepted during the outage');
    server.recover();
    await notifier.flush(5_000);

    assert.deepEqual(
      server.messages().map((entry) => entry.text),
      ['started', 'host 1/2 done', 'host 2/2 done', 'succeeded'],
    );
    const warnings = capture.logs.records().filter((record) => record.msg === 'chat post failed, retrying');
    assert.ok(warnings.length >= 1);
    assert.equal(warnings[0]!.webhookHost, new URL(server.url).host, 'the host is logged, so ops know which webhook');
    assertUrlNeverLogged(capture.logs, server.url);
  });

  it('waits out a 429 for its Retry-After, not its own backoff', async () => {
    server.rateLimit(1);
    const notifier = chat();
    notifier.post(message('rate limited'));
    await waitFor(() => server.attempts() === 1, 2_000);
    // The 429 was answered at or before this instant: measuring from here can only under-estimate the wait.
    const rateLimitedAt = Date.now();
    server.recover();
    await notifier.flush(5_000);

    const [received] = server.messages();
    assert.ok(received, 'delivered after the wait');
    const waitedMs = received.receivedAt.getTime() - rateLimitedAt;
    assert.ok(waitedMs >= 900, `retried after ${waitedMs} ms, before Retry-After: 1 had passed`);
    assert.equal(server.attempts(), 2, 'exactly one retry');
    assertUrlNeverLogged(capture.logs, server.url);
  });

  it('drops a message the webhook refuses (400) with a warning, and delivers the ones after it', async () => {
    const notifier = chat();
    notifier.post(message('before'));
    // A text-less body is what the server (like Slack) answers 400 no_text to.
    notifier.post({ text: undefined as unknown as string });
    notifier.post(message('after'));
    await notifier.flush(5_000);

    assert.deepEqual(server.messages().map((entry) => entry.text), ['before', 'after']);
    assert.equal(server.attempts(), 3, 'a 400 is not retried');
    const dropped = capture.logs.records().find((record) => record.msg === 'chat message dropped: the webhook refused it');
    assert.ok(dropped, 'the drop is logged');
    assert.equal(dropped.level, 'warn');
    assert.match(String(dropped.reason), /HTTP 400: no_text/);
    assertUrlNeverLogged(capture.logs, server.url);
  });

  it('gives up on a message after its retry window, then keeps delivering new ones', async () => {
    server.fail();
    const notifier = chat({ retryWindowMs: 200 });
    notifier.post(message('too late'));
    await notifier.flush(3_000);
    assert.ok(
      capture.logs.records().some((record) => record.msg === 'chat message dropped: not delivered within its retry window' && record.level === 'warn'),
      'the drop is logged',
    );

    server.recover();
    notifier.post(message('on time'));
    await notifier.flush(3_000);
    assert.deepEqual(server.messages().map((entry) => entry.text), ['on time']);
    assertUrlNeverLogged(capture.logs, server.url);
  });

  it('flush resolves at once when idle, and at its timeout when the webhook stays down', { timeout: 10_000 }, async () => {
    const notifier = chat({ minBackoffMs: 50 });
    await notifier.flush(1);
    assert.ok(!capture.logs.records().some((record) => record.msg === 'chat flush timed out; messages still queued'), 'idle: nothing to time out on');

    server.fail();
    notifier.post(message('stuck'));
    await notifier.flush(150);
    // flush resolved by its own timer, with the message still queued.
    const timedOut = capture.logs.records().find((record) => record.msg === 'chat flush timed out; messages still queued');
    assert.deepEqual([timedOut?.queued, timedOut?.timeoutMs], [1, 150]);
    assert.deepEqual(server.messages(), []);

    server.recover();
    await notifier.flush(5_000);
    assert.deepEqual(server.messages().map((entry) => entry.text), ['stuck'], 'still delivered after the timed-out flush');
  });

  it('reports connection failures without the URL, and never throws to the caller', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const url = `http://127.0.0.1:${port}/services/T000/B000/very-secret-token`;

    const notifier = createWebhookChat({ url, logger: capture.logger, minBackoffMs: 20, retryWindowMs: 150 });
    assert.doesNotThrow(() => notifier.post(message('nobody listens')));
    await notifier.flush(3_000);
    const failure = capture.logs.records().find((record) => record.msg === 'chat post failed, retrying');
    assert.match(String(failure?.reason), /ECONNREFUSED/);
    for (const line of capture.logs.raw) assert.ok(!line.includes('very-secret-token'), `secret in log: ${line}`);
  });

  it('abandons a post to a webhook that accepts and never answers at its deadline, without holding the caller', { timeout: 8_000 }, async () => {
    const silent = await startSilentServer();
    try {
      const notifier = createWebhookChat({ url: `${silent.url}/services/T000/B000/secret`, logger: capture.logger, timeoutMs: 500, minBackoffMs: 20, retryWindowMs: 1_500 });
      const returned: unknown = notifier.post(message('release started'));
      assert.equal(returned, undefined, 'post() hands back nothing to wait on');
      assert.equal(silent.received(), 0, 'post() returned before the webhook was even sent the request');
      // flush() ends early only when the sender has given up; its own timeout is far past the test's.
      await notifier.flush(60_000);
      assert.ok(silent.received() > 0, 'the request reached the server');
      const records = capture.logs.records();
      const failed = records.filter((record) => record.msg === 'chat post failed, retrying');
      assert.ok(failed.length >= 1, 'the unanswered post was abandoned and retried');
      assert.match(String(failed[0]!.reason), /TimeoutError|timeout/i);
      assert.ok(records.some((record) => record.msg === 'chat message dropped: not delivered within its retry window'));
      assert.ok(!records.some((record) => record.msg === 'chat flush timed out; messages still queued'));
    } finally {
      await silent.stop();
    }
  });

  it('refuses a malformed URL without repeating it', () => {
    assert.throws(
      () => createWebhookChat({ url: 'not a url secret-token', logger: capture.logger }),
      (error: Error) => !error.message.includes('secret-token'),
    );
  });

  // A child still alive after 25 s (far below the 60 s backoff it would otherwise wait out) is killed, and fails the test.
  it('keeps no process alive while it retries', { timeout: 30_000 }, async () => {
    // A child process posts to a closed port with a long backoff; with unref'd sleeps it exits at once.
    const script = `
      import { createServer } from 'node:http';
      import { createWebhookChat } from ${JSON.stringify(new URL('../../src/chat/webhook-chat.ts', import.meta.url).href)};
      import { createLogger } from ${JSON.stringify(new URL('../../src/log/logger.ts', import.meta.url).href)};
      const closed = createServer();
      await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const { port } = closed.address();
      await new Promise((resolve) => closed.close(resolve));
      const chat = createWebhookChat({ url: 'http://127.0.0.1:' + port + '/hook', logger: createLogger({ level: 'silent' }), minBackoffMs: 60000 });
      chat.post({ text: 'nobody listens' });
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
      child.on('exit', (code, signal) => {
        clearTimeout(killer);
        resolve({ code, signal });
      });
    });
    assert.deepEqual(exit, { code: 0, signal: null }, `the process exited on its own: ${stderr}`);
  });
});

describe('Retry-After', () => {
  it('reads seconds and HTTP dates, and ignores anything else', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('1', now), 1_000);
    assert.equal(parseRetryAfter(' 30 ', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now), 5_000);
    assert.equal(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter(null, now), undefined);
    assert.equal(parseRetryAfter('-1', now), undefined);
    assert.equal(parseRetryAfter('soon', now), undefined);
  });
});
