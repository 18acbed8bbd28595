import type { ChatMessage } from './chat.js';

// The Slack incoming-webhook body, the one dialect Slack, Mattermost and Discord's `/slack` endpoint
// all accept. `text` is the line every client shows; fields go in one attachment whose colour says
// how the news is (a bar of colour is what a person scanning the channel sees first).

export interface SlackField {
  readonly title: string;
  readonly value: string;
  readonly short: boolean;
}

export interface SlackAttachment {
  readonly color: string;
  readonly fallback: string;
  readonly fields: SlackField[];
}

export interface SlackPayload {
  readonly text: string;
  readonly attachments?: SlackAttachment[];
  readonly username?: string;
}

export const SEVERITY_COLORS: Readonly<Record<NonNullable<ChatMessage['severity']>, string>> = {
  info: '#439FE0',
  success: '#2EB67D',
  warning: '#ECB22E',
  failure: '#E01E5A',
};

// Slack lays out "short" fields two per row; only values that fit half a row are short.
const SHORT_FIELD_MAX = 40;

export function toSlackPayload(message: ChatMessage, username?: string): SlackPayload {
  const fields = (message.fields ?? []).map(
    ({ title, value }): SlackField => ({ title, value, short: value.length <= SHORT_FIELD_MAX && !value.includes('\n') }),
  );
  return {
    text: message.text,
    ...(fields.length > 0
      ? { attachments: [{ color: SEVERITY_COLORS[message.severity ?? 'info'], fallback: message.text, fields }] }
      : {}),
    ...(username ? { username } : {}),
  };
}
