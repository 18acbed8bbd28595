// Text that did not come from Harbormaster itself (a request's image, requester, branch, a refusal
// reason that echoes the request, an error message) is made inert before it reaches chat: Slack
// markup would otherwise let a request post links, mention @channel, or garble the line.

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;
// Mattermost and Discord (through /slack) notify everyone on these words even without Slack's
// <!channel> syntax; a zero-width space after the @ keeps the word readable but silent.
const BROADCAST_MENTIONS = /@(channel|here|all|everyone)\b/gi;

/** Slack's three control characters, as its message formatting guide asks. */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** One line of untrusted text, clipped to `max` characters (before escaping, so no entity is cut). */
export function untrusted(text: string, max = 300): string {
  const line = String(text).replace(CONTROL_CHARACTERS, ' ').trim();
  const clipped = line.length > max ? `${line.slice(0, max - 1)}…` : line;
  return escapeSlack(clipped.replace(BROADCAST_MENTIONS, '@\u200B$1'));
}
