import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChatMessage } from '../../src/chat/chat.js';
import { formatDuration, shortImage } from '../../src/chat/release-format.js';
import { hostProgress, needsAttention, releaseFailed, releaseRefused, releaseStarted, releaseSucceeded, requestRefused } from '../../src/chat/release-messages.js';
import { escapeSlack, untrusted } from '../../src/chat/slack-text.js';

// The messages a person reads in the channel: short lines, the detail in fields, and nothing a
// request could use to post markup, links or @channel.

const target = { stack: 'data', release: 'ingest', deployment: 'staging' };
const image = 'registry.example.com:5000/data/ingest:v2.1';
const releaseId = '0f8fad5b-d9cb-469f-a165-70867728950e';

function field(message: ChatMessage, title: string): string | undefined {
  return message.fields?.find((entry) => entry.title === title)?.value;
}

/** No raw <, > and no & that is not one of Slack's three entities, in the text or any field. */
function assertInert(message: ChatMessage): void {
  for (const value of [message.text, ...(message.fields ?? []).flatMap((entry) => [entry.title, entry.value])]) {
    assert.doesNotMatch(value, /[<>]/, value);
    assert.doesNotMatch(value, /&(?!amp;|lt;|gt;)/, value);
    assert.doesNotMatch(value, /@(channel|here|everyone|all)\b/i, value);
    assert.doesNotMatch(value, /[\u0000-\u001f]/, value);
  }
}

