import { readSecret } from '../config/secret-source.js';
import type { WorkerConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import { silentChat, type Chat } from './chat.js';
import { createDiscordChat } from './discord-chat.js';
import { createSlackAppChat } from './slack-app-chat.js';
import { createWebhookChat } from './webhook-chat.js';

// The chat the configuration names: a Slack app, a Discord webhook, a Slack-compatible incoming
// webhook (Slack, Mattermost), or none. Secrets are read here, at start.

export function chatFromConfig(config: WorkerConfig, logger: Logger, env: NodeJS.ProcessEnv = process.env): Chat {
  const chat = config.chat;
  if (!chat) return silentChat;
  const retryWindowMs = chat.retryWindowSeconds * 1000;
  if (chat.slack) {
    return createSlackAppChat({
      botToken: readSecret(chat.slack.botToken, env),
      channel: chat.slack.channel,
      apiUrl: chat.slack.apiUrl,
      users: chat.slack.users,
      logger,
      retryWindowMs,
    });
  }
  if (chat.discord) {
    return createDiscordChat({ url: readSecret(chat.discord.webhook, env), logger, retryWindowMs, ...(chat.username ? { username: chat.username } : {}) });
  }
  return createWebhookChat({
    url: readSecret(chat.webhook!, env),
    logger: logger.child({ component: 'chat' }),
    retryWindowMs,
    ...(chat.username ? { username: chat.username } : {}),
  });
}
