import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ECRClient } from '@aws-sdk/client-ecr';
import { MOTO_CREDENTIALS, MOTO_REGION, startMoto, type MotoServer } from '../../local-fleet/moto.js';
import type { ReleaseEnvironments } from '../../src/environment/container-environment.js';
import { PullError } from '../../src/host/host-errors.js';
import type { HostConnector, HostSession, RegistryAuth } from '../../src/host/host-session.js';
import { ResolvingConnector } from '../../src/host/resolving-connector.js';
import { createLogger } from '../../src/log/logger.js';
import { decodeAuthorizationToken, EcrCredentials, ecrTokenSource, needsRenewal, RegistryCredentialsError, type EcrToken } from '../../src/registry/ecr-credentials.js';
import { RenewableRegistryAuth } from '../../src/registry/renewable-auth.js';
import { releaseSecrets } from '../../src/environment/release-secrets.js';
import { newReleaseRequest } from '../../src/request/release-request.js';
import { startAuthRegistry, type AuthRegistry } from '../support/auth-registry.js';
import { workerConfig } from '../support/worker-fixtures.js';
import { deniedCredentials } from '../support/moto-iam.js';
import { startWatchingProxy, type WatchingProxy } from '../support/watching-proxy.js';

const HOUR = 3_600_000;
const token = (password: string, expiresAt: number): EcrToken => ({ username: 'AWS', password, proxyEndpoint: 'https://123456789012.dkr.ecr.us-west-2.amazonaws.com', expiresAt });

const noEnvironments = { complete: async (spec: unknown) => spec } as unknown as ReleaseEnvironments;
const connectorFor = (session: HostSession): HostConnector => new ResolvingConnector({ connect: async () => session }, noEnvironments);

describe('ECR token renewal (decisions)', () => {
  it('asks for a token again when less than an hour of it is left, not before', async () => {
    let now = 0;
    let fetched = 0;
    const credentials = new EcrCredentials(async () => token(`t${++fetched}`, now + 12 * HOUR), { now: () => now });
    assert.equal((await credentials.get()).password, 't1');
    now = 10 * HOUR;
    assert.equal((await credentials.get()).password, 't1', '2 h left: kept');
    now = 11 * HOUR + 1;
    assert.equal((await credentials.get()).password, 't2', 'under 1 h left: renewed');
    assert.equal(fetched, 2);
    assert.equal(needsRenewal(undefined, 0, HOUR), true);
    assert.equal(needsRenewal(token('x', 2 * HOUR), HOUR - 1, HOUR), false);
    assert.equal(needsRenewal(token('x', 2 * HOUR), HOUR + 1, HOUR), true);
  });

  it('asks once for many pulls waiting at once', async () => {
    let fetched = 0;
    let answer!: (t: EcrToken) => void;
    const credentials = new EcrCredentials(() => (fetched++, new Promise<EcrToken>((resolve) => (answer = resolve))), { now: () => 0 });
    const waiting = Promise.all([credentials.get(), credentials.get(), credentials.get()]);
    answer(token('shared', 12 * HOUR));
    assert.deepEqual((await waiting).map((t) => t.password), ['shared', 'shared', 'shared']);
    assert.equal(fetched, 1);
  });

  it('drops a token a registry refused, and only that one', async () => {
    let fetched = 0;
    const credentials = new EcrCredentials(async () => token(`t${++fetched}`, 12 * HOUR), { now: () => 0 });
    await credentials.get();
    credentials.renewAfterRefusal('some-older-token');
    assert.equal((await credentials.get()).password, 't1');
    credentials.renewAfterRefusal('t1');
    assert.equal((await credentials.get()).password, 't2');
  });

  it('a pull whose lease is given up stops waiting for the token', async () => {
    const credentials = new EcrCredentials(() => new Promise<EcrToken>(() => undefined));
    const lease = new AbortController();
    let pulled = false;
    const inner = { address: 'h', pull: async () => void (pulled = true) } as Partial<HostSession> as HostSession;
    const session = await new ResolvingConnector({ connect: async () => inner }, noEnvironments).connect('h', lease.signal);
    const pull = session.pull('r/app:1', new RenewableRegistryAuth('r', credentials));
    lease.abort(new Error('lease lost'));
    await assert.rejects(pull, /lease lost/);
    assert.equal(pulled, false);
  });

  it('refuses a token that is not base64 user:password without quoting it', () => {
    assert.deepEqual(decodeAuthorizationToken(Buffer.from('AWS:pa:ss').toString('base64')), { username: 'AWS', password: 'pa:ss' });
    assert.throws(() => decodeAuthorizationToken(Buffer.from('no-colon-secret').toString('base64')), (error: Error) => error instanceof RegistryCredentialsError && !error.message.includes('no-colon-secret'));
  });
});

