import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { formatIssues } from '../request/release-request.js';
import { resourceName, userName } from '../request/names.js';
import { secretSourceSchema, withSecretSource } from './secret-source.js';
import { environmentSchema } from './environment-source.js';
import { deploymentEntry, splitDeployments } from './deployments.js';
import { registryAddressSchema } from '../registry/registry-address.js';
import { DEFAULT_SUSPENDED_PROCESSES, SCALING_PROCESSES } from '../autoscaling/process-names.js';

// The worker's configuration: everything about how a release runs lives here, on the bastion, never
// in the (untrusted) request. Unknown keys are refused so a typo is an error at start, not a silent default.

const seconds = (label: string, min: number, max: number) =>
  z.number({ invalid_type_error: `${label} must be a number of seconds` }).int().min(min).max(max);

/**
 * What a key may release. Without a scope a key may release every target the worker serves except the
 * deployments marked protected; with one, only the deployments it lists (protected or not) and personal
 * deployments if `personal: true`, of the releases it lists (`stack/release`; all served releases when absent).
 */
const keyScope = z
  .object({
    releases: z.array(z.string().regex(/^[a-z][a-z0-9-]*\/[a-z][a-z0-9-]*$/, 'a release in a key scope is written stack/release')).min(1).optional(),
    deployments: z.array(resourceName('scope.deployments[]')).default([]),
    personal: z.boolean().default(false),
  })
  .strict()
  .refine((scope) => scope.deployments.length > 0 || scope.personal, 'a key scope allows nothing: list deployments, or set personal: true');

const keyEntry = withSecretSource({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'key id must match [A-Za-z0-9._-], at most 64'),
  scope: keyScope.optional(),
});

export type KeyScope = z.infer<typeof keyScope>;

/** A count of hosts (2) or a share of them ("25%"). */
const hostCount = z.union([z.number().int().min(0), z.string().regex(/^(100|[1-9]?[0-9])%$/, 'a share is written like "25%"')]);

const containerSettings = z
  .object({
    /** The live container's name on every host. */
    name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/),
    ports: z.array(z.string().regex(/^(\d{1,5}:)?\d{1,5}(\/(tcp|udp))?$/, 'a port is "hostPort:containerPort[/udp]"')).default([]),
    /** Plain values, or {env}, {file}, {ssm}, {secret[, key]}: read at each release, never recorded (environment-source.ts). */
    environment: environmentSchema.default({}),
    /** Bind mounts "source:target[:ro]", e.g. /dev/log:/dev/log for syslog. */
    volumes: z.array(z.string().regex(/^\/[^:]*:\/[^:]*(:(ro|rw))?$/, 'a volume is "/source:/target[:ro]"')).default([]),
    restartPolicy: z.enum(['no', 'always', 'unless-stopped', 'on-failure']).default('unless-stopped'),
    labels: z.record(z.string()).default({}),
    stopTimeoutSeconds: seconds('stopTimeoutSeconds', 0, 600).default(10),
  })
  .strict();

const httpCheck = z
  .object({
    /** The port probed on the host's address, from the bastion: the host side of a published port (`ports: ["HOST:CONTAINER"]`). */
    port: z.number().int().min(1).max(65535),
    path: z.string().startsWith('/').default('/health'),
    expectStatus: z.number().int().min(100).max(599).default(200),
    expectBodyContains: z.string().optional(),
  })
  .strict();

/**
 * How the hosts' engines log in to the registry for a pull: a user and a password (a secret source),
 * or Amazon ECR (`ecr: true`), whose token the worker asks for with GetAuthorizationToken and
 * renews before it expires (src/registry/ecr-credentials.ts). Either is sent to `address` alone
 * (required with a password; for ECR, default the registry ECR names with its token).
 */
const registrySettings = z
  .object({
    address: registryAddressSchema.optional(),
    username: z.string().min(1).optional(),
    password: secretSourceSchema.optional(),
    ecr: z.literal(true, { errorMap: () => ({ message: 'ecr is true (or left out for a username and password)' }) }).optional(),
    /** ECR's region; default aws.region. */
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'region must look like us-west-2').optional(),
    /** The account whose registry holds the images; default the worker's own account. */
    registryId: z.string().regex(/^\d{12}$/, 'registryId is an AWS account id (12 digits)').optional(),
  })
  .strict()
  .superRefine((registry, ctx) => {
    const login = registry.username !== undefined || registry.password !== undefined;
    if (registry.ecr && login) {
      ctx.addIssue({ code: 'custom', message: 'registry takes either ecr: true or username and password, not both' });
    } else if (!registry.ecr && (registry.username === undefined || registry.password === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'registry needs username and password (a secret source), or ecr: true for Amazon ECR' });
    }
    if (!registry.ecr && registry.address === undefined) {
      ctx.addIssue({ code: 'custom', path: ['address'], message: 'registry.address names the registry the password is for, host[:port] as image references name it (registry.internal:5000): the credentials are sent to it alone' });
    }
    if (!registry.ecr && (registry.region !== undefined || registry.registryId !== undefined)) {
      ctx.addIssue({ code: 'custom', message: 'region and registryId are only for ecr: true' });
    }
  });

