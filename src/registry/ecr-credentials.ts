import { GetAuthorizationTokenCommand, type ECRClient } from '@aws-sdk/client-ecr';
import { accessDenied } from '../aws/access-denied.js';
import { isTransient, withRetry } from '../aws/transient.js';
import type { Logger } from '../log/logger.js';

// Registry credentials from Amazon ECR: GetAuthorizationToken answers a base64 "AWS:password" token,
// valid for 12 hours, and the registry's endpoint. One token serves every pull of every host; it is
// asked for again when less than `renewBeforeMs` of it is left (so a pull never starts on a token
// about to expire), and when a registry refused it (renewAfterRefusal). The token is never logged.

export interface EcrToken {
  readonly username: string;
  readonly password: string;
  /** https://ACCOUNT.dkr.ecr.REGION.amazonaws.com */
  readonly proxyEndpoint: string;
  /** Epoch ms. */
  readonly expiresAt: number;
}

export class RegistryCredentialsError extends Error {
  override name = 'RegistryCredentialsError';
}

/** The token's user and password; a malformed token is refused without quoting it. */
export function decodeAuthorizationToken(token: string): { username: string; password: string } {
  const text = Buffer.from(token, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) throw new RegistryCredentialsError('ECR answered an authorization token that is not base64 "user:password"');
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** A token is asked for again when it is missing or has less than `renewBeforeMs` left. */
export function needsRenewal(token: EcrToken | undefined, now: number, renewBeforeMs: number): boolean {
  return token === undefined || token.expiresAt - now < renewBeforeMs;
}

export const DEFAULT_RENEW_BEFORE_MS = 60 * 60_000;

export class EcrCredentials {
  private token: EcrToken | undefined;
  private fetching: Promise<EcrToken> | undefined;

  constructor(
    private readonly fetchToken: () => Promise<EcrToken>,
    private readonly options: { readonly renewBeforeMs?: number; readonly now?: () => number } = {},
  ) {}

  /**
   * A token with time left, asked for once however many pulls wait for it. A token that is already
   * near its end when it arrives (a skewed clock) is still used for the pulls that asked, and asked
   * for again by the next.
   */
  async get(): Promise<EcrToken> {
    const now = (this.options.now ?? Date.now)();
    if (this.token && !needsRenewal(this.token, now, this.options.renewBeforeMs ?? DEFAULT_RENEW_BEFORE_MS)) return this.token;
    this.fetching ??= this.fetchToken()
      .then((token) => (this.token = token))
      .finally(() => (this.fetching = undefined));
    return this.fetching;
  }

  /** The registry refused `password`: the next get() asks ECR again (unless that was done meanwhile). */
  renewAfterRefusal(password: string): void {
    if (this.token?.password === password) this.token = undefined;
  }

  /** The token held now, if any (no call). */
  latest(): EcrToken | undefined {
    return this.token;
  }
}

/** GetAuthorizationToken on `client` (its region is ECR's), for `registryId` or the caller's own account. */
export function ecrTokenSource(client: ECRClient, settings: { registryId?: string | undefined; field: string; logger?: Logger }): () => Promise<EcrToken> {
  return async () => {
    let answer;
    try {
      answer = await withRetry(() => client.send(new GetAuthorizationTokenCommand(settings.registryId ? { registryIds: [settings.registryId] } : {})), {
        what: 'ECR GetAuthorizationToken',
        retries: 3,
        ...(settings.logger ? { logger: settings.logger } : {}),
      });
    } catch (error) {
      if (isTransient(error)) throw error;
      const name = String((error as Error).name ?? 'Error');
      const denied = accessDenied(error);
      if (denied) {
        throw new RegistryCredentialsError(
          `${settings.field}: ECR refused GetAuthorizationToken (${denied}): the worker's role needs ecr:GetAuthorizationToken, and ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on the repositories`,
          { cause: error },
        );
      }
      throw new RegistryCredentialsError(`${settings.field}: ECR GetAuthorizationToken failed (${name}): ${String((error as Error).message).slice(0, 200)}`, { cause: error });
    }
    const data = answer.authorizationData?.[0];
    if (!data?.authorizationToken || !data.proxyEndpoint) {
      throw new RegistryCredentialsError(`${settings.field}: ECR answered no authorization data${settings.registryId ? ` for registry ${settings.registryId}` : ''}: check registryId`);
    }
    const { username, password } = decodeAuthorizationToken(data.authorizationToken);
    // No expiry given: treated as already due, so every pull asks again rather than trusting it for ever.
    return { username, password, proxyEndpoint: data.proxyEndpoint, expiresAt: data.expiresAt?.getTime() ?? 0 };
  };
}
