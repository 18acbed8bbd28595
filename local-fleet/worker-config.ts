import type { Fleet } from './fleet.js';

// The worker configuration ops would write for the local fleet, in one place for the tests, the
// local release and the benchmark. One release entry serves every deployment: the fleet names each
// deployment's load balancer, target group, Auto Scaling group and alarms data-ingest-<deployment>.

/** Where the worker reads the fleet's secrets from: the environment, as on a bastion. */
export const FLEET_SECRET_ENV = {
  chatWebhook: 'HARBORMASTER_FLEET_CHAT_WEBHOOK',
  slackToken: 'HARBORMASTER_FLEET_SLACK_TOKEN',
  registryPassword: 'HARBORMASTER_FLEET_REGISTRY_PASSWORD',
} as const;

export interface FleetWorkerOptions {
  /** The signing key the worker accepts: its id and the variable holding it. */
  readonly signingKey: { readonly id: string; readonly env: string };
  readonly stateDirectory: string;
  /** Replaces whole entries of the release's rollout section (health, smoke, ...). */
  readonly rollout?: Record<string, unknown>;
  /** Merged into the rollout policy. */
  readonly policy?: Record<string, unknown>;
  readonly logLevel?: string;
  /** The fixed deployments served; default staging. */
  readonly deployments?: readonly string[];
  /** Release records and leases in the fleet's DynamoDB table (several workers), rather than files. */
  readonly sharedState?: boolean;
  readonly leaseSeconds?: number;
  readonly parallelReleases?: number;
  /** The account the worker logs in as; default the fleet's deploy user. */
  readonly sshUser?: string;
  /** webhook (the default): one message per event; slack-app: the Slack Web API, one message per release with a thread. */
  readonly chat?: 'webhook' | 'slack-app';
  /** Serves /metrics and /healthz on this port of the loopback. */
  readonly metricsPort?: number;
}

export function fleetWorkerConfigObject(fleet: Fleet, options: FleetWorkerOptions) {
  const aws = fleet.aws;
  return {
    aws: { region: aws.region, endpoint: aws.endpoint },
    queue: { url: aws.queueUrl, deadLetterUrl: aws.deadLetterUrl, waitSeconds: 1, visibilityTimeoutSeconds: 60 },
    signing: { keys: [options.signingKey], maxAgeSeconds: 600 },
    stateDirectory: options.stateDirectory,
    ...(options.sharedState ? { state: { store: 'dynamodb', table: aws.releaseTable } } : {}),
    ...(options.leaseSeconds !== undefined ? { leaseSeconds: options.leaseSeconds } : {}),
    ...(options.parallelReleases !== undefined ? { parallelReleases: options.parallelReleases } : {}),
    log: { level: options.logLevel ?? 'info' },
    ssh: { user: options.sshUser ?? fleet.ssh.user, privateKey: { file: fleet.ssh.privateKeyPath }, knownHostsFile: fleet.ssh.knownHostsPath, engineSocket: fleet.ssh.engineSocket, connectTimeoutSeconds: 5 },
    chat:
      options.chat === 'slack-app'
        ? { slack: { botToken: { env: FLEET_SECRET_ENV.slackToken }, channel: 'C0LOCAL', apiUrl: fleet.chat.slackApiUrl, users: { 'local-ci': 'U0LOCALCI' } }, retryWindowSeconds: 120 }
        : { webhook: { env: FLEET_SECRET_ENV.chatWebhook }, retryWindowSeconds: 120 },
    ...(options.metricsPort !== undefined ? { metrics: { port: options.metricsPort, host: '127.0.0.1' } } : {}),
    releases: [
      {
        stack: 'data',
        release: 'ingest',
        deployments: [...(options.deployments ?? ['staging'])],
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
          loadBalancers: { classic: ['data-ingest-{deployment}'], targetGroups: ['data-ingest-{deployment}'], drainTimeoutSeconds: 5, inServiceTimeoutSeconds: 20 },
          autoScaling: { groups: ['data-ingest-{deployment}'] },
          alarms: ['data-ingest-{deployment}-5xx', 'data-ingest-{deployment}-latency'],
          registry: { address: fleet.registry.address, username: fleet.registry.username, password: { env: FLEET_SECRET_ENV.registryPassword } },
          policy: { onFailure: 'host', ...options.policy },
          ...options.rollout,
        },
      },
    ],
  };
}

/** The worker's environment on the fleet: its secrets, and credentials moto accepts. */
export function fleetWorkerEnvironment(fleet: Fleet, signingKey: { readonly env: string; readonly secret: string }): NodeJS.ProcessEnv {
  return {
    ...process.env,
    [signingKey.env]: signingKey.secret,
    [FLEET_SECRET_ENV.chatWebhook]: fleet.chat.url,
    [FLEET_SECRET_ENV.slackToken]: fleet.chat.slackToken,
    [FLEET_SECRET_ENV.registryPassword]: fleet.registry.password,
    AWS_ACCESS_KEY_ID: fleet.aws.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: fleet.aws.credentials.secretAccessKey,
  };
}
