import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContainerInspectInfo } from 'dockerode';
import { containerInfoFrom, createOptionsFor, labelFilter, parsePortMapping } from '../../src/host/container-mapping.js';
import { ContainerSpecError } from '../../src/host/host-errors.js';
import { classifyPullFailure, progressEventError } from '../../src/host/pull-failure.js';

describe('container mapping', () => {
  it('turns a ContainerSpec into the engine create body', () => {
    const options = createOptionsFor({
      name: 'ingest',
      image: 'reg:5000/data/ingest:v2',
      ports: ['8080:80', '127.0.0.1:9000:9000', '514:514/udp'],
      environment: { A: '1', B: 'x=y' },
      volumes: ['/dev/log:/dev/log', '/srv/conf:/conf:ro'],
      restartPolicy: 'unless-stopped',
      labels: { 'harbormaster.managed': 'true' },
      stopTimeoutSeconds: 7,
    });
    assert.deepEqual(options, {
      name: 'ingest',
      Image: 'reg:5000/data/ingest:v2',
      Env: ['A=1', 'B=x=y'],
      Labels: { 'harbormaster.managed': 'true' },
      ExposedPorts: { '80/tcp': {}, '9000/tcp': {}, '514/udp': {} },
      StopTimeout: 7,
      HostConfig: {
        PortBindings: { '80/tcp': [{ HostPort: '8080' }], '9000/tcp': [{ HostPort: '9000', HostIp: '127.0.0.1' }], '514/udp': [{ HostPort: '514' }] },
        Binds: ['/dev/log:/dev/log', '/srv/conf:/conf:ro'],
        RestartPolicy: { Name: 'unless-stopped' },
      },
    });
  });

  it('refuses port and volume strings it cannot express', () => {
    for (const bad of ['8080', '8080:', 'a:b', '1:2/icmp', '1:2:3:4']) assert.throws(() => parsePortMapping(bad), ContainerSpecError, bad);
    const spec = { name: 'x', image: 'i', ports: [], environment: {}, restartPolicy: 'no', labels: {}, stopTimeoutSeconds: 1 } as const;
    assert.throws(() => createOptionsFor({ ...spec, volumes: ['/only-source'] }), ContainerSpecError);
    assert.throws(() => createOptionsFor({ ...spec, volumes: ['/a:relative'] }), ContainerSpecError);
    assert.deepEqual(createOptionsFor({ ...spec, volumes: [] }).HostConfig?.RestartPolicy, { Name: '' });
  });

  it('maps inspect bodies to ContainerInfo', () => {
    const base = {
      Id: 'abc',
      Name: '/ingest',
      Created: '2026-01-01T00:00:00Z',
      Config: { Image: 'reg/x:v1', Labels: { a: 'b' } },
    };
    const running = containerInfoFrom({ ...base, RestartCount: 2, State: { Status: 'running', Running: true, ExitCode: 0, StartedAt: '2026-01-01T00:00:05.5Z', Health: { Status: 'healthy' } } } as unknown as ContainerInspectInfo);
    assert.deepEqual(running, {
      id: 'abc',
      name: 'ingest',
      image: 'reg/x:v1',
      running: true,
      state: 'running',
      restartCount: 2,
      startedAt: Date.parse('2026-01-01T00:00:05.5Z'),
      health: 'healthy',
      labels: { a: 'b' },
      createdAt: '2026-01-01T00:00:00Z',
    });
    assert.equal(running.restartPolicy, undefined, 'not known when the inspect does not say');
    const none = containerInfoFrom({ ...base, HostConfig: { RestartPolicy: { Name: '' } }, State: { Status: 'running', Running: true, ExitCode: 0, StartedAt: '2026-01-01T00:00:05Z' } } as unknown as ContainerInspectInfo);
    assert.equal(none.restartPolicy, 'no');
    const exited = containerInfoFrom({ ...base, State: { Status: 'exited', Running: false, ExitCode: 3, StartedAt: '2026-01-01T00:00:05Z' } } as unknown as ContainerInspectInfo);
    assert.equal(exited.health, 'none');
    assert.equal(exited.exitCode, 3);
    assert.equal(exited.state, 'exited');
    // The engine's zero time for a container never started is no start at all.
    const created = containerInfoFrom({ ...base, State: { Status: 'created', Running: false, ExitCode: 0, StartedAt: '0001-01-01T00:00:00Z' } } as unknown as ContainerInspectInfo);
    assert.equal(created.state, 'created');
    assert.equal(created.startedAt, undefined);
    const always = containerInfoFrom({ ...base, HostConfig: { RestartPolicy: { Name: 'unless-stopped' } }, State: { Status: 'running', Running: true, ExitCode: 0, StartedAt: '2026-01-01T00:00:05Z' } } as unknown as ContainerInspectInfo);
    assert.equal(always.restartPolicy, 'unless-stopped');
    assert.deepEqual(labelFilter({ a: 'b', c: 'd' }), { label: ['a=b', 'c=d'] });
  });

  it('classifies the registry reasons the engine passes on', () => {
    assert.equal(classifyPullFailure('Head "http://10.77.0.1:5000/v2/data/ingest/manifests/v2": no basic auth credentials'), 'unauthorised');
    assert.equal(classifyPullFailure('unauthorized: authentication required'), 'unauthorised');
    assert.equal(classifyPullFailure('manifest for 10.77.0.1:5000/data/nope:v9 not found: manifest unknown'), 'not-found');
    assert.equal(classifyPullFailure('Get "http://10.77.0.1:5000/v2/": dial tcp 10.77.0.1:5000: connect: connection refused'), 'unreachable');
    assert.equal(classifyPullFailure('filesystem layer verification failed for digest sha256:4015aa'), 'other');
    assert.equal(progressEventError({ status: 'Downloading' }), undefined);
    assert.equal(progressEventError({ errorDetail: { message: 'boom' }, error: 'boom' }), 'boom');
  });
});
