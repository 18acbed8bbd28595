import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log/logger.js';
import { clip, escapeUnsafe, hasUnsafeCharacters, printable, redactCredentials } from '../../src/request/outside-text.js';

// What SQS accepts in a message attribute value (and a message body).
const SQS_ALLOWED = /^[\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]*$/u;

describe('text from outside, before it is quoted', () => {
  it('redacts credentials in URLs and before a registry, keeping the user name', () => {
    const cases: Array<[string, string]> = [
      ['https://user:hunter2@registry.internal/app:1', 'https://user:[redacted]@registry.internal/app:1'],
      ['https://hunter2@github.com/org/repo', 'https://[redacted]@github.com/org/repo'],
      ['see http://a:b@h/x and ssh://git:hunter2@h:22/y', 'see http://a:[redacted]@h/x and ssh://git:[redacted]@h:22/y'],
      ['https://user:p@ss@host/x', 'https://user:[redacted]@host/x'],
      ['user:hunter2@registry/app:1', 'user:[redacted]@registry/app:1'],
      ["image 'user:hunter2@registry:5000/app:1' is bad", "image 'user:[redacted]@registry:5000/app:1' is bad"],
      ['user:hunter2@registry:5000', 'user:[redacted]@registry:5000'],
    ];
    for (const [text, expected] of cases) {
      assert.equal(redactCredentials(text), expected);
      assert.equal(redactCredentials(expected), expected, 'idempotent');
    }
  });

  it('leaves digests, e-mail addresses and plain text alone', () => {
    for (const text of [
      `busybox:1.36@sha256:${'a'.repeat(64)}`,
      `reg.io:5000/app:v1@sha512:${'b'.repeat(128)}`,
      'alice@example.com asked',
      'root@10.0.0.5',
      'ingest:v2 to data/ingest/staging',
      'https://ci.example.com/build/42',
    ]) {
      assert.equal(redactCredentials(text), text);
    }
  });

  it('escapes every character a terminal, a log viewer or SQS would act on, visibly', () => {
    assert.equal(escapeUnsafe('a\u001b[2Jb\u0007\r\n\tc\u0000'), 'a\\u001b[2Jb\\u0007\\r\\n\\tc\\u0000');
    assert.equal(escapeUnsafe('\u009b31m \u202egnp.exe \u2066x\u2069 \u2028 \ufeff \ufffe \uffff'), '\\u009b31m \\u202egnp.exe \\u2066x\\u2069 \\u2028 \\ufeff \\ufffe \\uffff');
    assert.equal(escapeUnsafe('lone \ud800 and \udc00, a pair 😀 stays'), 'lone \\ud800 and \\udc00, a pair 😀 stays');
    assert.equal(escapeUnsafe('l1\nl2\tx\u001b', { keepLineBreaks: true }), 'l1\nl2\tx\\u001b');
    assert.ok(hasUnsafeCharacters('x\u001b'));
    assert.ok(hasUnsafeCharacters('\ud800'));
    assert.ok(!hasUnsafeCharacters('plain ünïcode 😀'));
  });

  it('clips by characters, never inside a surrogate pair, and makes what it quotes SQS-safe', () => {
    assert.equal(clip('😀😀😀', 2), '😀😀...');
    const quoted = printable(`${'😀'.repeat(100)}\u0000\ud800\uffff`, 99);
    assert.match(quoted, SQS_ALLOWED);
    assert.equal(printable(`a\u0000${'😀'.repeat(5)}\ud800\uffff`, 200), 'a\\u0000😀😀😀😀😀\\ud800\\uffff');
    assert.match(printable(`a\u0000${'😀'.repeat(5)}\ud800\uffff`, 200), SQS_ALLOWED);
    assert.equal(printable(printable('x\u001b user:hunter2@r/a:1')), printable('x\u001b user:hunter2@r/a:1'), 'idempotent');
  });

  it('is also the logger’s last guard: no raw control character or credential in a log field', () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const source = { buildUrl: 'https://ci:hunter2@ci.example.com/1', notes: ['a\u001b[2J', 'line 1\nline 2\ttab'] };
    const error = new Error('kept for its serializer');
    createLogger({}, sink).warn({ source, reason: 'evil\u202e\u0007', err: error, count: 3 }, 'refused');
    const [line] = lines;
    assert.deepEqual(line?.source, { buildUrl: 'https://ci:[redacted]@ci.example.com/1', notes: ['a\\u001b[2J', 'line 1\nline 2\ttab'] });
    assert.equal(line?.reason, 'evil\\u202e\\u0007');
    assert.equal(line?.count, 3);
    assert.equal((line?.err as { message: string }).message, 'kept for its serializer');
    assert.deepEqual(source.notes, ['a\u001b[2J', 'line 1\nline 2\ttab'], 'the logged object itself is not changed');
  });
});
