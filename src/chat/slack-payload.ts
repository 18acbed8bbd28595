import type { ChatMessage } from './chat.js';

// A message in Slack's Block Kit, the body of an incoming webhook (Slack; Mattermost shows `text`)
// and of a Slack app's chat.postMessage. `text` is the line every client shows and notifications use;
// the blocks lead with an emoji that says how the news is, then the fields, two to a row.

export interface SlackPayload {
  readonly text: string;
  readonly blocks?: unknown[];
  readonly username?: string;
}

export const SEVERITY_EMOJI: Readonly<Record<NonNullable<ChatMessage['severity']>, string>> = {
  info: ':information_source:',
  success: ':white_check_mark:',
  warning: ':warning:',
  failure: ':rotating_light:',
};

// Slack takes at most 10 fields in a section, each at most 2000 characters.
const FIELDS_PER_SECTION = 10;
const MAX_FIELD = 1900;

export function messageBlocks(message: ChatMessage, prefix = ''): unknown[] {
  const emoji = SEVERITY_EMOJI[message.severity ?? 'info'];
  const blocks: unknown[] = [{ type: 'section', text: { type: 'mrkdwn', text: `${prefix}${emoji} ${message.text}`.slice(0, 2900) } }];
  const fields = (message.fields ?? []).map(({ title, value }) => ({ type: 'mrkdwn', text: `*${title}*\n${value}`.slice(0, MAX_FIELD) }));
  for (let i = 0; i < fields.length; i += FIELDS_PER_SECTION) blocks.push({ type: 'section', fields: fields.slice(i, i + FIELDS_PER_SECTION) });
  return blocks;
}

/** A message without text (a caller's bug) gets no blocks either: the receiver refuses it, and the drop is logged. */
export function toSlackPayload(message: ChatMessage, username?: string): SlackPayload {
  const blocks = typeof message.text === 'string' ? { blocks: messageBlocks(message) } : {};
  return { text: message.text, ...blocks, ...(username ? { username } : {}) };
}
