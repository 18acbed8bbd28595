import assert from 'node:assert/strict';
import { createVerify, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import * as say from '../../src/chat/release-messages.js';
import { createGitHubDeployments, type GitHubDeploymentsOptions } from '../../src/github/github-deployments.js';
import { createLogger } from '../../src/log/logger.js';
import { reread, storedRelease, whileRunning } from '../support/signal-release.js';

// GitHub deployments against a loopback server that checks the REST API's documented contract:
// POST /repos/{owner}/{repo}/deployments ({ref, environment, description, transient_environment,
// production_environment, auto_merge, required_contexts, payload}; 201 with the deployment) and POST
// /repos/{owner}/{repo}/deployments/{deployment_id}/statuses ({state, log_url, description <= 140,
// environment}; 201 with the status; 404 for an unknown deployment), each with Authorization: Bearer,
// Accept: application/vnd.github+json, X-GitHub-Api-Version and a User-Agent; rate limits as 403 with
// x-ratelimit-remaining: 0 and Retry-After.

const TOKEN = 'ghp_test_token_0123456789';
const INSTALLATION_TOKEN = 'ghs_installation_token_abcdef';
const APP = { appId: '4242', installationId: '777' };
const keys = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });

/** A GitHub App JWT as GitHub checks it: RS256 by the app's key, issued by the app id, at most 10 minutes long. */
function validAppJwt(header: string | undefined): boolean {
  const [head, payload, signature] = (header ?? '').replace(/^Bearer /, '').split('.');
  if (!head || !payload || !signature) return false;
  if (!createVerify('RSA-SHA256').update(`${head}.${payload}`).verify(keys.publicKey, Buffer.from(signature, 'base64url'))) return false;
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iat: number; exp: number; iss: string };
  return JSON.parse(Buffer.from(head, 'base64url').toString('utf8')).alg === 'RS256' && claims.iss === APP.appId && claims.exp - claims.iat <= 600;
}
const TARGET = 'data/ingest/staging';
const IMAGE = 'registry.example.com:5000/data/ingest:v2';
const STATES = new Set(['error', 'failure', 'inactive', 'in_progress', 'queued', 'pending', 'success']);

interface Made { id: number; repository: string; body: Record<string, unknown>; statuses: Array<Record<string, unknown>> }

