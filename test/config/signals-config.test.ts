import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError, parseWorkerConfig } from '../../src/config/worker-config.js';
import { workerConfigObject } from '../support/worker-fixtures.js';

// The configuration of chat (Slack app, Discord, webhook), GitHub deployments and metrics.

const queues = { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/dlq' };
const parse = (mutate: (config: Record<string, any>) => void) => {
  const config = workerConfigObject('http://127.0.0.1:1', queues) as Record<string, any>;
  mutate(config);
  return parseWorkerConfig(stringify(config), 'worker.yml');
};
const refusal = (mutate: (config: Record<string, any>) => void) => {
  try {
    parse(mutate);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  assert.fail('configuration was accepted');
};

describe('signals configuration', () => {
  it('accepts a Slack app with its token from a secret source, and fills its defaults', () => {
    const config = parse((c) => (c.chat = { slack: { botToken: { env: 'SLACK_TOKEN' }, channel: 'C0123ABCD', users: { 'ci-bot': 'U0123ABCD' } } }));
    assert.deepEqual(config.chat?.slack, { botToken: { env: 'SLACK_TOKEN' }, channel: 'C0123ABCD', apiUrl: 'https://slack.com/api', users: { 'ci-bot': 'U0123ABCD' } });
  });

  it('takes exactly one kind of chat', () => {
    assert.match(refusal((c) => (c.chat = { webhook: { env: 'A' }, discord: { webhook: { env: 'B' } } })), /chat: chat takes exactly one of webhook, discord or slack/);
    assert.match(refusal((c) => (c.chat = { username: 'x' })), /exactly one of webhook, discord or slack/);
    assert.equal(parse((c) => (c.chat = { discord: { webhook: { env: 'B' } } })).chat?.discord?.webhook.env, 'B');
  });

  it('refuses a token written inline, a channel name instead of an id, and a user that is not a Slack id', () => {
    assert.match(refusal((c) => (c.chat = { slack: { botToken: 'xoxb-1', channel: 'C0123ABCD' } })), /chat\.slack\.botToken/);
    assert.match(refusal((c) => (c.chat = { slack: { botToken: { env: 'T' }, channel: '#deploys' } })), /chat\.slack\.channel: channel must be a Slack channel id/);
    assert.match(refusal((c) => (c.chat = { slack: { botToken: { env: 'T' }, channel: 'C1', users: { ci: 'alice' } } })), /a Slack user id looks like/);
  });

  it('maps stack/release to owner/repository for GitHub, with its token from a secret source', () => {
    const config = parse((c) => (c.github = { token: { file: '/etc/harbormaster/github-token' }, repositories: { 'data/ingest': 'acme/ingest' } }));
    assert.deepEqual(config.github, { token: { file: '/etc/harbormaster/github-token' }, repositories: { 'data/ingest': 'acme/ingest' }, apiUrl: 'https://api.github.com' });
    assert.match(refusal((c) => (c.github = { token: { env: 'G' }, repositories: { 'data/ingest': 'not a repo' } })), /a repository is "owner\/name"/);
  });

  it('takes a GitHub App instead of a token, never both', () => {
    const config = parse((c) => (c.github = { app: { appId: 4242, installationId: '777', privateKey: { file: '/etc/harbormaster/github-app.pem' } }, repositories: { 'data/ingest': 'acme/ingest' } }));
    assert.deepEqual(config.github?.app, { appId: '4242', installationId: '777', privateKey: { file: '/etc/harbormaster/github-app.pem' } });
    assert.match(refusal((c) => (c.github = { token: { env: 'G' }, app: { appId: 1, installationId: 2, privateKey: { env: 'K' } }, repositories: {} })), /github takes exactly one of token or app/);
    assert.match(refusal((c) => (c.github = { repositories: {} })), /github takes exactly one of token or app/);
  });

  it('serves metrics only when a port is given', () => {
    assert.equal(parse(() => undefined).metrics, undefined);
    assert.deepEqual(parse((c) => (c.metrics = { port: 9464 })).metrics, { port: 9464, host: '127.0.0.1', healthyPollSeconds: 300 });
  });
});
