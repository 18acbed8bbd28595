import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleSlackApi, type SlackApiState, type SlackPosted } from './slack-api.js';

// A Slack-compatible incoming webhook on loopback (Mattermost and Discord accept the same payload):
// POST a JSON body with `text` (and optionally `blocks` / `attachments`), get 200 "ok". It records
// what it accepted, in order, and can be told to fail (500) or to rate-limit (429 + Retry-After) so
// that the worker's chat retries are tested against a real HTTP server. Under /api/ it also answers
// the Slack Web API's chat.postMessage and chat.update (see slack-api.ts), for a worker configured as
// a Slack app: `slackApiUrl` and `slackToken` go in its chat.slack settings.

export interface ChatMessage {
  readonly text: string;
  readonly blocks?: unknown[];
  readonly attachments?: unknown[];
  /** The whole JSON body as received. */
  readonly body: Record<string, unknown>;
  readonly receivedAt: Date;
}

export type ChatMode = { kind: 'accept' } | { kind: 'fail' } | { kind: 'rateLimit'; retryAfterSeconds: number; times: number };

export interface ChatServer {
  /** The webhook URL to configure in the worker. */
  readonly url: string;
  /** The Slack Web API base URL (chat.slack.apiUrl) and the bot token it accepts. */
  readonly slackApiUrl: string;
  readonly slackToken: string;
  /** Messages posted through the Slack Web API, oldest first, each with its edits and thread replies. */
  slackMessages(): SlackPosted[];
  /** Accepted messages, oldest first (a copy). */
  messages(): ChatMessage[];
  clear(): void;
  /** Answer 500 to every post until recover(). */
  fail(): void;
  /** Answer 429 with Retry-After: retryAfterSeconds to every post until recover(), or to the next `times` posts. */
  rateLimit(retryAfterSeconds: number, times?: number): void;
  recover(): void;
  /** Every post received, accepted or not (for retry counting). */
  attempts(): number;
  stop(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) reject(new Error('body too large'));
      else chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function answer(response: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'text/plain', ...headers });
  response.end(text);
}

export async function startChatServer(options: { slackToken?: string } = {}): Promise<ChatServer> {
  const received: ChatMessage[] = [];
  const slack: SlackApiState = { token: options.slackToken ?? 'xoxb-local-fleet', channels: new Set(['C0LOCAL']), messages: [] };
  let mode: ChatMode = { kind: 'accept' };
  let attempts = 0;

  const server = createServer(async (request, response) => {
    try {
      if (request.method !== 'POST') return answer(response, 405, 'only POST');
      const raw = await readBody(request);
      attempts += 1;
      if (mode.kind === 'fail') return answer(response, 500, 'internal_error');
      if (mode.kind === 'rateLimit') {
        const { retryAfterSeconds } = mode;
        mode = mode.times > 1 ? { ...mode, times: mode.times - 1 } : { kind: 'accept' };
        return answer(response, 429, 'rate_limited', { 'retry-after': String(retryAfterSeconds) });
      }
      if (request.url?.startsWith('/api/')) return handleSlackApi(slack, request, raw, response);
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return answer(response, 400, 'invalid_payload');
      }
      // Slack refuses a message with neither text nor blocks/attachments.
      if (typeof body.text !== 'string' && !Array.isArray(body.blocks) && !Array.isArray(body.attachments)) return answer(response, 400, 'no_text');
      received.push({
        text: typeof body.text === 'string' ? body.text : '',
        ...(Array.isArray(body.blocks) ? { blocks: body.blocks } : {}),
        ...(Array.isArray(body.attachments) ? { attachments: body.attachments } : {}),
        body,
        receivedAt: new Date(),
      });
      answer(response, 200, 'ok');
    } catch (error) {
      answer(response, 400, String(error));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/hooks/harbormaster`,
    slackApiUrl: `http://127.0.0.1:${port}/api`,
    slackToken: slack.token,
    slackMessages: () => slack.messages.map((m) => ({ ...m, edits: [...m.edits] })),
    messages: () => [...received],
    clear: () => {
      received.length = 0;
      slack.messages.length = 0;
      attempts = 0;
    },
    fail: () => (mode = { kind: 'fail' }),
    rateLimit: (retryAfterSeconds, times = Infinity) => (mode = { kind: 'rateLimit', retryAfterSeconds, times }),
    recover: () => (mode = { kind: 'accept' }),
    attempts: () => attempts,
    stop: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