describe('release messages', () => {
  it('announces a start with who, what, where, and the source', () => {
    const message = releaseStarted({
      target,
      image,
      requestedBy: 'alice',
      hosts: ['ip-10-0-1-5', 'ip-10-0-1-6', 'ip-10-0-1-7'],
      releaseId,
      source: { branch: 'main', commit: 'abcdef1234567890abcd', buildUrl: 'https://ci.example.com/build/7?a=1&b=2' },
    });
    assert.equal(message.text, 'Releasing ingest:v2.1 to data/ingest/staging on 3 hosts (requested by alice)');
    assert.equal(message.severity, 'info');
    assert.deepEqual(message.fields, [
      { title: 'Target', value: 'data/ingest/staging' },
      { title: 'Image', value: image },
      { title: 'Requested by', value: 'alice' },
      { title: 'Hosts', value: 'ip-10-0-1-5, ip-10-0-1-6, ip-10-0-1-7' },
      { title: 'Branch', value: 'main' },
      { title: 'Commit', value: 'abcdef123456' },
      { title: 'Build', value: 'https://ci.example.com/build/7?a=1&amp;b=2' },
      { title: 'Release', value: releaseId },
    ]);
  });

  it('names a personal target and a single host, and omits an absent source', () => {
    const message = releaseStarted({
      target: { stack: 'data', release: 'ingest', personal: { user: 'bob', feature: 'faster-parse' } },
      image: 'ingest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      requestedBy: 'bob',
      hosts: ['ip-10-0-9-9'],
      releaseId,
    });
    assert.equal(message.text, 'Releasing ingest@sha256:0123456789ab to data/ingest/~bob on 1 host (requested by bob)');
    assert.equal(field(message, 'Branch'), undefined);
  });

  it('lists at most ten hosts', () => {
    const hosts = Array.from({ length: 25 }, (_, index) => `h${index + 1}`);
    const message = releaseSucceeded({ target, image, hosts, durationMs: 125_000 });
    assert.equal(field(message, 'Hosts'), 'h1, h2, h3, h4, h5, h6, h7, h8, h9, h10 and 15 more');
  });

  it('reports each host in one line without fields', () => {
    const message = hostProgress({ target, host: 'ip-10-0-1-6', index: 2, total: 3, durationMs: 42_400, outOfServiceMs: 30_000 });
    assert.equal(message.text, 'data/ingest/staging: host 2/3 ip-10-0-1-6 done in 42 s (out of service 30 s)');
    assert.equal(message.fields, undefined);
    assert.equal(message.severity, 'info');
  });

  it('reports success with the duration', () => {
    const message = releaseSucceeded({ target: 'data/ingest/staging', image, hosts: ['a', 'b'], durationMs: 125_000 });
    assert.equal(message.text, 'Released ingest:v2.1 to data/ingest/staging: 2 hosts in 2 min 5 s');
    assert.equal(message.severity, 'success');
    assert.equal(field(message, 'Duration'), '2 min 5 s');
  });

  it('reports a failure with the host, the step, the reason and what was rolled back', () => {
    const message = releaseFailed({
      target,
      image,
      host: 'ip-10-0-1-7',
      step: 'health check',
      reason: 'container exited with code 1',
      rolledBack: ['ip-10-0-1-5', 'ip-10-0-1-6'],
    });
    assert.equal(
      message.text,
      'Release of ingest:v2.1 to data/ingest/staging failed on ip-10-0-1-7 at health check: container exited with code 1; rolled back 2 hosts',
    );
    assert.equal(message.severity, 'failure');
    assert.equal(field(message, 'Failed on'), 'ip-10-0-1-7');
    assert.equal(field(message, 'Rolled back'), 'ip-10-0-1-5, ip-10-0-1-6');
  });

  it('reports a failure before any host, with nothing rolled back', () => {
    const message = releaseFailed({ target, image, step: 'preflight', reason: 'image not pullable', rolledBack: [] });
    assert.equal(message.text, 'Release of ingest:v2.1 to data/ingest/staging failed at preflight: image not pullable');
    assert.equal(field(message, 'Failed on'), undefined);
    assert.equal(field(message, 'Rolled back'), 'none');
  });

  it('reports a refusal with its code, reason and queue message', () => {
    const message = requestRefused({ code: 'unknown-target', reason: 'no release data/nope is served here', releaseId, messageId: 'm-123' });
    assert.match(message.text, /^Refused a release request \(unknown-target\): no release data\/nope is served here\./);
    assert.equal(message.severity, 'warning');
    assert.deepEqual(message.fields, [
      { title: 'Refusal', value: 'unknown-target' },
      { title: 'Reason', value: 'no release data/nope is served here' },
      { title: 'Release', value: releaseId },
      { title: 'Queue message', value: 'm-123' },
    ]);
    assert.equal(field(requestRefused({ code: 'invalid', reason: 'bad', messageId: 'm-1' }), 'Release'), undefined);
  });

  it('says where a refused request is kept when the dead-letter queue could not take it', () => {
    const message = requestRefused({
      code: 'invalid',
      reason: 'bad',
      messageId: 'm-1',
      keptAt: '/var/lib/harbormaster/undeliverable/m-1.json',
      deadLetterError: 'QueueDoesNotExist: The specified queue does not exist.',
    });
    assert.equal(
      message.text,
      'Refused a release request (invalid): bad. It changed nothing; the dead-letter queue could not take it, so it is kept on the bastion at /var/lib/harbormaster/undeliverable/m-1.json.',
    );
    assert.equal(message.severity, 'failure');
    assert.equal(field(message, 'Kept at'), '/var/lib/harbormaster/undeliverable/m-1.json');
    assert.equal(field(message, 'Dead-letter queue error'), 'QueueDoesNotExist: The specified queue does not exist.');
  });

  it('never posts a credential or a bidirectional override from a request', () => {
    const message = requestRefused({ code: 'invalid', reason: "image 'https://u:hunter2@reg/app:1' \u202e x\u202ey", messageId: 'm-1' });
    assert.doesNotMatch(JSON.stringify(message), /hunter2|\u202e/);
    assert.match(field(message, 'Reason')!, /https:\/\/u:\[redacted\]@reg\/app:1/);
  });

  it('reports a release refused before any change, and a restoration that needs a person', () => {
    const refused = releaseRefused({ target: 'data/ingest/staging', image, releaseId, reason: 'no running instance carries the tags' });
    assert.equal(refused.text, 'Release of ingest:v2.1 to data/ingest/staging refused before any change: no running instance carries the tags');
    assert.equal(refused.severity, 'warning');
    assert.equal(field(refused, 'Release'), releaseId);

    const attention = needsAttention({ what: 'resuming ingest-asg', reason: 'Throttling', target });
    assert.equal(attention.text, 'Needs attention on data/ingest/staging: resuming ingest-asg failed (Throttling); the fleet may not be as it was before the release');
    assert.equal(attention.severity, 'failure');
    assert.equal(field(needsAttention({ what: 'x', reason: 'y' }), 'Target'), undefined);
  });

  it('makes request-supplied text inert: escapes &, < and >, silences @channel, drops control characters', () => {
    const hostile = 'a & b <!channel> <https://evil.example|click> @here\nnext line';
    const messages = [
      releaseStarted({ target: `x<y>&z`, image: hostile, requestedBy: hostile, hosts: [hostile], releaseId: hostile, source: { branch: hostile, commit: hostile, buildUrl: hostile } }),
      hostProgress({ target: hostile, host: hostile, index: 1, total: 1, durationMs: 1, outOfServiceMs: 1 }),
      releaseSucceeded({ target: hostile, image: hostile, hosts: [hostile], durationMs: 1 }),
      releaseFailed({ target: hostile, image: hostile, host: hostile, step: hostile, reason: hostile, rolledBack: [hostile] }),
      requestRefused({ code: hostile, reason: hostile, releaseId: hostile, messageId: hostile }),
      releaseRefused({ target: hostile, image: hostile, releaseId: hostile, reason: hostile }),
      needsAttention({ what: hostile, reason: hostile, target: hostile }),
    ];
    for (const message of messages) assertInert(message);
    const refused = messages[4]!;
    assert.equal(field(refused, 'Reason'), 'a &amp; b &lt;!channel&gt; &lt;https://evil.example|click&gt; @\u200Bhere next line');
  });

  it('keeps text lines short whatever the reason', () => {
    const message = releaseFailed({ target, image, host: 'h', step: 'start', reason: 'x'.repeat(5_000), rolledBack: [] });
    assert.ok(message.text.length < 300, `text is ${message.text.length} characters`);
    assert.ok(field(message, 'Reason')!.length <= 1_000);
  });
});