/** The engine's side of a pull, reduced to its login: GET /v2/ on the image's registry with the pull's credentials. */
function registryLoginSession(registry: AuthRegistry, pulls: RegistryAuth[]): HostSession {
  return {
    address: '10.0.0.1',
    async pull(image: string, auth?: RegistryAuth) {
      pulls.push({ username: auth!.username, password: auth!.password, serveraddress: auth!.serveraddress });
      const status = await registry.status(auth && { username: auth.username, password: auth.password });
      if (status === 401) throw new PullError('10.0.0.1', image, 'unauthorised', 'unauthorized: authentication required');
      if (status !== 200) throw new Error(`registry answered ${status}`);
    },
    close: async () => undefined,
  } as Partial<HostSession> as HostSession;
}


describe('ECR credentials on moto, with a registry that accepts exactly them', () => {
  let moto: MotoServer;
  let proxy: WatchingProxy;
  let registry: AuthRegistry;
  let ecr: ECRClient;
  // moto's GetAuthorizationToken answers "AWS:<registry id>-auth-token" (expiring 2015-01-01).
  const MOTO_PASSWORD = '123456789012-auth-token';
  const logged: string[] = [];
  const logger = createLogger({ level: 'trace' }, new Writable({ write: (chunk, _e, done) => (logged.push(String(chunk)), done()) }));
  const tokenCalls = () => proxy.calls.filter((c) => c.operation.endsWith('GetAuthorizationToken')).length;

  before(async () => {
    moto = await startMoto();
    proxy = await startWatchingProxy(moto.endpoint);
    registry = await startAuthRegistry([{ username: 'AWS', password: MOTO_PASSWORD }]);
    ecr = new ECRClient({ endpoint: proxy.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, maxAttempts: 1 });
  });
  after(async () => {
    ecr?.destroy();
    await registry?.stop();
    await proxy?.stop();
    await moto?.stop();
  });

  it('the registry refuses a pull without credentials and accepts moto’s token', async () => {
    assert.equal(await registry.status(), 401);
    assert.equal(await registry.status({ username: 'AWS', password: 'wrong' }), 401);
    const fetched = await ecrTokenSource(ecr, { field: 'releases.0.rollout.registry', logger })();
    assert.deepEqual({ username: fetched.username, password: fetched.password }, { username: 'AWS', password: MOTO_PASSWORD });
    assert.equal(fetched.proxyEndpoint, `https://123456789012.dkr.ecr.${MOTO_REGION}.amazonaws.com`);
    assert.equal(await registry.status({ username: fetched.username, password: fetched.password }), 200);
  });

  it('every pull through the resolving connector logs in with the current token', async () => {
    const before = tokenCalls();
    const credentials = new EcrCredentials(ecrTokenSource(ecr, { field: 'releases.0.rollout.registry', logger }));
    const auth = new RenewableRegistryAuth(registry.address, credentials);
    const pulls: RegistryAuth[] = [];
    const session = await connectorFor(registryLoginSession(registry, pulls)).connect('10.0.0.1');
    await session.pull(`${registry.address}/team/app:1`, auth);
    await session.pull(`${registry.address}/team/app:2`, auth);
    assert.deepEqual(pulls, [
      { username: 'AWS', password: MOTO_PASSWORD, serveraddress: registry.address },
      { username: 'AWS', password: MOTO_PASSWORD, serveraddress: registry.address },
    ]);
    // moto's token expired in 2015: less than an hour left, so each pull asked ECR again.
    assert.equal(tokenCalls() - before, 2);
  });

  it('a refused token is renewed once and the pull tried again; a second refusal is the answer', async () => {
    let served = 0;
    const real = ecrTokenSource(ecr, { field: 'releases.0.rollout.registry', logger });
    // The first token is one the registry no longer accepts (revoked), then ECR's own.
    const credentials = new EcrCredentials(async () => (++served === 1 ? { ...(await real()), password: 'revoked-token', expiresAt: Date.now() + 12 * HOUR } : real()));
    const auth = new RenewableRegistryAuth(registry.address, credentials);
    const pulls: RegistryAuth[] = [];
    const session = await connectorFor(registryLoginSession(registry, pulls)).connect('10.0.0.1');
    await session.pull(`${registry.address}/team/app:1`, auth);
    assert.deepEqual(pulls.map((p) => p.password), ['revoked-token', MOTO_PASSWORD]);

    const refusing = await startAuthRegistry([{ username: 'AWS', password: 'someone-else' }]);
    try {
      const refused: RegistryAuth[] = [];
      const other = await connectorFor(registryLoginSession(refusing, refused)).connect('10.0.0.1');
      await assert.rejects(other.pull(`${refusing.address}/team/app:1`, new RenewableRegistryAuth(refusing.address, credentials)), (error: Error) => error instanceof PullError && error.reason === 'unauthorised');
      assert.equal(refused.length, 2, 'one renewal, not a loop');
    } finally {
      await refusing.stop();
    }
  });

  it('without the resolving connector no token is sent: the pull is refused, never made with a stale one', async () => {
    const auth = new RenewableRegistryAuth(registry.address, new EcrCredentials(ecrTokenSource(ecr, { field: 'f', logger })));
    const pulls: RegistryAuth[] = [];
    await assert.rejects(registryLoginSession(registry, pulls).pull('x', auth), PullError);
    assert.equal(pulls[0]!.password, '');
    assert.equal(JSON.stringify({ auth }), JSON.stringify({ auth: { serveraddress: registry.address, username: 'AWS', password: '[redacted]' } }));
  });

  it('a release configured with registry: {ecr: true} pulls with the token, wired as the worker wires it', async () => {
    const config = workerConfig(proxy.endpoint, { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/dlq' }, {
      ssh: { user: 'deploy', privateKey: { env: 'UNUSED_KEY' }, knownHostsFile: '/dev/null' },
      releases: [{ stack: 'data', release: 'ingest', deployments: ['staging'], images: { allowedRepositories: [`${registry.address}/data/ingest`] }, rollout: { container: { name: 'ingest' }, health: { port: 8080 }, registry: { ecr: true } } }],
    });
    const secrets = releaseSecrets(config, logger);
    try {
      const request = newReleaseRequest({ target: { stack: 'data', release: 'ingest', deployment: 'staging' }, image: `${registry.address}/data/ingest:1`, requestedBy: 'ci', source: {} });
      assert.ok(request.ok);
      const auth = secrets.registryAuth(request.value);
      assert.ok(auth instanceof RenewableRegistryAuth);
      const pulls: RegistryAuth[] = [];
      const session = await secrets.connector({ connect: async () => registryLoginSession(registry, pulls) }).connect('10.0.0.1');
      await session.pull(request.value.image, auth);
      assert.deepEqual(pulls, [{ username: 'AWS', password: MOTO_PASSWORD, serveraddress: registry.address }]);
    } finally {
      secrets.close();
    }
  });

  it('ECR access denied names the field and the permission', async () => {
    const denied = await deniedCredentials(moto.endpoint);
    const client = new ECRClient({ endpoint: moto.endpoint, region: MOTO_REGION, credentials: denied.credentials, maxAttempts: 1 });
    try {
      await assert.rejects(ecrTokenSource(client, { field: 'releases.0.rollout.registry', logger })(), (error: Error) => {
        assert.ok(error instanceof RegistryCredentialsError);
        assert.match(error.message, /^releases\.0\.rollout\.registry: ECR refused GetAuthorizationToken \(HTTP 403\): the worker's role needs ecr:GetAuthorizationToken/);
        return true;
      });
    } finally {
      client.destroy();
      await denied.restore();
    }
  });

  it('the token never reaches the log, even when the credentials object itself is logged', () => {
    logger.info({ auth: { username: 'AWS', password: MOTO_PASSWORD, serveraddress: registry.address } }, 'pull');
    logger.flush();
    const text = logged.join('');
    assert.ok(text.length > 0);
    assert.ok(!text.includes(MOTO_PASSWORD), 'password absent from every log line of this suite');
    assert.ok(!text.includes(Buffer.from(`AWS:${MOTO_PASSWORD}`).toString('base64')), 'nor its base64 form');
  });
});
