import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';

// Secrets never sit in the configuration file or on a command line: the configuration only says where
// to read them from, an environment variable or a file (such as a systemd credential or a mounted secret).

const sourceFields = {
  env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'env must be an environment variable name').optional(),
  file: z.string().startsWith('/', 'file must be an absolute path').optional(),
};
const exactlyOne = (value: { env?: string; file?: string }) => (value.env === undefined) !== (value.file === undefined);
const exactlyOneMessage = 'a secret is given as env: VARIABLE or file: /absolute/path (exactly one), never inline';

/** A secret's source, with any other fields of the object that holds it (a key's id, say). */
export function withSecretSource<T extends z.ZodRawShape>(shape: T) {
  return z.object({ ...shape, ...sourceFields }).strict().refine(exactlyOne, exactlyOneMessage);
}

export const secretSourceSchema = withSecretSource({});

/** Exactly one of the two is set (the schema checks). */
export type SecretSource = { readonly env?: string | undefined; readonly file?: string | undefined };

export class SecretUnavailableError extends Error {
  override name = 'SecretUnavailableError';
}

export function describeSource(source: SecretSource): string {
  return source.env !== undefined ? `environment variable ${source.env}` : `file ${source.file}`;
}

/** Reads a secret, trimming one trailing newline (files written by `echo`). */
export function readSecret(source: SecretSource, env: NodeJS.ProcessEnv = process.env): string {
  let value: string | undefined;
  if (source.env !== undefined) {
    value = env[source.env];
  } else if (source.file !== undefined) {
    try {
      if (!statSync(source.file).isFile()) throw new Error('not a regular file');
      value = readFileSync(source.file, 'utf8');
    } catch (error) {
      throw new SecretUnavailableError(`cannot read secret from ${describeSource(source)}: ${(error as Error).message}`);
    }
  }
  value = value?.replace(/\r?\n$/, '');
  if (!value) throw new SecretUnavailableError(`secret from ${describeSource(source)} is missing or empty`);
  return value;
}
