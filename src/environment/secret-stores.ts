import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { accessDenied } from '../aws/access-denied.js';
import { isTransient, withRetry } from '../aws/transient.js';
import type { Logger } from '../log/logger.js';

// Reading one value from SSM Parameter Store (SecureString decrypted) or Secrets Manager. A failure
// says what was asked for and what to do, never a value: missing (create it or correct the name),
// access denied (the IAM permission the worker's role needs), or anything else AWS answered.
// Throttling, 5xx and the network are tried again a few times first.

export type SecretFailure = 'missing' | 'denied' | 'not-text' | 'other';

export class SecretStoreError extends Error {
  override name = 'SecretStoreError';
  constructor(
    readonly failure: SecretFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface SecretStores {
  /** An SSM parameter's value, decrypted. */
  parameter(name: string, signal?: AbortSignal): Promise<string>;
  /** A Secrets Manager secret's current string value. */
  secret(id: string, signal?: AbortSignal): Promise<string>;
}

const errorName = (error: unknown) => (error as { name?: unknown } | undefined)?.name;

function awsFailure(what: string, permission: string, missingNames: ReadonlySet<string>, error: unknown): Error {
  if (isTransient(error)) return error as Error;
  const name = String(errorName(error) ?? 'Error');
  if (missingNames.has(name)) return new SecretStoreError('missing', `${what} does not exist (${name}): create it, or correct the name in the configuration`, { cause: error });
  const denied = accessDenied(error);
  if (denied) return new SecretStoreError('denied', `${what}: access denied (${denied}): the worker's role needs ${permission}`, { cause: error });
  // AWS's own message may name the resource, never its value: kept short, it says what went wrong.
  const message = String((error as Error | undefined)?.message ?? error).slice(0, 200);
  return new SecretStoreError('other', `${what}: ${name}: ${message}`, { cause: error });
}

export class AwsSecretStores implements SecretStores {
  constructor(
    private readonly ssm: SSMClient,
    private readonly secretsManager: SecretsManagerClient,
    private readonly logger?: Logger,
  ) {}

  async parameter(name: string, signal?: AbortSignal): Promise<string> {
    const what = `SSM parameter ${name}`;
    try {
      const answer = await withRetry((attempt) => this.ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }), { abortSignal: attempt ?? signal }), {
        what: `GetParameter ${name}`,
        retries: 3,
        ...(this.logger ? { logger: this.logger } : {}),
      });
      const value = answer.Parameter?.Value;
      if (value === undefined) throw new SecretStoreError('missing', `${what} has no value`);
      return value;
    } catch (error) {
      signal?.throwIfAborted();
      if (error instanceof SecretStoreError) throw error;
      throw awsFailure(what, `ssm:GetParameter on it (and kms:Decrypt on its key for a SecureString with a customer managed key)`, new Set(['ParameterNotFound', 'ParameterVersionNotFound']), error);
    }
  }

  async secret(id: string, signal?: AbortSignal): Promise<string> {
    const what = `secret ${id}`;
    try {
      const answer = await withRetry((attempt) => this.secretsManager.send(new GetSecretValueCommand({ SecretId: id }), { abortSignal: attempt ?? signal }), {
        what: `GetSecretValue ${id}`,
        retries: 3,
        ...(this.logger ? { logger: this.logger } : {}),
      });
      if (answer.SecretString === undefined) {
        throw new SecretStoreError('not-text', `${what} holds binary data, not text: store it as a string (SecretString)`);
      }
      return answer.SecretString;
    } catch (error) {
      signal?.throwIfAborted();
      if (error instanceof SecretStoreError) throw error;
      throw awsFailure(what, `secretsmanager:GetSecretValue on it (and kms:Decrypt on its key when it has a customer managed key)`, new Set(['ResourceNotFoundException']), error);
    }
  }
}
