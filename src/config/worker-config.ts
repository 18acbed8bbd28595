import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { formatIssues } from '../request/release-request.js';
import { resourceName, userName } from '../request/names.js';
import { withSecretSource } from './secret-source.js';

// The worker's configuration: everything about how a release runs lives here, on the bastion, never
// in the (untrusted) request. Unknown keys are refused so a typo is an error at start, not a silent default.

const seconds = (label: string, min: number, max: number) =>
  z.number({ invalid_type_error: `${label} must be a number of seconds` }).int().min(min).max(max);

const keyEntry = withSecretSource({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'key id must match [A-Za-z0-9._-], at most 64'),
});

const releaseEntry = z
  .object({
    stack: resourceName('stack'),
    release: resourceName('release'),
    /** The fixed deployments this worker serves for the release. */
    deployments: z.array(resourceName('deployment')).default([]),
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
  })
  .strict();

export const workerConfigSchema = z
  .object({
    aws: z
      .object({
        region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'region must look like us-west-2'),
        /** Only for AWS-compatible servers (moto, LocalStack); unset on AWS. */
        endpoint: z.string().url().optional(),
      })
      .strict(),
    queue: z
      .object({
        url: z.string().url(),
        deadLetterUrl: z.string().url(),
        waitSeconds: seconds('waitSeconds', 1, 20).default(20),
        visibilityTimeoutSeconds: seconds('visibilityTimeoutSeconds', 2, 43_200).default(120),
        heartbeatSeconds: seconds('heartbeatSeconds', 1, 43_200).optional(),
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
    /** Where the worker remembers finished releases (duplicates are refused across restarts). */
    stateDirectory: z.string().startsWith('/').default('/var/lib/harbormaster'),
    log: z
      .object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info') })
      .strict()
      .default({}),
    releases: z.array(releaseEntry).min(1, 'at least one release must be served'),
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
    const ids = config.signing.keys.map((k) => k.id);
    if (new Set(ids).size !== ids.length) ctx.addIssue({ code: 'custom', path: ['signing', 'keys'], message: 'key ids must be unique' });
  });

export type WorkerConfig = z.infer<typeof workerConfigSchema>;
export type ReleaseConfig = WorkerConfig['releases'][number];

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