describe('chat text helpers', () => {
  it('escapes exactly Slack’s control characters', () => {
    assert.equal(escapeSlack('<a & b>'), '&lt;a &amp; b&gt;');
    assert.equal(escapeSlack('plain: text/with *markdown*'), 'plain: text/with *markdown*');
  });

  it('clips before escaping, so no entity is cut in half', () => {
    assert.equal(untrusted('&&&&', 3), '&amp;&amp;…');
  });

  it('formats durations for people', () => {
    assert.equal(formatDuration(400), '0.4 s');
    assert.equal(formatDuration(9_949), '9.9 s');
    assert.equal(formatDuration(42_400), '42 s');
    assert.equal(formatDuration(60_000), '1 min');
    assert.equal(formatDuration(125_000), '2 min 5 s');
    assert.equal(formatDuration(3_720_000), '1 h 2 min');
    assert.equal(formatDuration(Number.NaN), '?');
  });

  it('shortens images to name and tag, or a 12-digit digest', () => {
    assert.equal(shortImage('registry.example.com:5000/data/ingest:v2'), 'ingest:v2');
    assert.equal(shortImage('nginx:1.27'), 'nginx:1.27');
    assert.equal(shortImage(`r.io/a/b:v1@sha256:${'0123456789abcdef'.repeat(4)}`), 'b:v1');
    assert.equal(shortImage('not an image <x>'), 'not an image &lt;x&gt;');
  });
});
