import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Fleet } from '../../local-fleet/fleet.js';
import { parseWorkerConfig, type WorkerConfig } from '../../src/config/worker-config.js';
import { TEST_KEY, TEST_KEY_ENV } from './worker-fixtures.js';

export const CHAT_ENV = 'HARBORMASTER_TEST_CHAT_WEBHOOK';
export const REGISTRY_PASSWORD_ENV = 'HARBORMASTER_TEST_REGISTRY_PASSWORD';

/** The worker configuration ops would write for the local fleet's staging target. */
export function fleetWorkerConfigObject(fleet: Fleet, rollout: Record<string, unknown> = {}, policy: Record<string, unknown> = {}) {
  const aws = fleet.aws;
  return {
    aws: { region: aws.region, endpoint: aws.endpoint },
    queue: { url: aws.queueUrl, deadLetterUrl: aws.deadLetterUrl, waitSeconds: 1, visibilityTimeoutSeconds: 60 },
    signing: { keys: [{ id: TEST_KEY.id, env: TEST_KEY_ENV }], maxAgeSeconds: 600 },
    stateDirectory: mkdtempSync(join(tmpdir(), 'harbormaster-state-')),
    log: { level: 'debug' },
    ssh: { user: fleet.ssh.user, privateKey: { file: fleet.ssh.privateKeyPath }, knownHostsFile: fleet.ssh.knownHostsPath, connectTimeoutSeconds: 5 },
    chat: { webhook: { env: CHAT_ENV }, retryWindowSeconds: 120 },
    releases: [
      {
        stack: 'data',
        release: 'ingest',
        deployments: ['staging'],
        personal: { users: ['alice'], deployment: 'personal-{user}' },
        images: { allowedRepositories: [`${fleet.registry.address}/data/ingest`] },
        rollout: {
          container: {
            name: 'ingest',
            ports: ['8080:8080'],
            environment: { APP_ENV: 'staging' },
            restartPolicy: 'unless-stopped',
            labels: { team: 'data' },
            stopTimeoutSeconds: 5,
          },
          health: { port: 8080, path: '/health', timeoutSeconds: 20, intervalMs: 200 },
          smoke: { port: 8080, path: '/version', expectStatus: 200 },
          // One configuration for every deployment: the fleet names each deployment's resources data-ingest-<deployment>.
          loadBalancers: { classic: ['data-ingest-{deployment}'], targetGroups: ['data-ingest-{deployment}'], drainTimeoutSeconds: 5, inServiceTimeoutSeconds: 20 },
          autoScaling: { groups: ['data-ingest-{deployment}'] },
          alarms: ['data-ingest-{deployment}-5xx', 'data-ingest-{deployment}-latency'],
          registry: { username: fleet.registry.username, password: { env: REGISTRY_PASSWORD_ENV } },
          policy: { onFailure: 'host', ...policy },
          ...rollout,
        },
      },
    ],
  };
}

export function fleetWorkerConfig(fleet: Fleet, rollout: Record<string, unknown> = {}, policy: Record<string, unknown> = {}): WorkerConfig {
  return parseWorkerConfig(stringify(fleetWorkerConfigObject(fleet, rollout, policy)));
}

export function writeFleetWorkerConfig(fleet: Fleet, path: string, rollout: Record<string, unknown> = {}): void {
  writeFileSync(path, stringify(fleetWorkerConfigObject(fleet, rollout)));
}

export function fleetWorkerEnvironment(fleet: Fleet): NodeJS.ProcessEnv {
  return {
    ...process.env,
    [TEST_KEY_ENV]: TEST_KEY.secret.toString(),
    [CHAT_ENV]: fleet.chat.url,
    [REGISTRY_PASSWORD_ENV]: fleet.registry.password,
    AWS_ACCESS_KEY_ID: fleet.aws.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: fleet.aws.credentials.secretAccessKey,
  };
}
