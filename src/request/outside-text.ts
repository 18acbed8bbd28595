// Text that came from outside (a request, a queue message, an error that quotes either) is never
// echoed raw into a refusal reason, a log line, a dead-letter attribute or chat. Two things are done
// to it, always in this order: credentials written into a URL or an image reference are redacted
// (`user:[redacted]@host`), then every character a terminal, a log viewer or SQS would act on is
// escaped visibly (`\u001b`, `\n`), so the reader sees what was sent without it doing anything.

/**
 * Escaped, never echoed: C0 controls (tab and newline included: a reason is one line), DEL, C1
 * controls, the Unicode line and paragraph separators, the bidirectional overrides and isolates
 * ("Trojan source"), the byte-order mark, U+FFFE and U+FFFF and lone surrogates (the last three are
 * outside what SQS accepts in a message attribute: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
 * #x10000-#x10FFFF).
 */
const UNSAFE_CHARACTER =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Every unsafe character as a visible escape (`\n`, `\u001b`); the rest unchanged. `keepLineBreaks`
 * leaves newlines and tabs as they are (for multi-line text in a JSON log field).
 */
export function escapeUnsafe(text: string, options: { keepLineBreaks?: boolean } = {}): string {
  return text.replace(UNSAFE_CHARACTER, (c) => {
    if (options.keepLineBreaks && (c === '\n' || c === '\t')) return c;
    return SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

export function hasUnsafeCharacters(text: string): boolean {
  UNSAFE_CHARACTER.lastIndex = 0;
  const found = UNSAFE_CHARACTER.test(text);
  UNSAFE_CHARACTER.lastIndex = 0;
  return found;
}

export const REDACTED = '[redacted]';

// A digest after the '@' of `name:tag@sha256:...`, which must not be mistaken for `user:password@host`.
const DIGEST_AHEAD = String.raw`sha(?:256|384|512):[0-9A-Fa-f]*(?:$|[\s'"<>),;])`;
// scheme://userinfo@ : the userinfo runs to the last '@' before the path.
const URL_USERINFO = /([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^\s/?#'"<>]*)@/g;
// user:password@host without a scheme, at the start of a word (`user:token@registry/app:1`).
const BARE_USERINFO = new RegExp(String.raw`(^|[\s'"(<=,;])([^\s'"/@:<>]+):([^\s'"/<>]*)@(?!${DIGEST_AHEAD})`, 'g');

/**
 * Credentials written into a URL (`https://user:token@host`, `https://token@host`) or before a
 * registry (`user:token@registry/app:1`) are replaced by `[redacted]`; the user name is kept when
 * there is a password, so a person can still tell whose credentials leaked. Idempotent.
 */
export function redactCredentials(text: string): string {
  return text
    .replace(URL_USERINFO, (_match, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      return colon >= 0 ? `${scheme}${userinfo.slice(0, colon)}:${REDACTED}@` : `${scheme}${REDACTED}@`;
    })
    .replace(BARE_USERINFO, (_match, before: string, user: string) => `${before}${user}:${REDACTED}@`);
}

/** The first `max` characters (code points: never half a surrogate pair), with `...` when cut. */
export function clip(text: string, max: number, ellipsis = '...'): string {
  if (text.length <= max) return text;
  const points = Array.from(text);
  if (points.length <= max) return text;
  return `${points.slice(0, max).join('')}${ellipsis}`;
}

/**
 * Outside text made safe to quote in a reason, a log line or a message attribute: credentials
 * redacted, clipped to `max` characters, unsafe characters escaped. Idempotent on its own output.
 */
export function printable(text: string, max = 80): string {
  return escapeUnsafe(clip(redactCredentials(String(text)), max));
}
