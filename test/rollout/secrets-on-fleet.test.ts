import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import Docker from 'dockerode';
import type { Fleet } from '../../local-fleet/fleet.js';
import { fleetWorkerConfigObject } from '../../local-fleet/worker-config.js';
import { assertStagingWhole, releaseOnFleet } from '../support/fleet-engine.js';
import type { FleetObserver } from '../support/fleet-observer.js';
import { fleetForSuite } from '../support/fleet-suite.js';

// The container's environment from SSM and Secrets Manager (the fleet's moto) in real releases: every
// staging host's new container has the values, a rotated parameter reaches the next release, and
// neither the release record nor the log holds a value.

describe('container secrets on the local fleet', () => {
  const suite = fleetForSuite({ hosts: 4, freshEachTest: true });
  let fleet: Fleet;
  let observer: FleetObserver;
  before(() => {
    ({ fleet, observer } = suite);
  });

  const container = () => {
    const base = fleetWorkerConfigObject(fleet, { signingKey: { id: 'x', env: 'X' }, stateDirectory: '/tmp' }).releases[0]!.rollout.container;
    return { ...base, environment: { ...base.environment, DB_PASSWORD: { ssm: '/ingest/db-password' }, API_TOKEN: { secret: 'ingest/api', key: 'token' } } };
  };
  const liveEnvironment = async () =>
    Object.fromEntries(
      await Promise.all(
        observer.stagingHosts.map(async (h) => {
          const env = (await new Docker({ socketPath: h.dockerSocket }).getContainer('ingest').inspect()).Config.Env ?? [];
          return [h.name, env.filter((e) => /^(DB_PASSWORD|API_TOKEN)=/.test(e)).sort()] as const;
        }),
      ),
    );

  it('every host gets the values read for the release; a rotated parameter reaches the next release; none is recorded or logged', async () => {
    const client = { endpoint: fleet.aws.endpoint, region: fleet.aws.region, credentials: fleet.aws.credentials, maxAttempts: 1 };
    const ssm = new SSMClient(client);
    const secretsManager = new SecretsManagerClient(client);
    try {
      await ssm.send(new PutParameterCommand({ Name: '/ingest/db-password', Value: 'db-v1-9f3b', Type: 'SecureString' }));
      await secretsManager.send(new CreateSecretCommand({ Name: 'ingest/api', SecretString: JSON.stringify({ token: 'api-v1-22d0' }) }));

      const first = await releaseOnFleet(fleet, 'v2', { rollout: { container: container() } });
      assert.equal(first.outcome.status, 'succeeded', first.texts.join('\n'));
      await assertStagingWhole(observer, { h1: 'v2', h2: 'v2', h3: 'v2' });
      const expected = ['API_TOKEN=api-v1-22d0', 'DB_PASSWORD=db-v1-9f3b'];
      assert.deepEqual(await liveEnvironment(), { h1: expected, h2: expected, h3: expected });
      const recorded = JSON.stringify(first.recorded.record);
      assert.match(recorded, /\/ingest\/db-password/, 'the source is recorded');
      for (const value of ['db-v1-9f3b', 'api-v1-22d0']) {
        assert.ok(!recorded.includes(value), `${value} not in the record`);
        assert.ok(!JSON.stringify(first.lines).includes(value), `${value} not logged`);
      }

      await ssm.send(new PutParameterCommand({ Name: '/ingest/db-password', Value: 'db-v2-0c44', Type: 'SecureString', Overwrite: true }));
      const second = await releaseOnFleet(fleet, 'v3', { rollout: { container: container() } });
      assert.equal(second.outcome.status, 'succeeded', second.texts.join('\n'));
      const rotated = ['API_TOKEN=api-v1-22d0', 'DB_PASSWORD=db-v2-0c44'];
      assert.deepEqual(await liveEnvironment(), { h1: rotated, h2: rotated, h3: rotated });
    } finally {
      ssm.destroy();
      secretsManager.destroy();
    }
  });

  it('a parameter that does not exist refuses the release at preflight, nothing changed, and the reason names the variable and the parameter', async () => {
    const run = await releaseOnFleet(fleet, 'v2', { rollout: { container: { ...container(), environment: { DB_PASSWORD: { ssm: '/ingest/missing' } } } } });
    assert.equal(run.outcome.status, 'refused');
    assert.deepEqual(Object.values(run.recorded.record.hosts), [], 'refused before anything was recorded of the hosts');
    assert.match(JSON.stringify(run.recorded.record), /container\.environment\.DB_PASSWORD \(SSM parameter \/ingest\/missing\): SSM parameter \/ingest\/missing does not exist/);
    await assertStagingWhole(observer, { h1: 'v1', h2: 'v1', h3: 'v1' });
  });
});
