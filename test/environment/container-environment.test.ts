import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { MOTO_CREDENTIALS, MOTO_REGION, startMoto, type MotoServer } from '../../local-fleet/moto.js';
import { ContainerEnvironmentError, readEnvironment } from '../../src/environment/container-environment.js';
import { releaseSecrets, type ReleaseSecrets } from '../../src/environment/release-secrets.js';
import { AwsSecretStores } from '../../src/environment/secret-stores.js';
import { createOptionsFor } from '../../src/host/container-mapping.js';
import type { ContainerSpec, HostSession } from '../../src/host/host-session.js';
import { createLogger } from '../../src/log/logger.js';
import { containerSpec } from '../../src/rollout/container-spec.js';
import { deniedCredentials } from '../support/moto-iam.js';
import { workerConfig } from '../support/worker-fixtures.js';

// The container's environment read from SSM and Secrets Manager (moto), the worker's environment and
// a file, through the same path as a release: the spec made from the configuration, a session of the
// resolving connector starting it; the engine's side records what it was given.

const SECRET_FILE_VALUE = 'file-value-7c1e';
const ENV_VALUE = 'env-value-41aa';

describe('container environment from secret stores (moto)', () => {
  let moto: MotoServer;
  let ssm: SSMClient;
  let secretsManager: SecretsManagerClient;
  let secrets: ReleaseSecrets;
  let settings: NonNullable<ReturnType<typeof workerConfig>['releases'][number]['rollout']>;
  const started: ContainerSpec[] = [];
  const logged: string[] = [];
  const logger = createLogger({ level: 'trace' }, new Writable({ write: (chunk, _e, done) => (logged.push(String(chunk)), done()) }));
  const engine = { address: '10.0.0.1', run: async (spec: ContainerSpec) => (createOptionsFor(spec), started.push(spec), 'id'), close: async () => undefined } as Partial<HostSession> as HostSession;
  const spec = (releaseId: string) => containerSpec(settings, { image: '127.0.0.1:5000/data/ingest:1', target: 'data/ingest/staging', releaseId, requestedBy: 'alice' });
  const start = async (releaseId: string) => {
    const session = await secrets.connector({ connect: async () => engine }).connect('10.0.0.1');
    await session.run(spec(releaseId));
    return started.at(-1)!.environment;
  };

  before(async () => {
    moto = await startMoto();
    const client = { endpoint: moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, maxAttempts: 1 };
    ssm = new SSMClient(client);
    secretsManager = new SecretsManagerClient(client);
    await ssm.send(new PutParameterCommand({ Name: '/ingest/db-password', Value: 'db-v1-9f3b', Type: 'SecureString' }));
    await ssm.send(new PutParameterCommand({ Name: '/ingest/log-level', Value: 'debug', Type: 'String' }));
    await secretsManager.send(new CreateSecretCommand({ Name: 'ingest/api', SecretString: JSON.stringify({ token: 'api-v1-22d0', user: 'svc' }) }));
    await secretsManager.send(new CreateSecretCommand({ Name: 'ingest/whole', SecretString: 'whole-v1-5be7' }));
    const file = join(mkdtempSync(join(tmpdir(), 'hm-env-')), 'value');
    writeFileSync(file, `${SECRET_FILE_VALUE}\n`);
    const config = workerConfig(moto.endpoint, { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/dlq' });
    const release = config.releases[0]!;
    const parsed = workerConfig(moto.endpoint, { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/dlq' }, {
      ssh: { user: 'deploy', privateKey: { env: 'UNUSED_KEY' }, knownHostsFile: '/dev/null' },
      releases: [
        {
          stack: release.stack,
          release: release.release,
          deployments: ['staging'],
          images: release.images,
          rollout: {
            container: {
              name: 'ingest',
              environment: {
                PLAIN: 'plain-value',
                DB_PASSWORD: { ssm: '/ingest/db-password' },
                LOG_LEVEL: { ssm: '/ingest/log-level' },
                API_TOKEN: { secret: 'ingest/api', key: 'token' },
                WHOLE: { secret: 'ingest/whole' },
                FROM_ENV: { env: 'HM_TEST_ENV_VALUE' },
                FROM_FILE: { file },
              },
            },
            health: { port: 8080 },
          },
        },
      ],
    });
    settings = parsed.releases[0]!.rollout!;
    secrets = releaseSecrets(parsed, logger, { ...process.env, HM_TEST_ENV_VALUE: ENV_VALUE });
  });
  after(async () => {
    secrets?.close();
    ssm?.destroy();
    secretsManager?.destroy();
    await moto?.stop();
  });

  it('a started container gets every value, SecureString decrypted and one key of a JSON secret', async () => {
    assert.deepEqual(await start('release-1'), {
      PLAIN: 'plain-value',
      API_TOKEN: 'api-v1-22d0',
      DB_PASSWORD: 'db-v1-9f3b',
      FROM_ENV: ENV_VALUE,
      FROM_FILE: SECRET_FILE_VALUE,
      LOG_LEVEL: 'debug',
      WHOLE: 'whole-v1-5be7',
    });
    assert.equal(started.at(-1)!.environmentSources, undefined, 'the engine gets values, not sources');
  });

  it('a rotated secret reaches the next release; the hosts of one release all get the values it read', async () => {
    await start('release-2');
    await ssm.send(new PutParameterCommand({ Name: '/ingest/db-password', Value: 'db-v2-0c44', Type: 'SecureString', Overwrite: true }));
    await secretsManager.send(new PutSecretValueCommand({ SecretId: 'ingest/api', SecretString: JSON.stringify({ token: 'api-v2-e7b1' }) }));
    const sameRelease = await start('release-2');
    assert.equal(sameRelease.DB_PASSWORD, 'db-v1-9f3b', 'a second host of release-2: the value release-2 read');
    const next = await start('release-3');
    assert.equal(next.DB_PASSWORD, 'db-v2-0c44');
    assert.equal(next.API_TOKEN, 'api-v2-e7b1');
  });

  it('values read ahead for a release (a preflight) are the ones its hosts get', async () => {
    await secrets.readEnvironment(spec('release-ahead'));
    await ssm.send(new PutParameterCommand({ Name: '/ingest/db-password', Value: 'db-v3-aa01', Type: 'SecureString', Overwrite: true }));
    assert.equal((await start('release-ahead')).DB_PASSWORD, 'db-v2-0c44');
    assert.equal((await start('release-after')).DB_PASSWORD, 'db-v3-aa01');
  });

  it('a missing parameter or key stops the start, naming the variable and its source, never a value', async () => {
    const stores = new AwsSecretStores(ssm, secretsManager);
    await assert.rejects(
      readEnvironment({ DB_PASSWORD: { ssm: '/ingest/missing' }, API_TOKEN: { secret: 'ingest/api', key: 'nope' }, GONE: { secret: 'ingest/gone' } }, stores),
      (error: Error) => {
        assert.ok(error instanceof ContainerEnvironmentError);
        assert.match(error.message, /container\.environment\.DB_PASSWORD \(SSM parameter \/ingest\/missing\): SSM parameter \/ingest\/missing does not exist \(ParameterNotFound\): create it, or correct the name/);
        assert.match(error.message, /container\.environment\.API_TOKEN \(secret ingest\/api key nope\): secret ingest\/api has no key nope/);
        assert.match(error.message, /container\.environment\.GONE \(secret ingest\/gone\): secret ingest\/gone does not exist \(ResourceNotFoundException\)/);
        assert.ok(!/api-v|db-v/.test(error.message), 'no value quoted');
        return true;
      },
    );
    await assert.rejects(readEnvironment({ WHOLE: { secret: 'ingest/whole', key: 'k' } }, stores), /secret ingest\/whole is not JSON: leave key out/);
  });

  it('access denied names the variable, the parameter and the permission the role needs', async () => {
    const denied = await deniedCredentials(moto.endpoint);
    const client = { endpoint: moto.endpoint, region: MOTO_REGION, credentials: denied.credentials, maxAttempts: 1 };
    const deniedSsm = new SSMClient(client);
    const deniedSecrets = new SecretsManagerClient(client);
    const stores = new AwsSecretStores(deniedSsm, deniedSecrets);
    try {
      await assert.rejects(readEnvironment({ DB_PASSWORD: { ssm: '/ingest/db-password' }, API_TOKEN: { secret: 'ingest/api' } }, stores), (error: Error) => {
        assert.match(error.message, /container\.environment\.DB_PASSWORD \(SSM parameter \/ingest\/db-password\): SSM parameter \/ingest\/db-password: access denied \(HTTP 403\): the worker's role needs ssm:GetParameter/);
        assert.match(error.message, /container\.environment\.API_TOKEN \(secret ingest\/api\): secret ingest\/api: access denied \(HTTP 403\): the worker's role needs secretsmanager:GetSecretValue/);
        return true;
      });
    } finally {
      deniedSsm.destroy();
      deniedSecrets.destroy();
      await denied.restore();
    }
  });

  it('the values are in neither the log nor what a release records of its container', async () => {
    const recorded = JSON.stringify({ settings, spec: spec('release-4') });
    assert.match(recorded, /\/ingest\/db-password/, 'the source is recorded');
    assert.throws(() => createOptionsFor(spec('release-4')), /environment DB_PASSWORD, LOG_LEVEL, API_TOKEN, .* not read from its source/, 'an unresolved spec never reaches an engine');
    logger.flush();
    const text = logged.join('');
    assert.match(text, /"DB_PASSWORD":"SSM parameter \/ingest\/db-password".*"msg":"container environment read"/, 'what was read from where is logged');
    for (const value of ['db-v1-9f3b', 'db-v2-0c44', 'db-v3-aa01', 'api-v1-22d0', 'api-v2-e7b1', 'whole-v1-5be7', ENV_VALUE, SECRET_FILE_VALUE]) {
      assert.ok(!recorded.includes(value), `${value} not recorded`);
      assert.ok(!text.includes(value), `${value} not logged`);
    }
  });
});
