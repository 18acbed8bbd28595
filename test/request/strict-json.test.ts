import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkJson, MAX_JSON_DEPTH } from '../../src/request/strict-json.js';

const parses = (text: string) => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

describe('the JSON checker run before JSON.parse', () => {
  it('accepts what JSON.parse accepts, every key once', () => {
    for (const text of [
      '{}',
      '[]',
      ' {"a" : [true, false, null, -0, 1.5e-3, 10E+2, "x"], "b": {"a": 1}} ',
      '"\\ud83d\\ude00 \\"quoted\\" \\\\ \\/ \\b\\f\\n\\r\\t"',
      '{"a":{"a":{"a":1}}}', // the same key in different objects
      '[{"a":1},{"a":2}]',
      '{"\\u0069mage":1}', // an escaped key alone is just a key
      '{"__proto__":1,"constructor":2}',
      '{"\\ud800":1}', // a lone surrogate escape, as JSON.parse reads it
      '\t\r\n0\n',
    ]) {
      assert.deepEqual(checkJson(text), { ok: true }, text);
      assert.ok(parses(text), text);
    }
  });

  it('refuses what JSON.parse refuses, saying where without quoting the text', () => {
    for (const [text, reason] of [
      ['', /unexpected end of text \(expected a value\) at position 0/],
      ['{"a":1', /unexpected end of text \(expected ',' or '}'\) at position 6/],
      ['{"a":1,}', /expected a key in double quotes\) at position 7/],
      ['[1,2,]', /unexpected character '\]' \(expected a value\) at position 5/],
      ['{"x":01}', /unexpected character '1'/],
      ['{a:1}', /unexpected character 'a' \(expected a key in double quotes\)/],
      ["{'a':1}", /unexpected character '''/],
      ['"abc', /unterminated string at position 0/],
      ['"a\tb"', /control character U\+0009 inside a string/],
      ['"\\x"', /invalid escape/],
      ['"\\u12g4"', /invalid \\u escape/],
      ['{"a":1} {"a":2}', /unexpected text after the JSON value at position 8/],
      ['tru', /unexpected character 't'/],
      ['-', /unexpected character '-' \(expected a number\)/],
      ['1.', /unexpected text after the JSON value/],
      ['\ufeff{}', /unexpected character '\\ufeff'/],
      ['NaN', /unexpected character 'N'/],
    ] as const) {
      const checked = checkJson(text);
      assert.equal(checked.ok, false, text);
      if (checked.ok) continue;
      assert.equal(checked.kind, 'syntax', text);
      assert.match(checked.reason, reason);
      assert.ok(!parses(text), `JSON.parse accepts ${text}`);
    }
  });

  it('never quotes a control character back', () => {
    const checked = checkJson('\u001b[2J');
    assert.equal(checked.ok, false);
    assert.match((checked as { reason: string }).reason, /unexpected character '\\u001b'/);
  });

  it('refuses a key written twice, naming its path', () => {
    for (const [text, path] of [
      ['{"a":1,"a":2}', 'a'],
      ['{"a":1,"b":2,"a":1}', 'a'], // the same value twice is still two keys
      ['{"t":{"deployment":"staging","deployment":"production"}}', 't.deployment'],
      ['{"list":[{"x":1},{"y":1,"y":2}]}', 'list[1].y'],
      ['[[{"k":1,"k":1}]]', '[0][0].k'],
      ['{"odd key":1,"odd key":2}', '["odd key"]'],
    ] as const) {
      const checked = checkJson(text);
      assert.equal(checked.ok, false, text);
      if (checked.ok) continue;
      assert.equal(checked.kind, 'duplicate-key');
      assert.equal(checked.path, path);
      assert.equal(checked.reason, `key '${path}' appears twice`);
    }
  });

  it('compares keys decoded, as JSON.parse does: "a" and "\\u0061" are one key', () => {
    for (const text of [
      '{"a":1,"\\u0061":2}',
      '{"image":1,"\\u0069\\u006d\\u0061\\u0067\\u0065":2}',
      '{"a/b":1,"a\\/b":2}',
      '{"\\ud83d\\ude00":1,"😀":2}', // a surrogate pair escaped, and the character itself
      '{"\\n":1,"\\u000a":2}',
    ]) {
      const checked = checkJson(text);
      assert.equal(checked.ok, false, text);
      assert.equal((checked as { kind: string }).kind, 'duplicate-key', text);
      // JSON.parse keeps one of them: exactly the ambiguity refused.
      assert.equal(Object.keys(JSON.parse(text) as object).length, 1);
    }
    assert.deepEqual(checkJson('{"a":1,"A":2,"a ":3}'), { ok: true });
  });

  it('escapes a duplicate key that carries control characters', () => {
    const checked = checkJson('{"\\u001b[31m":1,"\\u001b[31m":2}');
    assert.equal(checked.ok, false);
    assert.equal((checked as { reason: string }).reason, `key '["\\u001b[31m"]' appears twice`);
  });

  it(`refuses nesting deeper than ${MAX_JSON_DEPTH} levels instead of recursing without bound`, () => {
    const deep = `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`;
    const checked = checkJson(deep);
    assert.equal(checked.ok, false);
    assert.equal((checked as { kind: string }).kind, 'too-deep');
    assert.deepEqual(checkJson(`${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`), { ok: true });
    assert.equal(checkJson('['.repeat(100_000)).ok, false);
  });
});
