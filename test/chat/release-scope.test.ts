import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { Chat, ChatMessage } from '../../src/chat/chat.js';
import { currentRelease, fanOut, scopedRollout } from '../../src/chat/release-scope.js';
import { createLogger } from '../../src/log/logger.js';
import type { RolloutContext } from '../../src/rollout/rollout.js';
import { storedRelease } from '../support/signal-release.js';

// Which release a message belongs to, and one chat handing every message to several.

const context: RolloutContext = { logger: createLogger({ level: 'silent' }), stopRequested: new AbortController().signal, releaseConfig: { stack: 'data', release: 'ingest', deployments: ['staging'], images: { allowedRepositories: [] } }, occasion: 'new' };

describe('release scope', () => {
  it('knows the release in everything its rollout runs, however deep and late, and nothing outside it', async () => {
    const { release } = await storedRelease();
    const seen: Array<string | undefined> = [];
    let timerSeen: Promise<string | undefined> | undefined;
    const rollout = scopedRollout({
      async run() {
        seen.push(currentRelease()?.releaseId);
        await sleep(1);
        seen.push(currentRelease()?.releaseId);
        timerSeen = new Promise((resolve) => setImmediate(() => resolve(currentRelease()?.releaseId)));
        return { status: 'succeeded', hosts: 1 };
      },
    });
    const outcome = await rollout.run(release, context);
    assert.deepEqual(outcome, { status: 'succeeded', hosts: 1 });
    assert.deepEqual(seen, [release.releaseId, release.releaseId]);
    assert.equal(await timerSeen, release.releaseId);
    assert.equal(currentRelease(), undefined);
  });

  it('tells run listeners when a release starts and ends, with its outcome, also when the rollout throws', async () => {
    const { release } = await storedRelease();
    const events: string[] = [];
    const listener = { runStarted: () => events.push('started'), runEnded: (_r: unknown, outcome: unknown) => events.push(`ended ${JSON.stringify(outcome)}`) };
    await scopedRollout({ run: async () => ({ status: 'interrupted', reason: 'asked' }) }, [listener]).run(release, context);
    await assert.rejects(scopedRollout({ run: async () => Promise.reject(new Error('lease lost')) }, [listener]).run(release, context), /lease lost/);
    assert.deepEqual(events, ['started', 'ended {"status":"interrupted","reason":"asked"}', 'started', 'ended undefined']);
  });

  it('fans a message out to every chat, past one that throws, and flushes them all', async () => {
    const got: string[] = [];
    const flushed: string[] = [];
    const chat = (name: string, fail = false): Chat => ({
      post(message: ChatMessage) {
        if (fail) throw new Error('bug');
        got.push(`${name}: ${message.text}`);
      },
      flush: async () => void flushed.push(name),
    });
    const all = fanOut([chat('a'), chat('b', true), chat('c')]);
    all.post({ text: 'hello' });
    await all.flush(100);
    assert.deepEqual(got, ['a: hello', 'c: hello']);
    assert.deepEqual(flushed, ['a', 'b', 'c']);
  });
});
