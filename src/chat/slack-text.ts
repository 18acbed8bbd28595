// Text that did not come from Harbormaster itself (a request's image, requester, branch, a refusal
// reason that echoes the request, an error message) is made inert before it reaches chat: Slack
// markup would otherwise let a request post links, mention @channel, or garble the line.

import { redactCredentials } from '../request/outside-text.js';

// Control characters, line separators, bidirectional overrides and isolates, the byte-order mark,
// U+FFFE/U+FFFF and lone surrogates (the set outside-text.ts escapes): a chat line drops them.
const CONTROL_CHARACTERS =
  /(?:[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff])+/g;
// Mattermost and Discord (through /slack) notify everyone on these words even without Slack's
// <!channel> syntax; a zero-width space after the @ keeps the word readable but silent.
const BROADCAST_MENTIONS = /@(channel|here|all|everyone)\b/gi;

/** Slack's three control characters, as its message formatting guide asks. */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * One line of untrusted text, clipped to `max` characters (before escaping, so no entity is cut, and
 * never inside a surrogate pair). Credentials in a URL or an image reference are redacted first.
 */
export function untrusted(text: string, max = 300): string {
  const line = redactCredentials(String(text)).replace(CONTROL_CHARACTERS, ' ').trim();
  const points = line.length > max ? Array.from(line) : undefined;
  const clipped = points && points.length > max ? `${points.slice(0, max - 1).join('')}…` : line;
  return escapeSlack(clipped.replace(BROADCAST_MENTIONS, '@\u200B$1'));
}