describe('GitHub deployments', () => {
  let server: Server;
  let apiUrl: string;
  const made: Made[] = [];
  let rateLimitNext = 0;
  let tokensIssued = 0;
  let raw: string[];

  before(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
          response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
          response.end(JSON.stringify(body));
        };
        if (!request.headers['user-agent']) return json(403, { message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header' });
        if (request.url === `/app/installations/${APP.installationId}/access_tokens` && request.method === 'POST') {
          if (!validAppJwt(request.headers.authorization)) return json(401, { message: 'A JSON web token could not be decoded' });
          tokensIssued += 1;
          return json(201, { token: INSTALLATION_TOKEN, expires_at: new Date(Date.now() + 3_600_000).toISOString(), permissions: { deployments: 'write' } });
        }
        if (request.headers.authorization !== `Bearer ${TOKEN}` && request.headers.authorization !== `Bearer ${INSTALLATION_TOKEN}`) return json(401, { message: 'Bad credentials' });
        if (request.headers.accept !== 'application/vnd.github+json' || request.headers['x-github-api-version'] !== '2022-11-28') return json(415, { message: 'Unsupported media type' });
        if (rateLimitNext > 0) {
          rateLimitNext -= 1;
          return json(403, { message: 'API rate limit exceeded' }, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600), 'retry-after': '0' });
        }
        if (request.method !== 'POST') return json(404, { message: 'Not Found' });
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        const deploymentsPath = /^\/repos\/([\w.-]+\/[\w.-]+)\/deployments$/.exec(request.url!);
        const statusesPath = /^\/repos\/([\w.-]+\/[\w.-]+)\/deployments\/(\d+)\/statuses$/.exec(request.url!);
        if (deploymentsPath) {
          if (typeof body.ref !== 'string' || !body.ref) return json(422, { message: 'Validation Failed', errors: [{ field: 'ref', code: 'missing_field' }] });
          const deployment: Made = { id: 1000 + made.length, repository: deploymentsPath[1]!, body, statuses: [] };
          made.push(deployment);
          return json(201, { id: deployment.id, sha: body.ref, ref: body.ref, task: 'deploy', environment: body.environment, description: body.description, payload: body.payload, transient_environment: body.transient_environment, production_environment: body.production_environment });
        }
        if (statusesPath) {
          const deployment = made.find((d) => d.repository === statusesPath[1] && d.id === Number(statusesPath[2]));
          if (!deployment) return json(404, { message: 'Not Found' });
          if (!STATES.has(String(body.state)) || String(body.description ?? '').length > 140) return json(422, { message: 'Validation Failed' });
          deployment.statuses.push(body);
          return json(201, { id: deployment.statuses.length, state: body.state, description: body.description, environment: body.environment, log_url: body.log_url, target_url: body.log_url });
        }
        return json(404, { message: 'Not Found' });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    made.length = 0;
    rateLimitNext = 0;
    tokensIssued = 0;
    raw = [];
  });

  const github = (options: Partial<GitHubDeploymentsOptions> = {}) =>
    createGitHubDeployments({
      token: TOKEN,
      repositories: { 'data/ingest': 'acme/ingest' },
      apiUrl,
      logger: createLogger({ level: 'debug' }, { write: (line: string) => void raw.push(line) }),
      minBackoffMs: 600_000,
      maxBackoffMs: 600_000,
      ...options,
    });
  const started = (releaseId: string) => say.releaseStarted({ target: TARGET, image: IMAGE, requestedBy: 'ci-bot', hosts: ['h1'], releaseId });

  it('makes a deployment of the commit to the environment, then in_progress and success with the build as log_url', async () => {
    const { release, store, request } = await storedRelease();
    const listener = github();
    await whileRunning(release, listener, (c) => {
      c.post(started(release.releaseId));
      c.post(say.releaseSucceeded({ target: TARGET, image: IMAGE, hosts: ['h1'], durationMs: 1000 }));
    });
    await listener.flush(5_000);
    assert.equal(made.length, 1);
    const [deployment] = made;
    assert.equal(deployment!.repository, 'acme/ingest');
    assert.equal(deployment!.body.ref, request.source!.commit);
    assert.equal(deployment!.body.environment, 'staging');
    assert.equal(deployment!.body.transient_environment, false);
    assert.match(String(deployment!.body.description), new RegExp(release.releaseId));
    assert.deepEqual(deployment!.statuses.map((s) => s.state), ['in_progress', 'success']);
    assert.equal(deployment!.statuses[1]!.log_url, request.source!.buildUrl);
    assert.match(String(deployment!.statuses[1]!.description), new RegExp(`release ${release.releaseId}`));
    assert.deepEqual((await store.get(release.releaseId))!.githubDeployment, { repository: 'acme/ingest', id: deployment!.id });
  });

  it('reports a rolled-back release as failure, on the deployment a worker taking it over finds recorded', async () => {
    const { release, store } = await storedRelease();
    const first = github();
    await whileRunning(release, first, (c) => c.post(started(release.releaseId)));
    await first.flush(5_000);
    const second = github();
    await whileRunning(await reread(store, release), second, (c) => {
      c.post(say.releaseResumed({ target: TARGET, image: IMAGE, releaseId: release.releaseId, found: 'running', occasion: 'takeover' }));
      c.post(say.releaseFailed({ target: TARGET, image: IMAGE, host: 'h1', step: 'health check', reason: 'unhealthy', rolledBack: ['h1'] }));
    });
    await second.flush(5_000);
    assert.equal(made.length, 1, 'no second deployment');
    assert.deepEqual(made[0]!.statuses.map((s) => s.state), ['in_progress', 'in_progress', 'failure']);
  });

  it('makes a personal deployment transient, and marks a superseded release inactive (read from the store)', async () => {
    const { release, store } = await storedRelease({ target: { stack: 'data', release: 'ingest', personal: { user: 'alice', feature: 'x' } } });
    const listener = github({ store: () => store });
    listener.post(say.releaseSuperseded({ target: release.record.target, image: IMAGE, releaseId: release.releaseId, newer: { releaseId: 'newer', createdAt: new Date().toISOString() } }));
    await new Promise((resolve) => setImmediate(resolve));
    await listener.flush(5_000);
    assert.equal(made.length, 1);
    assert.equal(made[0]!.body.transient_environment, true);
    assert.equal(made[0]!.body.environment, 'personal-alice');
    assert.deepEqual(made[0]!.statuses.map((s) => s.state), ['inactive']);
  });

  it('as a GitHub App: buys an installation token with a signed JWT once, and uses it for every call', async () => {
    const listener = github({ token: undefined, app: { ...APP, privateKey: keys.privateKey } });
    for (const _ of [1, 2]) {
      const { release } = await storedRelease();
      await whileRunning(release, listener, (c) => c.post(started(release.releaseId)));
    }
    await listener.flush(5_000);
    assert.equal(tokensIssued, 1, 'the installation token is kept until near its expiry');
    assert.deepEqual(made.map((d) => d.statuses.map((s) => s.state)), [['in_progress'], ['in_progress']]);
    assert.ok(!raw.some((line) => line.includes(INSTALLATION_TOKEN) || line.includes('PRIVATE KEY')), 'no token or key in the log');
  });

  it('waits out a rate limit for its Retry-After, and does nothing for a release mapped to no repository', async () => {
    const { release } = await storedRelease();
    rateLimitNext = 1;
    const listener = github();
    await whileRunning(release, listener, (c) => c.post(started(release.releaseId)));
    await listener.flush(5_000);
    assert.deepEqual(made[0]!.statuses.map((s) => s.state), ['in_progress'], 'delivered after the 403 rate limit, well before a backoff of its own');

    made.length = 0;
    const unmapped = github({ repositories: { 'data/query': 'acme/query' } });
    await whileRunning(release, unmapped, (c) => c.post(started(release.releaseId)));
    await unmapped.flush(5_000);
    assert.equal(made.length, 0);
    assert.ok(!raw.some((line) => line.includes(TOKEN)), 'no token in the log');
  });
});
