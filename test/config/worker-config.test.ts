import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError, heartbeatSeconds, parseWorkerConfig } from '../../src/config/worker-config.js';
import { workerConfigObject } from '../support/worker-fixtures.js';

const queues = { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/dlq' };
const base = () => workerConfigObject('http://127.0.0.1:1', queues) as Record<string, any>;

function refusal(mutate: (config: Record<string, any>) => void): string {
  const config = base();
  mutate(config);
  try {
    parseWorkerConfig(stringify(config), 'worker.yml');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  assert.fail('configuration was accepted');
}

describe('worker configuration', () => {
  it('accepts a complete configuration and fills defaults', () => {
    const config = base();
    delete config.queue.waitSeconds;
    const parsed = parseWorkerConfig(stringify(config));
    assert.equal(parsed.queue.waitSeconds, 20);
    assert.equal(parsed.log.level, 'info');
    assert.equal(heartbeatSeconds(parsed.queue), 10);
  });

  it('refuses unknown keys with their path', () => {
    assert.match(refusal((c) => (c.queue.visibilityTimout = 60)), /^worker\.yml: queue: unknown field\(s\) 'visibilityTimout'/);
    assert.match(refusal((c) => (c.releases[0].image = {})), /releases\.0: unknown field\(s\) 'image'/);
  });

  it('refuses a secret written inline instead of a source', () => {
    assert.match(refusal((c) => (c.signing.keys[0] = { id: 'ci', secret: 'hunter2-hunter2-hunter2-hunter2-hunter2' })), /signing\.keys\.0: unknown field\(s\) 'secret'/);
    assert.match(refusal((c) => (c.signing.keys[0] = { id: 'ci', env: 'A', file: '/b' })), /exactly one/);
  });

  it('refuses bad values with their path', () => {
    assert.match(refusal((c) => (c.queue.waitSeconds = 30)), /queue\.waitSeconds/);
    assert.match(refusal((c) => (c.queue.heartbeatSeconds = 60)), /queue\.heartbeatSeconds: heartbeatSeconds must be shorter/);
    assert.match(refusal((c) => (c.releases[0].stack = 'Data')), /releases\.0\.stack: stack must be lowercase/);
    assert.match(refusal((c) => c.releases.push(c.releases[0])), /data\/ingest is configured twice/);
    assert.match(refusal((c) => (c.aws.region = 'mars')), /aws\.region/);
  });

  it('reads a deployment as a name or as {name, protected}, and refuses other shapes naming the rule', () => {
    const config = base();
    config.releases[0].deployments = ['staging', { name: 'production', protected: true }, { name: 'qa', protected: false }];
    const release = parseWorkerConfig(stringify(config)).releases[0]!;
    assert.deepEqual(release.deployments, ['staging', 'production', 'qa']);
    assert.deepEqual(release.protectedDeployments, ['production']);
    assert.deepEqual(parseWorkerConfig(stringify(base())).releases[0]!.protectedDeployments, [], 'none unless marked');
    assert.match(refusal((c) => (c.releases[0].deployments = [5])), /releases\.0\.deployments\.0: a deployment is a name \(staging\) or \{name: production, protected: true\}/);
    assert.match(refusal((c) => (c.releases[0].deployments = [{ name: 'production', protect: true }])), /releases\.0\.deployments\.0: unknown field\(s\) 'protect'/);
    assert.match(refusal((c) => (c.releases[0].deployments = ['Prod'])), /releases\.0\.deployments\.0\.name: deployment must be lowercase/);
  });

  it('listens for /metrics on the loopback unless metrics.host says otherwise', () => {
    const config = base();
    config.metrics = { port: 9464 };
    assert.equal(parseWorkerConfig(stringify(config)).metrics?.host, '127.0.0.1');
    config.metrics = { port: 9464, host: '10.0.1.5' };
    assert.equal(parseWorkerConfig(stringify(config)).metrics?.host, '10.0.1.5');
    assert.match(refusal((c) => (c.metrics = { port: 9464, host: 'http://x/' })), /metrics\.host: metrics\.host is an address to listen on: 127\.0\.0\.1 \(the default\)/);
  });

  it('accepts the example configuration shipped in deploy/', () => {
    const example = parseWorkerConfig(readFileSync(new URL('../../deploy/worker.example.yml', import.meta.url), 'utf8'), 'worker.example.yml');
    assert.deepEqual(example.releases[0]!.rollout!.autoScaling.suspendProcesses, ['AZRebalance', 'HealthCheck', 'ReplaceUnhealthy', 'ScheduledActions', 'Terminate']);
    assert.equal(example.releases[0]!.rollout!.container.volumes[0], '/dev/log:/dev/log');
  });

  it('requires ssh when a release has a rollout', () => {
    const config = base();
    config.releases[0].rollout = { container: { name: 'ingest' }, health: { port: 8080 } };
    assert.throws(() => parseWorkerConfig(stringify(config), 'w.yml'), /ssh: ssh is required to roll releases out/);
  });

  it('refuses YAML that is not YAML, or has duplicate keys', () => {
    assert.throws(() => parseWorkerConfig('queue: [', 'w.yml'), /w\.yml: not valid YAML/);
    assert.throws(() => parseWorkerConfig('log: {}\nlog: {}\n', 'w.yml'), /not valid YAML/);
  });
});
