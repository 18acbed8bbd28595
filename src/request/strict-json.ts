import { printable } from './outside-text.js';

// JSON.parse lets the last of two equal keys win: `{"deployment":"staging","deployment":"production"}`
// reads as production to the worker and as staging to a person, a `jq .deployment | head -1` or any
// parser that keeps the first. So before a message or its payload is parsed, its text is walked once
// here: it must be exactly JSON (RFC 8259, what JSON.parse accepts), with no object holding the same
// key twice. Keys are compared decoded, as JSON.parse compares them: "a" and "\u0061" are one key.
// The walk also gives syntax errors that say where without quoting the text back (JSON.parse's own
// messages quote the input, control characters and all).

export type JsonCheck = { ok: true } | { ok: false; kind: 'syntax' | 'duplicate-key' | 'too-deep'; reason: string; path?: string };

/** Objects and arrays nested deeper than this are refused (a request is three levels deep). */
export const MAX_JSON_DEPTH = 32;

class Refused extends Error {
  constructor(
    readonly kind: 'syntax' | 'duplicate-key' | 'too-deep',
    readonly detail: string,
    readonly path?: string,
  ) {
    super(detail);
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** `target.deployment`, `items[2].name`, `["odd key"]`: where a key is, for a person. */
function pathTo(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (IDENTIFIER.test(key)) return parent ? `${parent}.${key}` : key;
  return `${parent}[${JSON.stringify(key)}]`;
}

/**
 * Checks that `text` is one JSON value and that no object in it has a key twice. Never throws.
 * The reason names the position (syntax) or the key's path (duplicate key), escaped for quoting.
 */
export function checkJson(text: string): JsonCheck {
  const scanner = new Scanner(text);
  try {
    scanner.whitespace();
    scanner.value('', 0);
    scanner.whitespace();
    if (!scanner.atEnd()) scanner.fail('unexpected text after the JSON value');
    return { ok: true };
  } catch (error) {
    if (!(error instanceof Refused)) throw error;
    return { ok: false, kind: error.kind, reason: error.detail, ...(error.path !== undefined ? { path: error.path } : {}) };
  }
}

class Scanner {
  private position = 0;

  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.position >= this.text.length;
  }

  fail(what: string): never {
    throw new Refused('syntax', `${what} at position ${this.position}`);
  }

  private unexpected(expected: string): never {
    if (this.atEnd()) this.fail(`unexpected end of text (expected ${expected})`);
    const found = this.text.codePointAt(this.position)!;
    this.fail(`unexpected character '${printable(String.fromCodePoint(found), 4)}' (expected ${expected})`);
  }

  whitespace(): void {
    while (this.position < this.text.length) {
      const c = this.text.charCodeAt(this.position);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      this.position += 1;
    }
  }

  value(path: string, depth: number): void {
    const c = this.text[this.position];
    if (c === '{') return this.object(path, depth + 1);
    if (c === '[') return this.array(path, depth + 1);
    if (c === '"') {
      this.string();
      return;
    }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const literal of ['true', 'false', 'null']) {
      if (this.text.startsWith(literal, this.position)) {
        this.position += literal.length;
        return;
      }
    }
    this.unexpected('a value');
  }

  private nested(depth: number): void {
    if (depth > MAX_JSON_DEPTH) throw new Refused('too-deep', `nested more than ${MAX_JSON_DEPTH} levels deep at position ${this.position}`);
  }

  private object(path: string, depth: number): void {
    this.nested(depth);
    this.position += 1; // {
    const keys = new Set<string>();
    this.whitespace();
    if (this.text[this.position] === '}') {
      this.position += 1;
      return;
    }
    for (;;) {
      if (this.text[this.position] !== '"') this.unexpected('a key in double quotes');
      const key = this.string();
      const keyPath = pathTo(path, key);
      if (keys.has(key)) {
        throw new Refused('duplicate-key', `key '${printable(keyPath, 120)}' appears twice`, keyPath);
      }
      keys.add(key);
      this.whitespace();
      if (this.text[this.position] !== ':') this.unexpected("':'");
      this.position += 1;
      this.whitespace();
      this.value(keyPath, depth);
      this.whitespace();
      const next = this.text[this.position];
      if (next === '}') {
        this.position += 1;
        return;
      }
      if (next !== ',') this.unexpected("',' or '}'");
      this.position += 1;
      this.whitespace();
    }
  }

  private array(path: string, depth: number): void {
    this.nested(depth);
    this.position += 1; // [
    this.whitespace();
    if (this.text[this.position] === ']') {
      this.position += 1;
      return;
    }
    for (let index = 0; ; index += 1) {
      this.value(pathTo(path, index), depth);
      this.whitespace();
      const next = this.text[this.position];
      if (next === ']') {
        this.position += 1;
        return;
      }
      if (next !== ',') this.unexpected("',' or ']'");
      this.position += 1;
      this.whitespace();
    }
  }

  /** A string at the position (on its opening quote), decoded exactly as JSON.parse decodes it. */
  private string(): string {
    const start = this.position;
    this.position += 1; // "
    let decoded = '';
    let runStart = this.position;
    for (;;) {
      if (this.atEnd()) {
        this.position = start;
        this.fail('unterminated string');
      }
      const c = this.text.charCodeAt(this.position);
      if (c === 0x22) {
        decoded += this.text.slice(runStart, this.position);
        this.position += 1;
        return decoded;
      }
      if (c < 0x20) this.fail(`control character U+${c.toString(16).padStart(4, '0').toUpperCase()} inside a string (it must be escaped)`);
      if (c !== 0x5c) {
        this.position += 1;
        continue;
      }
      decoded += this.text.slice(runStart, this.position);
      const escape = this.text[this.position + 1];
      switch (escape) {
        case '"':
        case '\\':
        case '/':
          decoded += escape;
          break;
        case 'b':
          decoded += '\b';
          break;
        case 'f':
          decoded += '\f';
          break;
        case 'n':
          decoded += '\n';
          break;
        case 'r':
          decoded += '\r';
          break;
        case 't':
          decoded += '\t';
          break;
        case 'u': {
          const hex = this.text.slice(this.position + 2, this.position + 6);
          if (!/^[0-9A-Fa-f]{4}$/.test(hex)) this.fail('invalid \\u escape (four hexadecimal digits expected)');
          // One UTF-16 unit per escape, as JSON.parse: a pair of escapes makes one astral character.
          decoded += String.fromCharCode(Number.parseInt(hex, 16));
          this.position += 4;
          break;
        }
        default:
          this.fail('invalid escape in a string');
      }
      this.position += 2;
      runStart = this.position;
    }
  }

  private number(): void {
    const match = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    match.lastIndex = this.position;
    const found = match.exec(this.text);
    if (!found || found[0] === '-') this.unexpected('a number');
    this.position += found[0].length;
  }
}
