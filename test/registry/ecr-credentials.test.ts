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
function registryLoginSession(registry: AuthRegistry, pulls: Array<RegistryAuth | undefined>): HostSession {
  return {
    address: '10.0.0.1',
    async pull(image: string, auth?: RegistryAuth) {
      pulls.push(auth && { username: auth.username, password: auth.password, serveraddress: auth.serveraddress });
      const status = await registry.status(auth && { username: auth.username, password: auth.password });
      if (status === 401) throw new PullError('10.0.0.1', image, 'unauthorised', 'unauthorized: authentication required');
      if (status !== 200) throw new Error(`registry answered ${status}`);
    },
    close: async () => undefined,
  } as Partial<HostSession> as HostSession;
}


describe('a registry password goes to its registry alone', () => {
  const config = (address: string) =>
    workerConfig('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/dlq' }, {
      ssh: { user: 'deploy', privateKey: { env: 'UNUSED_KEY' }, knownHostsFile: '/dev/null' },
      releases: [
        {
          stack: 'data',
          release: 'ingest',
          deployments: ['staging'],
          images: { allowedRepositories: ['registry.internal:5000/data/*', 'elsewhere.example.com/data/*', 'data/*'] },
          rollout: { container: { name: 'ingest' }, health: { port: 8080 }, registry: { address, username: 'ci', password: { env: 'REGISTRY_PASSWORD_FOR_TEST' } } },
        },
      ],
    });
  const authFor = (image: string, address = 'registry.internal:5000') => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info' }, new Writable({ write: (chunk, _e, done) => (lines.push(String(chunk)), done()) }));
    const secrets = releaseSecrets(config(address), log, { REGISTRY_PASSWORD_FOR_TEST: 'the-registry-password' });
    try {
      const request = newReleaseRequest({ target: { stack: 'data', release: 'ingest', deployment: 'staging' }, image, requestedBy: 'ci', source: {} });
      assert.ok(request.ok);
      return { auth: secrets.registryAuth(request.value), lines };
    } finally {
      secrets.close();
    }
  };

  it('sends the password with an image of registry.address, and nothing with an image of any other registry, saying so', () => {
    assert.deepEqual(authFor('registry.internal:5000/data/ingest:1').auth, { username: 'ci', password: 'the-registry-password', serveraddress: 'registry.internal:5000' });
    assert.deepEqual(authFor('REGISTRY.internal:5000/data/ingest:1').auth?.serveraddress, 'registry.internal:5000', 'host names compare without case');
    for (const image of ['elsewhere.example.com/data/ingest:1', 'registry.internal:5001/data/ingest:1', 'registry.internal/data/ingest:1', 'data/ingest:1']) {
      const { auth, lines } = authFor(image);
      assert.equal(auth, undefined, image);
      assert.equal(lines.length, 1, image);
      assert.match(lines[0]!, /the image's registry is not the one releases\.0\.rollout\.registry logs in to: pulled without credentials/);
      assert.ok(!lines[0]!.includes('the-registry-password'));
    }
    assert.deepEqual(authFor('data/ingest:1', 'docker.io').auth?.serveraddress, 'docker.io', 'Docker Hub, named as docker.io');
  });
});

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
    const auth = new RenewableRegistryAuth(registry.address, credentials, { address: registry.address });
    const pulls: Array<RegistryAuth | undefined> = [];
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
    const auth = new RenewableRegistryAuth(registry.address, credentials, { address: registry.address });
    const pulls: Array<RegistryAuth | undefined> = [];
    const session = await connectorFor(registryLoginSession(registry, pulls)).connect('10.0.0.1');
    await session.pull(`${registry.address}/team/app:1`, auth);
    assert.deepEqual(pulls.map((p) => p?.password), ['revoked-token', MOTO_PASSWORD]);

    const refusing = await startAuthRegistry([{ username: 'AWS', password: 'someone-else' }]);
    try {
      const refused: Array<RegistryAuth | undefined> = [];
      const other = await connectorFor(registryLoginSession(refusing, refused)).connect('10.0.0.1');
      await assert.rejects(other.pull(`${refusing.address}/team/app:1`, new RenewableRegistryAuth(refusing.address, credentials, { address: refusing.address })), (error: Error) => error instanceof PullError && error.reason === 'unauthorised');
      assert.equal(refused.length, 2, 'one renewal, not a loop');
    } finally {
      await refusing.stop();
    }
  });

  it('without the resolving connector no token is sent: the pull is refused, never made with a stale one', async () => {
    const auth = new RenewableRegistryAuth(registry.address, new EcrCredentials(ecrTokenSource(ecr, { field: 'f', logger })));
    const pulls: Array<RegistryAuth | undefined> = [];
    await assert.rejects(registryLoginSession(registry, pulls).pull('x', auth), PullError);
    assert.equal(pulls[0]!.password, '');
    assert.equal(JSON.stringify({ auth }), JSON.stringify({ auth: { serveraddress: registry.address, username: 'AWS', password: '[redacted]' } }));
  });

  it('a release configured with registry: {ecr: true} pulls with the token, wired as the worker wires it', async () => {
    const config = workerConfig(proxy.endpoint, { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/dlq' }, {
      ssh: { user: 'deploy', privateKey: { env: 'UNUSED_KEY' }, knownHostsFile: '/dev/null' },
      releases: [{ stack: 'data', release: 'ingest', deployments: ['staging'], images: { allowedRepositories: [`${registry.address}/data/ingest`] }, rollout: { container: { name: 'ingest' }, health: { port: 8080 }, registry: { ecr: true, address: registry.address } } }],
    });
    const secrets = releaseSecrets(config, logger);
    try {
      const request = newReleaseRequest({ target: { stack: 'data', release: 'ingest', deployment: 'staging' }, image: `${registry.address}/data/ingest:1`, requestedBy: 'ci', source: {} });
      assert.ok(request.ok);
      const auth = secrets.registryAuth(request.value);
      assert.ok(auth instanceof RenewableRegistryAuth);
      const pulls: Array<RegistryAuth | undefined> = [];
      const session = await secrets.connector({ connect: async () => registryLoginSession(registry, pulls) }).connect('10.0.0.1');
      await session.pull(request.value.image, auth);
      assert.deepEqual(pulls, [{ username: 'AWS', password: MOTO_PASSWORD, serveraddress: registry.address }]);
    } finally {
      secrets.close();
    }
  });

  it('the token goes to ECR’s own registry (or registry.address) alone: an image of any other registry is pulled without it', async () => {
    const credentials = new EcrCredentials(ecrTokenSource(ecr, { field: 'releases.0.rollout.registry', logger }));
    const ecrRegistry = `123456789012.dkr.ecr.${MOTO_REGION}.amazonaws.com`;
    const withheld: Array<[string, string]> = [];
    const pulls: Array<RegistryAuth | undefined> = [];
    // The engine's login, at the test registry whichever host the image names: what matters is what it is handed.
    const session = await connectorFor(registryLoginSession(registry, pulls)).connect('10.0.0.1');
    await session.pull(`${ecrRegistry}/team/app:1`, new RenewableRegistryAuth(ecrRegistry, credentials, { onWithheld: (image, token) => void withheld.push([image, token]) }));
    assert.deepEqual(pulls, [{ username: 'AWS', password: MOTO_PASSWORD, serveraddress: ecrRegistry }], 'ECR’s registry: the token');
    await assert.rejects(
      session.pull(`${registry.address}/team/app:1`, new RenewableRegistryAuth(registry.address, credentials, { onWithheld: (image, token) => void withheld.push([image, token]) })),
      (error: Error) => error instanceof PullError && error.reason === 'unauthorised',
    );
    assert.equal(pulls[1], undefined, 'another registry: no credentials at all');
    assert.deepEqual(withheld, [[registry.address, ecrRegistry]]);

    // Wired as the worker wires it: the image names a registry that is neither ECR's nor registry.address.
    const config = workerConfig(proxy.endpoint, { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/dlq' }, {
      ssh: { user: 'deploy', privateKey: { env: 'UNUSED_KEY' }, knownHostsFile: '/dev/null' },
      releases: [{ stack: 'data', release: 'ingest', deployments: ['staging'], images: { allowedRepositories: ['elsewhere.example.com/data/ingest'] }, rollout: { container: { name: 'ingest' }, health: { port: 8080 }, registry: { ecr: true } } }],
    });
    const secrets = releaseSecrets(config, logger);
    try {
      const request = newReleaseRequest({ target: { stack: 'data', release: 'ingest', deployment: 'staging' }, image: 'elsewhere.example.com/data/ingest:1', requestedBy: 'ci', source: {} });
      assert.ok(request.ok);
      const elsewhere: Array<RegistryAuth | undefined> = [];
      const wired = await secrets.connector({ connect: async () => registryLoginSession(registry, elsewhere) }).connect('10.0.0.1');
      await assert.rejects(wired.pull(request.value.image, secrets.registryAuth(request.value)), PullError);
      assert.deepEqual(elsewhere, [undefined]);
      logger.flush();
      assert.ok(logged.some((line) => line.includes('"imageRegistry":"elsewhere.example.com"') && line.includes('pulled without credentials')), 'said in the log');
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
