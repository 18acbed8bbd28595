import type { IncomingMessage, ServerResponse } from 'node:http';

// The part of Slack's Web API a Slack app worker calls, on loopback, checking the documented contract:
// POST https://slack.com/api/chat.postMessage {channel, text and/or blocks, thread_ts?, reply_broadcast?}
// and chat.update {channel, ts, text and/or blocks}, each with Authorization: Bearer <bot token> and a
// JSON body; the answer is HTTP 200 with {ok: true, channel, ts, ...} or {ok: false, error}.
// chat.update takes a channel id (not a name) and the ts of a message in it. Thread replies are kept
// with the message they answer, so a test (or `npm run local-release`) can show the conversation.

export interface SlackPosted {
  readonly channel: string;
  readonly ts: string;
  text: string;
  blocks?: unknown[];
  /** The ts of the message this one replies to, in its thread. */
  readonly threadTs?: string;
  readonly replyBroadcast?: boolean;
  /** Every chat.update of the message, oldest first (its text then). */
  readonly edits: string[];
}

export interface SlackApiState {
  readonly token: string;
  /** Channel ids that exist. */
  readonly channels: Set<string>;
  readonly messages: SlackPosted[];
}

let counter = 0;
const nextTs = () => `${Math.floor(Date.now() / 1000)}.${String(++counter).padStart(6, '0')}`;

function reply(response: ServerResponse, body: Record<string, unknown>): void {
  response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
  response.end(JSON.stringify(body));
}

const isBlocks = (value: unknown) => Array.isArray(value) && value.every((b) => typeof b === 'object' && b !== null && typeof (b as { type?: unknown }).type === 'string');

export function handleSlackApi(state: SlackApiState, request: IncomingMessage, raw: string, response: ServerResponse): void {
  const method = request.url?.slice('/api/'.length).split('?')[0];
  if (request.method !== 'POST') return reply(response, { ok: false, error: 'method_not_supported_for_channel_type' });
  if (method !== 'chat.postMessage' && method !== 'chat.update') return reply(response, { ok: false, error: 'unknown_method' });
  const auth = request.headers.authorization;
  if (!auth) return reply(response, { ok: false, error: 'not_authed' });
  if (auth !== `Bearer ${state.token}`) return reply(response, { ok: false, error: 'invalid_auth' });
  if (!String(request.headers['content-type']).startsWith('application/json')) return reply(response, { ok: false, error: 'invalid_form_data' });
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return reply(response, { ok: false, error: 'invalid_json' });
  }
  const channel = body.channel;
  if (typeof channel !== 'string' || !state.channels.has(channel)) return reply(response, { ok: false, error: 'channel_not_found' });
  if (body.blocks !== undefined && !isBlocks(body.blocks)) return reply(response, { ok: false, error: 'invalid_blocks' });
  if (typeof body.text !== 'string' && body.blocks === undefined) return reply(response, { ok: false, error: 'no_text' });
  const text = typeof body.text === 'string' ? body.text : '';
  if (method === 'chat.postMessage') {
    const threadTs = body.thread_ts;
    if (threadTs !== undefined && !state.messages.some((m) => m.channel === channel && m.ts === threadTs && m.threadTs === undefined)) {
      return reply(response, { ok: false, error: 'thread_not_found' });
    }
    const posted: SlackPosted = {
      channel,
      ts: nextTs(),
      text,
      ...(body.blocks ? { blocks: body.blocks as unknown[] } : {}),
      ...(typeof threadTs === 'string' ? { threadTs } : {}),
      ...(body.reply_broadcast === true ? { replyBroadcast: true } : {}),
      edits: [],
    };
    state.messages.push(posted);
    return reply(response, { ok: true, channel, ts: posted.ts, message: { type: 'message', text, ts: posted.ts, ...(posted.threadTs ? { thread_ts: posted.threadTs } : {}) } });
  }
  const message = state.messages.find((m) => m.channel === channel && m.ts === body.ts);
  if (!message) return reply(response, { ok: false, error: 'message_not_found' });
  message.text = text;
  if (body.blocks !== undefined) message.blocks = body.blocks as unknown[];
  message.edits.push(text);
  return reply(response, { ok: true, channel, ts: message.ts, text });
}
