import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startChatServer, type ChatServer } from '../../local-fleet/chat-server.js';
import * as say from '../../src/chat/release-messages.js';
import { createSlackAppChat, type SlackAppChatOptions } from '../../src/chat/slack-app-chat.js';
import { createLogger } from '../../src/log/logger.js';
import { reread, storedRelease, whileRunning } from '../support/signal-release.js';

// The Slack app chat against the local fleet's Slack Web API receiver (local-fleet/slack-api.ts),
// which checks chat.postMessage and chat.update as Slack documents them: POST, Bearer token, JSON,
// a channel id, blocks, thread_ts of an existing message, the ts of the message to update.

const TARGET = 'data/ingest/staging';
const IMAGE = 'registry.example.com:5000/data/ingest:v2';

describe('Slack app chat', () => {
  let server: ChatServer;
  let raw: string[];

  before(async () => {
    server = await startChatServer({ slackToken: 'xoxb-test-token-1234' });
  });
  after(() => server.stop());
  beforeEach(() => {
    server.recover();
    server.clear();
    raw = [];
  });

  function chat(options: Partial<SlackAppChatOptions> = {}) {
    const logger = createLogger({ level: 'debug' }, { write: (line: string) => void raw.push(line) });
    return createSlackAppChat({ botToken: server.slackToken, channel: 'C0LOCAL', apiUrl: server.slackApiUrl, logger, minBackoffMs: 20, maxBackoffMs: 100, ...options });
  }
  const topLevel = () => server.slackMessages().filter((m) => m.threadTs === undefined);
  const replies = (ts: string) => server.slackMessages().filter((m) => m.threadTs === ts);
  const fieldsOf = (blocks: unknown[] | undefined) => JSON.stringify(blocks ?? []);

  it('keeps one message per release up to date, host lines in its thread, and records its ts with the release', async () => {
    const { release, store } = await storedRelease();
    const slack = chat();
    const hosts = ['h1', 'h2', 'h3'];
    await whileRunning(release, slack, (c) => {
      c.post(say.releaseStarted({ target: TARGET, image: IMAGE, requestedBy: 'ci-bot', hosts, releaseId: release.releaseId }));
      hosts.forEach((host, i) => c.post(say.hostProgress({ target: TARGET, host, index: i + 1, total: 3, durationMs: 1000, outOfServiceMs: 900 })));
      c.post(say.releaseSucceeded({ target: TARGET, image: IMAGE, hosts, durationMs: 4000 }));
    });
    await slack.flush(5_000);

    const [main, ...others] = topLevel();
    assert.equal(others.length, 0, 'one top-level message for the release');
    assert.ok(main!.edits.length >= 1, 'edited in place with chat.update');
    assert.match(main!.text, /Released ingest:v2 to data\/ingest\/staging: 3 hosts/);
    assert.match(fieldsOf(main!.blocks), /\*Hosts\*\\n3 of 3/);
    assert.match(fieldsOf(main!.blocks), /\*Outcome\*\\nsucceeded/);
    assert.match(fieldsOf(main!.blocks), /\*Requested by\*\\nci-bot/);
    const thread = replies(main!.ts).map((m) => m.text);
    assert.equal(thread.length, 4, 'three host lines and the result, in the thread');
    assert.match(thread[0]!, /host 1\/3 h1 done/);
    assert.deepEqual((await store.get(release.releaseId))!.chatMessage, { via: 'slack', channel: 'C0LOCAL', id: main!.ts });
  });

  it('a worker that takes the release over edits the same message', async () => {
    const { release, store } = await storedRelease();
    const first = chat();
    await whileRunning(release, first, (c) => c.post(say.releaseStarted({ target: TARGET, image: IMAGE, requestedBy: 'ci-bot', hosts: ['h1', 'h2'], releaseId: release.releaseId })));
    await first.flush(5_000);
    const [posted] = topLevel();

    const second = chat();
    const taken = await reread(store, release);
    await whileRunning(taken, second, (c) => {
      c.post(say.releaseResumed({ target: TARGET, image: IMAGE, releaseId: release.releaseId, found: 'running, 1 of 2 host(s) released', occasion: 'takeover' }));
      c.post(say.releaseSucceeded({ target: TARGET, image: IMAGE, hosts: ['h1', 'h2'], durationMs: 4000 }));
    });
    await second.flush(5_000);

    assert.equal(topLevel().length, 1, 'no second message');
    assert.match(topLevel()[0]!.text, /Released ingest:v2/, 'the first message shows the end');
    assert.equal(replies(posted!.ts).length, 2, 'the resumption and the result went to its thread');
  });

  it('mentions the requester on failure, broadcast to the channel', async () => {
    const { release } = await storedRelease({ requestedBy: 'alice-ci' });
    const slack = chat({ users: { 'alice-ci': 'U0ALICE' } });
    await whileRunning(release, slack, (c) => {
      c.post(say.releaseStarted({ target: TARGET, image: IMAGE, requestedBy: 'alice-ci', hosts: ['h1'], releaseId: release.releaseId }));
      c.post(say.releaseFailed({ target: TARGET, image: IMAGE, host: 'h1', step: 'health check', reason: 'unhealthy', rolledBack: ['h1'] }));
    });
    await slack.flush(5_000);
    const [main] = topLevel();
    const [failure] = replies(main!.ts);
    assert.match(failure!.text, /^<@U0ALICE> Release of ingest:v2 to data\/ingest\/staging failed on h1/);
    assert.equal(failure!.replyBroadcast, true);
    assert.match(fieldsOf(main!.blocks), /failed at health check on h1/);
  });

  it('waits out a 429 for its Retry-After (not its own backoff) and delivers once; posting never waits', async () => {
    const { release } = await storedRelease();
    server.rateLimit(0, 1);
    // A backoff of its own would take ten minutes: delivery within the flush shows Retry-After was used.
    const slack = chat({ minBackoffMs: 600_000, maxBackoffMs: 600_000 });
    await whileRunning(release, slack, (c) => c.post(say.releaseStarted({ target: TARGET, image: IMAGE, requestedBy: 'ci-bot', hosts: ['h1'], releaseId: release.releaseId })));
    assert.equal(topLevel().length, 0, 'the rollout went on before chat answered');
    await slack.flush(5_000);
    assert.equal(topLevel().length, 1);
    assert.equal(server.attempts(), 2, 'one 429, one delivery');
  });

  it('posts a message outside any release on its own, and drops a refused call without logging the token', async () => {
    const slack = chat();
    slack.post(say.needsAttention({ what: 'release r1', reason: 'its record cannot be read' }));
    await slack.flush(5_000);
    assert.equal(server.slackMessages().length, 1);
    assert.equal(server.slackMessages()[0]!.threadTs, undefined);

    const refused = chat({ botToken: 'xoxb-wrong-token-5678' });
    refused.post(say.needsAttention({ what: 'release r2', reason: 'x' }));
    await refused.flush(5_000);
    assert.equal(server.slackMessages().length, 1, 'a bad token is refused');
    assert.ok(raw.some((line) => line.includes('invalid_auth')), 'the refusal is logged');
    assert.ok(!raw.some((line) => line.includes('xoxb-')), 'no token in the log');
  });
});