/** A unix socket path on the hosts. */
const socketPath = z.string().regex(/^\/[A-Za-z0-9._\/-]+$/, 'an engine socket is an absolute path such as /var/run/docker.sock');

const rolloutSettings = z
  .object({
    container: containerSettings,
    /** The release's hosts' engine socket, over ssh.engineSocket. */
    engineSocket: socketPath.optional(),
    health: httpCheck
      .extend({
        timeoutSeconds: seconds('timeoutSeconds', 1, 3600).default(60),
        /** The slowest the probe is polled while a host is out of service: it starts at 25 ms and backs off to this. */
        intervalMs: z.number().int().min(50).max(60_000).default(500),
        /**
         * Also wait for the image's own HEALTHCHECK verdict (when it has one) before the host goes back
         * into service. Off by default: the probe above is the application's answer, and Docker's
         * verdict comes only after the image's HEALTHCHECK interval (30 s unless the image sets it).
         */
        waitForDocker: z.boolean().default(false),
      })
      .strict(),
    /** Checked once after health, before the host goes back into service. */
    smoke: httpCheck.optional(),
    loadBalancers: z
      .object({
        // Names may hold {deployment}, so one release's configuration serves every deployment.
        classic: z.array(z.string().min(1)).default([]),
        /** Target group ARNs or names. */
        targetGroups: z.array(z.string().min(1)).default([]),
        /** Longest wait for draining; default the load balancer's own draining timeout. */
        drainTimeoutSeconds: seconds('drainTimeoutSeconds', 0, 3600).optional(),
        /** Longest wait to be reported in service; default derived from the health check settings. */
        inServiceTimeoutSeconds: seconds('inServiceTimeoutSeconds', 1, 3600).optional(),
      })
      .strict()
      .default({}),
    autoScaling: z
      .object({
        /** Groups to suspend; the groups the instances belong to are added when discover is on. */
        groups: z.array(z.string().min(1)).default([]),
        discover: z.boolean().default(true),
        suspendProcesses: z.array(z.enum(SCALING_PROCESSES)).default([...DEFAULT_SUSPENDED_PROCESSES]),
      })
      .strict()
      .default({}),
    /** Alarms muted during the release (their actions); their state is still watched (policy.onAlarm). */
    alarms: z.array(z.string().min(1)).default([]),
    /**
     * A one-off container of the new image (with the container's environment and volumes) run once per
     * release on one host, after the pre-pull and before any host leaves service; a non-zero exit
     * refuses the release. Not run again after a crash unless `idempotent`: the release then stops for a person.
     */
    releaseTask: z
      .object({
        command: z.array(z.string().min(1)).min(1, 'releaseTask.command names the program to run, e.g. ["bin/migrate"]'),
        timeoutSeconds: seconds('timeoutSeconds', 1, 24 * 3600).default(600),
        idempotent: z.boolean().default(false),
      })
      .strict()
      .optional(),
    /** Hosts that join a target between releases get its current release: looked for every periodSeconds. */
    newHosts: z.object({ periodSeconds: seconds('periodSeconds', 5, 86_400).default(60) }).strict().optional(),
    /** More alarms watched during the release and its bakes, not muted. */
    watch: z.array(z.string().min(1)).default([]),
    alarmMuting: z
      .object({
        /**
         * mute-rule: a CloudWatch alarm mute rule that expires on its own unless the release keeps
         * moving it forward (a dead worker cannot leave alerting off); disable-actions: the alarms'
         * actions disabled and enabled again, for where mute rules are not available.
         */
        mode: z.enum(['mute-rule', 'disable-actions']).default('mute-rule'),
        /** How far ahead the mute rule reaches; renewed every third of it. */
        windowMinutes: z.number().int().min(1).max(24 * 60).default(15),
      })
      .strict()
      .default({}),
    policy: z
      .object({
        /** Hosts out of service at once. */
        batchSize: hostCount.default(1),
        /** Hosts that must stay in service; default: all but one batch. */
        minHealthy: hostCount.optional(),
        /** host: put the failing host back and stop; all: also roll back the hosts already done. */
        onFailure: z.enum(['host', 'all']).default('host'),
        /** Previous containers kept per host for rollback. */
        keepOldContainers: z.number().int().min(1).max(10).default(2),
        pullConcurrency: z.number().int().min(1).max(64).default(8),
        /**
         * Seconds the new image runs at preflight on the first host, beside the live container (no
         * ports, no network, no volumes, no restart), to show it does not exit at start; 0 (the default)
         * skips it. It runs the image's entrypoint with the configured environment: opt in only for
         * images whose start has no side effects (migrations, queue consumers).
         */
        startCheckSeconds: z.number().min(0).max(60).default(0),
        /** Going forward, how long a host that cannot be reached (or whose engine does not answer) is tried again before it fails. */
        hostRetrySeconds: seconds('hostRetrySeconds', 0, 3600).default(60),
        /** Going back, how long a host's failing step is tried again before the host is left for a person. */
        rollbackRetrySeconds: seconds('rollbackRetrySeconds', 10, 86_400).default(600),
        /** Past this, the release stops going forward: the hosts in progress go back and it ends rolled back. */
        releaseTimeoutMinutes: z.number().int().min(1).max(24 * 60).default(120),
        /**
         * Canary steps, in order (src/rollout/steps.ts): `{hosts: N}` N more hosts, `{percent: P}` up to P%
         * of the target in all, `{bakeSeconds: S}` wait and watch, `{pause: true}` wait for
         * `harbormaster promote`. Hosts left after the last step follow in batches. Default: no steps.
         */
        /** A watched alarm (rollout.alarms and rollout.watch) entering ALARM: rollback turns the release back, every released host with it; stop stops it at the next safe point. */
        onAlarm: z.enum(['rollback', 'stop']).default('rollback'),
        /** A watched alarm already in ALARM when the release starts: refuse the release, or ignore that alarm until it has left ALARM. */
        alarmAtStart: z.enum(['refuse', 'ignore']).default('refuse'),
        /** How often the watched alarms are read. */
        watchIntervalSeconds: seconds('watchIntervalSeconds', 1, 300).default(10),
        /** Alarm states that cannot be read for longer than this stop the release at its next safe point; 0: never. */
        alarmUnreadableSeconds: seconds('alarmUnreadableSeconds', 0, 86_400).default(120),
        steps: z
          .array(
            z.union([
              z.object({ hosts: z.number().int().min(1).max(10_000) }).strict(),
              z.object({ percent: z.number().gt(0).max(100) }).strict(),
              z.object({ bakeSeconds: seconds('bakeSeconds', 1, 86_400) }).strict(),
              z.object({ pause: z.literal(true) }).strict(),
            ]),
            { errorMap: () => ({ message: 'each step is one of {hosts: N}, {percent: P}, {bakeSeconds: S} or {pause: true}' }) },
          )
          .max(50)
          .optional(),
      })
      .strict()
      .default({}),
    registry: registrySettings.optional(),
  })
  .strict();

