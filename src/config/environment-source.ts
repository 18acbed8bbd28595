import { z } from 'zod';

// A container's environment in the worker's configuration: each variable a plain value, or a source
// the value is read from at each release: an environment variable or a file of the worker's (as for
// every secret of the worker), an SSM parameter, or a Secrets Manager secret (optionally one key of
// a JSON secret). Only the sources are configuration; the values are read by the release that uses
// them and kept out of its record.

/** An SSM parameter name (`/app/db-password`, `app.db`) or its ARN. */
const ssmName = z
  .string()
  .max(2048)
  .regex(/^(arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter\/[A-Za-z0-9_.\-/]+|\/?[A-Za-z0-9_.\-/]+)$/, 'ssm must be a parameter name such as /app/db-password, or its ARN');
/** A secret's name (`app/api-key`) or its ARN. */
const secretId = z
  .string()
  .max(2048)
  .regex(/^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+|[A-Za-z0-9/_+=.@-]{1,512})$/, 'secret must be a secret name such as app/api-key, or its ARN');

export const environmentSourceSchema = z
  .object({
    env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'env must be an environment variable name').optional(),
    file: z.string().startsWith('/', 'file must be an absolute path').optional(),
    ssm: ssmName.optional(),
    secret: secretId.optional(),
    /** With secret: the secret is a JSON object and the value is this key's. */
    key: z.string().min(1).max(256).optional(),
  })
  .strict()
  .refine((s) => [s.env, s.file, s.ssm, s.secret].filter((x) => x !== undefined).length === 1, {
    message: 'a value read from elsewhere takes exactly one of env: VARIABLE, file: /absolute/path, ssm: PARAMETER or secret: NAME_OR_ARN',
  })
  .refine((s) => s.key === undefined || s.secret !== undefined, { message: 'key is only for secret: (one key of a JSON secret)', path: ['key'] });

export type EnvironmentSource = z.infer<typeof environmentSourceSchema>;

export const environmentSchema = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name is letters, digits and _'),
  z.union([z.string(), environmentSourceSchema], { errorMap: () => ({ message: 'a value is a string, or one of {env}, {file}, {ssm}, {secret}' }) }),
);

export type EnvironmentSetting = z.infer<typeof environmentSchema>;

/** What a source names, for refusals and logs: never a value. */
export function describeEnvironmentSource(source: EnvironmentSource): string {
  if (source.env !== undefined) return `environment variable ${source.env}`;
  if (source.file !== undefined) return `file ${source.file}`;
  if (source.ssm !== undefined) return `SSM parameter ${source.ssm}`;
  return `secret ${source.secret}${source.key !== undefined ? ` key ${source.key}` : ''}`;
}

/**
 * The configured environment as the container spec carries it: the plain values, and the sources of
 * the others (names only), resolved when a container is started.
 */
export function splitEnvironment(setting: EnvironmentSetting): { environment: Record<string, string>; environmentSources?: Record<string, EnvironmentSource> } {
  const environment: Record<string, string> = {};
  const sources: Record<string, EnvironmentSource> = {};
  for (const [name, value] of Object.entries(setting)) {
    if (typeof value === 'string') environment[name] = value;
    else sources[name] = value;
  }
  return Object.keys(sources).length > 0 ? { environment, environmentSources: sources } : { environment };
}
