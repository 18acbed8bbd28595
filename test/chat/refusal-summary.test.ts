import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChatMessage } from '../../src/chat/chat.js';
import { refusalReports } from '../../src/chat/refusal-reports.js';
import { RefusalSummary, type UnauthenticRefusal } from '../../src/chat/refusal-summary.js';

// The summary of refused unauthentic messages, driven by a clock the test sets: at most one message a
// minute, the count and the first distinct reasons right, nothing when nothing was refused.

const MINUTE = 60_000;
const T0 = Date.parse('2026-11-26T10:00:00.000Z');
const at = (seconds: number) => T0 + seconds * 1000;

let counter = 0;
const refusal = (code: string, reason: string, extra: Partial<UnauthenticRefusal> = {}): UnauthenticRefusal => ({ code, reason, messageId: `m-${++counter}`, ...extra });
const garbage = () => refusal('malformed', "message is not JSON: unexpected character 'g' (expected a value) at position 0");
const forged = () => refusal('bad-signature', "signature does not match key 'ci-test': the request was altered or signed with another key");
const field = (message: ChatMessage | undefined, title: string) => message?.fields?.find((f) => f.title === title)?.value;

describe('the summary of refused unauthentic messages', () => {
  it('posts nothing, and falls due never, when nothing was refused', () => {
    const summary = new RefusalSummary();
    assert.equal(summary.dueAt(), undefined);
    for (const seconds of [0, 10, 60, 3600]) assert.equal(summary.take(at(seconds)), undefined);
    assert.equal(summary.take(at(0), { force: true }), undefined, 'not even when forced');
  });

  it('gathers a burst for 10 s, then counts it in one message with each refusal code and the first distinct reasons', () => {
    const summary = new RefusalSummary();
    const first = garbage();
    summary.add(first, at(0));
    for (let i = 0; i < 599; i += 1) summary.add(garbage(), at(0.01 * i));
    for (let i = 0; i < 300; i += 1) summary.add(forged(), at(6));
    for (let i = 0; i < 100; i += 1) summary.add(refusal('unknown-key', `signed with key id 'forger-${i}', which this worker does not hold`), at(7));
    assert.equal(summary.dueAt(), at(10));
    assert.equal(summary.take(at(9.999)), undefined, 'not before the burst is gathered');

    const message = summary.take(at(10));
    assert.ok(message);
    assert.equal(
      message.text,
      'Refused 1000 messages not signed by a key this worker holds in the last 10 s (malformed 600, bad-signature 300, unknown-key 100). ' +
        'They changed nothing and went to the dead-letter queue.',
    );
    assert.equal(message.severity, 'warning');
    assert.equal(field(message, 'Refusals'), 'malformed 600, bad-signature 300, unknown-key 100');
    // Five distinct reasons, in the order first seen: one per code, then the first two unknown keys.
    assert.deepEqual(field(message, 'First reasons')?.split('\n'), [
      "malformed: message is not JSON: unexpected character 'g' (expected a value) at position 0",
      "bad-signature: signature does not match key 'ci-test': the request was altered or signed with another key",
      "unknown-key: signed with key id 'forger-0', which this worker does not hold",
      "unknown-key: signed with key id 'forger-1', which this worker does not hold",
      "unknown-key: signed with key id 'forger-2', which this worker does not hold",
    ]);
    assert.equal(field(message, 'First queue message'), first.messageId);
    assert.equal(summary.dueAt(), undefined, 'the count starts again from nothing');
    assert.equal(summary.take(at(11)), undefined);
  });

  it('posts at most one message a minute however long the flood lasts, and every refusal is counted once', () => {
    const summary = new RefusalSummary();
    const posted: Array<{ at: number; message: ChatMessage }> = [];
    // One refusal a second for ten minutes, the summary taken whenever due (a timer would do the same).
    for (let second = 0; second < 600; second += 1) {
      summary.add(garbage(), at(second));
      const message = summary.take(at(second));
      if (message) posted.push({ at: at(second), message });
    }
    const last = summary.take(at(600), { force: true });
    assert.ok(last);
    posted.push({ at: at(600), message: last });
    assert.deepEqual(
      posted.map((p) => (p.at - T0) / 1000),
      [10, 70, 130, 190, 250, 310, 370, 430, 490, 550, 600],
      'the first 10 s after the first refusal, then a minute apart (the last one forced at close)',
    );
    for (const [index, { at: time }] of posted.entries()) {
      if (index > 0 && index < posted.length - 1) assert.equal(time - posted[index - 1]!.at, MINUTE);
    }
    const counts = posted.map((p) => Number(/^Refused (\d+) message/.exec(p.message.text)?.[1]));
    assert.equal(counts.reduce((a, b) => a + b, 0), 600);
    assert.deepEqual(counts.slice(0, 3), [11, 60, 60]);
  });

  it('after a quiet spell, the next refusal is told 10 s after it, not a minute after the last message', () => {
    const summary = new RefusalSummary();
    summary.add(garbage(), at(0));
    assert.ok(summary.take(at(10)));
    summary.add(forged(), at(300));
    assert.equal(summary.dueAt(), at(310));
    assert.match(summary.take(at(310))?.text ?? '', /^Refused 1 message not signed by a key this worker holds in the last 10 s \(bad-signature 1\)/);
  });

  it('says where messages are kept when the dead-letter queue could not take them', () => {
    const summary = new RefusalSummary();
    summary.add(garbage(), at(0));
    summary.add(refusal('malformed', 'message is not JSON', { keptAt: '/var/lib/harbormaster/undeliverable/m-x.json', deadLetterError: 'QueueDoesNotExist: no such queue' }), at(1));
    summary.add(refusal('malformed', 'message is not JSON', { keptAt: '/var/lib/harbormaster/undeliverable/m-y.json', deadLetterError: 'QueueDoesNotExist: no such queue' }), at(2));
    const message = summary.take(at(10));
    assert.equal(message?.severity, 'failure');
    assert.match(message?.text ?? '', /the dead-letter queue could not take 2 of them, kept on the bastion \(the first at \/var\/lib\/harbormaster\/undeliverable\/m-x\.json\)\.$/);
    assert.equal(field(message, 'Dead-letter queue error'), 'QueueDoesNotExist: no such queue');
  });

  it('quotes reasons inert for chat', () => {
    const summary = new RefusalSummary();
    summary.add(refusal('unknown-key', "signed with key id '<!channel> @here', which this worker does not hold"), at(0));
    const reasons = field(summary.take(at(10)), 'First reasons') ?? '';
    assert.ok(!reasons.includes('<!channel>') && !reasons.includes('@here'), reasons);
  });
});

describe('refusals told to chat', () => {
  it('posts an authentic request\'s refusal at once, on its own, and counts the rest into a summary posted when due', async () => {
    const posted: ChatMessage[] = [];
    let now = T0;
    const reports = refusalReports({ post: (message) => void posted.push(message), flush: async () => undefined }, { gatherMs: 20, intervalMs: 50, now: () => now });
    reports.told({ ...garbage(), authentic: false });
    reports.told({ ...forged(), authentic: false });
    reports.told({ code: 'expired', reason: 'request was signed 400 s before the queue received it', messageId: 'm-ci', releaseId: 'r-1', authentic: true });
    assert.equal(posted.length, 1, 'only the authentic one, at once');
    assert.match(posted[0]!.text, /^Refused a release request \(expired\)/);
    now += 20;
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(posted.length, 2, 'the summary, once due');
    assert.match(posted[1]!.text, /^Refused 2 messages not signed by a key this worker holds/);
    reports.told({ ...garbage(), authentic: false });
    reports.close();
    assert.equal(posted.length, 3, 'what was counted is posted at close');
    assert.match(posted[2]!.text, /^Refused 1 message not signed/);
    reports.close();
    assert.equal(posted.length, 3, 'nothing more when nothing more was counted');
  });
});
