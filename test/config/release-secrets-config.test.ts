import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError, parseWorkerConfig } from '../../src/config/worker-config.js';
import { workerConfigObject } from '../support/worker-fixtures.js';

// The configuration of a release's registry login (a password, or Amazon ECR) and of its container's
// environment sources: what is accepted, and how a mistake is refused.

const queues = { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/dlq' };

function withRollout(rollout: Record<string, unknown>) {
  const config = workerConfigObject('http://127.0.0.1:1', queues) as Record<string, any>;
  config.ssh = { user: 'deploy', privateKey: { env: 'SSH_KEY' }, knownHostsFile: '/etc/hm/known_hosts' };
  config.releases[0].rollout = { container: { name: 'ingest' }, health: { port: 8080 }, ...rollout };
  return stringify(config);
}

const rollout = (settings: Record<string, unknown>) => parseWorkerConfig(withRollout(settings), 'worker.yml').releases[0]!.rollout!;

function refusal(settings: Record<string, unknown>): string {
  try {
    parseWorkerConfig(withRollout(settings), 'worker.yml');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  assert.fail('configuration was accepted');
}

describe('registry configuration', () => {
  it('accepts ECR, with or without its region and registry id, and a username with a password source', () => {
    assert.deepEqual(rollout({ registry: { ecr: true } }).registry, { ecr: true });
    assert.deepEqual(rollout({ registry: { ecr: true, region: 'eu-west-1', registryId: '111122223333' } }).registry, { ecr: true, region: 'eu-west-1', registryId: '111122223333' });
    const login = { address: 'registry.internal:5000', username: 'ci', password: { env: 'REGISTRY_PASSWORD' } };
    assert.deepEqual(rollout({ registry: login }).registry, login);
    assert.deepEqual(rollout({ registry: { ecr: true, address: '127.0.0.1:5000' } }).registry, { ecr: true, address: '127.0.0.1:5000' });
  });

  it('refuses a login without the registry it is for, or a registry that is not host[:port]', () => {
    assert.match(
      refusal({ registry: { username: 'ci', password: { env: 'P' } } }),
      /releases\.0\.rollout\.registry\.address: registry\.address names the registry the password is for, host\[:port\] as image references name it \(registry\.internal:5000\): the credentials are sent to it alone/,
    );
    for (const address of ['https://registry.internal', 'registry.internal/team', 'user@registry.internal', '']) {
      assert.match(refusal({ registry: { address, username: 'ci', password: { env: 'P' } } }), /releases\.0\.rollout\.registry\.address: address is the registry as image references name it, host\[:port\] without a scheme or path/, address);
    }
  });

  it('refuses a mix, a half login, and bad ECR fields, naming the field', () => {
    assert.match(refusal({ registry: { ecr: true, username: 'ci', password: { env: 'P' } } }), /releases\.0\.rollout\.registry: registry takes either ecr: true or username and password, not both/);
    assert.match(refusal({ registry: { username: 'ci' } }), /releases\.0\.rollout\.registry: registry needs username and password \(a secret source\), or ecr: true for Amazon ECR/);
    assert.match(refusal({ registry: { ecr: false } }), /releases\.0\.rollout\.registry\.ecr: ecr is true/);
    assert.match(refusal({ registry: { ecr: true, region: 'west' } }), /releases\.0\.rollout\.registry\.region: region must look like us-west-2/);
    assert.match(refusal({ registry: { ecr: true, registryId: '12345' } }), /releases\.0\.rollout\.registry\.registryId: registryId is an AWS account id \(12 digits\)/);
    assert.match(refusal({ registry: { username: 'ci', password: { env: 'P' }, region: 'eu-west-1' } }), /region and registryId are only for ecr: true/);
    assert.match(refusal({ registry: { username: 'ci', password: 'inline-password' } }), /releases\.0\.rollout\.registry\.password/);
  });
});

describe('container environment configuration', () => {
  it('accepts plain values and every source', () => {
    const environment = {
      PLAIN: 'x',
      A: { env: 'WORKER_VAR' },
      B: { file: '/run/credentials/harbormaster/b' },
      C: { ssm: '/app/db-password' },
      D: { ssm: 'arn:aws:ssm:us-west-2:123456789012:parameter/app/db' },
      E: { secret: 'app/api' },
      F: { secret: 'arn:aws:secretsmanager:us-west-2:123456789012:secret:app/api-AbCdEf', key: 'token' },
    };
    assert.deepEqual(rollout({ container: { name: 'ingest', environment } }).container.environment, environment);
  });

  it('refuses what is not one source, naming the variable', () => {
    const refused = (value: unknown) => refusal({ container: { name: 'ingest', environment: { DB_PASSWORD: value } } });
    assert.match(refused({ ssm: '/a', secret: 'b' }), /releases\.0\.rollout\.container\.environment\.DB_PASSWORD: a value read from elsewhere takes exactly one of env: VARIABLE, file: \/absolute\/path, ssm: PARAMETER or secret: NAME_OR_ARN/);
    assert.match(refused({ ssm: '/a', key: 'k' }), /environment\.DB_PASSWORD\.key: key is only for secret:/);
    assert.match(refused({ ssm: 'has space' }), /environment\.DB_PASSWORD\.ssm: ssm must be a parameter name/);
    assert.match(refused({ vault: 'x' }), /environment\.DB_PASSWORD: unknown field\(s\) 'vault'/);
    assert.match(refused(42), /environment\.DB_PASSWORD: a value is a string, or one of \{env\}, \{file\}, \{ssm\}, \{secret\}/);
  });
});