const releaseEntry = z
  .object({
    stack: resourceName('stack'),
    release: resourceName('release'),
    /** The fixed deployments this worker serves for the release: names, or {name, protected: true} (deployments.ts). */
    deployments: z.array(deploymentEntry).default([]),
    personal: z
      .object({
        users: z.array(userName('user')).min(1),
        /** The deployment tag value of a user's personal deployment; `{user}` is replaced. */
        deployment: z.string().regex(/^[a-z0-9{}-]+$/).includes('{user}', { message: 'must contain {user}' }).default('personal-{user}'),
      })
      .strict()
      .optional(),
    images: z
      .object({
        /** Exact repositories (`registry:5000/team/app`) or prefixes (`registry:5000/team/*`). */
        allowedRepositories: z.array(z.string().min(1)).min(1),
      })
      .strict(),
    /** How the release is rolled out; without it the worker accepts requests but cannot release them. */
    rollout: rolloutSettings.optional(),
  })
  .strict()
  .transform(({ deployments, ...entry }) => ({ ...entry, ...splitDeployments(deployments) }));

export const workerConfigSchema = z
  .object({
    aws: z
      .object({
        region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'region must look like us-west-2'),
        /** Only for AWS-compatible servers (moto, LocalStack); unset on AWS. */
        endpoint: z.string().url().optional(),
        /** Deadline of every AWS call (a long poll gets its wait on top). */
        requestTimeoutSeconds: seconds('requestTimeoutSeconds', 1, 300).default(30),
      })
      .strict(),
    queue: z
      .object({
        url: z.string().url(),
        deadLetterUrl: z.string().url(),
        waitSeconds: seconds('waitSeconds', 1, 20).default(20),
        visibilityTimeoutSeconds: seconds('visibilityTimeoutSeconds', 2, 43_200).default(120),
        heartbeatSeconds: seconds('heartbeatSeconds', 1, 43_200).optional(),
        /**
         * A request for a target this worker does not serve is handed back for a worker that does, until
         * it has been delivered this many times; then it is refused (unknown-target). Keep it below the
         * queue's redrive maxReceiveCount.
         */
        unservedDeliveries: z.number().int().min(1).max(100).default(3),
      })
      .strict()
      .refine((q) => q.heartbeatSeconds === undefined || q.heartbeatSeconds < q.visibilityTimeoutSeconds, {
        message: 'heartbeatSeconds must be shorter than visibilityTimeoutSeconds',
        path: ['heartbeatSeconds'],
      }),
    signing: z
      .object({
        keys: z.array(keyEntry).min(1, 'at least one signing key is needed'),
        /** Requests older than this are refused as replays. */
        maxAgeSeconds: seconds('maxAgeSeconds', 10, 7 * 24 * 3600).default(900),
      })
      .strict(),
    /** The file store's records, the worker's lock, and refused messages the dead-letter queue could not take. */
    stateDirectory: z.string().startsWith('/').default('/var/lib/harbormaster'),
    /** Where release records and target leases live: files for one worker, DynamoDB for several. */
    state: z
      .discriminatedUnion('store', [
        z.object({ store: z.literal('file') }).strict(),
        z
          .object({
            store: z.literal('dynamodb'),
            table: z.string().regex(/^[A-Za-z0-9_.-]{3,255}$/, 'a DynamoDB table name is 3-255 of [A-Za-z0-9_.-]'),
            /** Finished records are kept this long (TTL), longer than a duplicate delivery can come (SQS keeps at most 14 days). */
            retentionDays: z.number().int().min(15).max(3650).default(30),
          })
          .strict(),
      ])
      .default({ store: 'file' }),
    /** A target's lease lasts this long unless renewed (every sixth of it); a dead worker's releases are taken over after it. */
    leaseSeconds: seconds('leaseSeconds', 3, 600).default(30),
    /** Releases to different targets run side by side, at most this many; one at a time per target. */
    parallelReleases: z.number().int().min(1).max(64).default(4),
    log: z
      .object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info') })
      .strict()
      .default({}),
    releases: z.array(releaseEntry).min(1, 'at least one release must be served'),
    ssh: z
      .object({
        user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/),
        privateKey: secretSourceSchema,
        /** OpenSSH known_hosts with every host's key: unknown or changed keys are refused. */
        knownHostsFile: z.string().startsWith('/'),
        port: z.number().int().min(1).max(65535).default(22),
        /**
         * The Docker engine's socket on every host, reached over the SSH connection (a stream-local
         * forward; no shell runs). Default: the first of /var/run/docker.sock and /run/docker.sock that
         * answers a ping. Confirmed by a ping on every connection either way.
         */
        engineSocket: socketPath.optional(),
        connectTimeoutSeconds: seconds('connectTimeoutSeconds', 1, 300).default(10),
        /** Deadline of any engine call (a stop gets the container's stop timeout on top). */
        callTimeoutSeconds: seconds('callTimeoutSeconds', 1, 600).default(30),
        /** Deadline of a whole pull, and of a pull that gets no progress from the registry. */
        pullTimeoutSeconds: seconds('pullTimeoutSeconds', 10, 7200).default(600),
        pullStallSeconds: seconds('pullStallSeconds', 5, 3600).default(120),
      })
      .strict()
      .optional(),
    chat: z
      .object({
        /** A Slack incoming webhook or a Mattermost one: one message per event. */
        webhook: secretSourceSchema.optional(),
        /** A Discord webhook: one message per release, edited in place. */
        discord: z.object({ webhook: secretSourceSchema }).strict().optional(),
        /** A Slack app: one message per release kept current, details in its thread. */
        slack: z
          .object({
            /** The bot token (xoxb-...); the app needs the chat:write scope. */
            botToken: secretSourceSchema,
            /** The channel id (C0123...): chat.update takes an id, not a name. */
            channel: z.string().regex(/^[A-Z0-9]{2,32}$/, 'channel must be a Slack channel id such as C0123ABCD'),
            /** The Web API's base URL; only for a local receiver. */
            apiUrl: z.string().url().default('https://slack.com/api'),
            /** CI names (a request's requestedBy) to Slack user ids, mentioned when their release fails. */
            users: z.record(z.string().min(1), z.string().regex(/^[UW][A-Z0-9]{2,32}$/, 'a Slack user id looks like U0123ABCD')).default({}),
          })
          .strict()
          .optional(),
        username: z.string().max(80).optional(),
        retryWindowSeconds: seconds('retryWindowSeconds', 1, 3600).default(600),
      })
      .strict()
      .refine((chat) => [chat.webhook, chat.discord, chat.slack].filter((x) => x !== undefined).length === 1, {
        message: 'chat takes exactly one of webhook, discord or slack',
      })
      .optional(),
    /** GitHub deployments and their statuses for releases whose stack/release maps to a repository. */
    github: z
      .object({
        /** A token allowed to write deployments (fine-grained: Deployments read and write; classic: repo_deployment). */
        token: secretSourceSchema.optional(),
        /** Or a GitHub App (permission Deployments: read and write) installed on the repositories. */
        app: z
          .object({
            appId: z.union([z.string().regex(/^\d+$/), z.number().int().positive()]).transform(String),
            installationId: z.union([z.string().regex(/^\d+$/), z.number().int().positive()]).transform(String),
            /** The app's private key (PEM), a secret source. */
            privateKey: secretSourceSchema,
          })
          .strict()
          .optional(),
        /** "stack/release" to "owner/repository". */
        repositories: z.record(
          z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'a key is "stack/release"'),
          z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'a repository is "owner/name"'),
        ),
        /** The REST API's base URL (GitHub Enterprise Server: https://HOST/api/v3). */
        apiUrl: z.string().url().default('https://api.github.com'),
      })
      .strict()
      .refine((github) => (github.token === undefined) !== (github.app === undefined), { message: 'github takes exactly one of token or app' })
      .optional(),
    /** Prometheus metrics and /healthz; off unless a port is given. */
    metrics: z
      .object({
        port: z.number().int().min(1).max(65535),
        /** The address listened on: the loopback unless set (the bastion's private address, or 0.0.0.0, for a Prometheus elsewhere). */
        host: z
          .string()
          .regex(/^[A-Za-z0-9.:-]{1,253}$/, 'metrics.host is an address to listen on: 127.0.0.1 (the default), the bastion\'s private address, or 0.0.0.0 for every interface')
          .default('127.0.0.1'),
        /** /healthz answers 503 once the last successful poll of the queue is older than this. */
        healthyPollSeconds: seconds('healthyPollSeconds', 30, 86_400).default(300),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.releases.forEach((entry, index) => {
      const key = `${entry.stack}/${entry.release}`;
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['releases', index], message: `${key} is configured twice` });
      seen.add(key);
      if (entry.deployments.length === 0 && !entry.personal) {
        ctx.addIssue({ code: 'custom', path: ['releases', index], message: 'serves no deployment: list deployments or configure personal' });
      }
    });
    if (config.releases.some((r) => r.rollout) && !config.ssh) {
      ctx.addIssue({ code: 'custom', path: ['ssh'], message: 'ssh is required to roll releases out' });
    }
    const ids = config.signing.keys.map((k) => k.id);
    if (new Set(ids).size !== ids.length) ctx.addIssue({ code: 'custom', path: ['signing', 'keys'], message: 'key ids must be unique' });
  });

export type WorkerConfig = z.infer<typeof workerConfigSchema>;
export type ReleaseConfig = WorkerConfig['releases'][number];
export type RolloutSettings = NonNullable<ReleaseConfig['rollout']>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function parseWorkerConfig(text: string, origin = 'configuration'): WorkerConfig {
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) throw new ConfigError(`${origin}: not valid YAML: ${document.errors[0]!.message}`);
  const parsed = workerConfigSchema.safeParse(document.toJS() ?? {});
  if (!parsed.success) throw new ConfigError(`${origin}: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

export function loadWorkerConfig(path: string): WorkerConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read configuration ${path}: ${(error as Error).message}`);
  }
  return parseWorkerConfig(text, path);
}

export function heartbeatSeconds(queue: WorkerConfig['queue']): number {
  return queue.heartbeatSeconds ?? Math.max(1, Math.floor(queue.visibilityTimeoutSeconds / 3));
}
