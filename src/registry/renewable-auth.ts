import type { RegistryAuth } from '../host/host-session.js';
import type { EcrCredentials } from './ecr-credentials.js';
import { endpointAddress, sameRegistry } from './registry-address.js';

// Registry credentials that are fetched and renewed while the worker runs (ECR), handed to the
// rollout in place of fixed ones. The rollout asks for a release's credentials synchronously; the
// resolving connector (src/host/resolving-connector.ts) turns this into the current token at each
// pull, and renews it once when the registry refuses it. The token goes only to the configured
// registry (rollout.registry.address, else the one ECR names with the token): for an image of any
// other registry, current() answers no credentials and the pull is made without them.

export interface RenewableAuthOptions {
  /** rollout.registry.address, when configured. */
  readonly address?: string | undefined;
  /** Told when the image's registry is not the token's: the pull goes without credentials. */
  readonly onWithheld?: (imageRegistry: string, tokenRegistry: string) => void;
}

export class RenewableRegistryAuth implements RegistryAuth {
  constructor(
    /** registry host[:port], as in the image reference. */
    readonly serveraddress: string,
    private readonly credentials: EcrCredentials,
    private readonly options: RenewableAuthOptions = {},
  ) {}

  get username(): string {
    return this.credentials.latest()?.username ?? 'AWS';
  }

  /** The token held now ('' before the first fetch: a pull without the connector is refused, never sent stale). */
  get password(): string {
    return this.credentials.latest()?.password ?? '';
  }

  /** Credentials with time left, for one pull; undefined when the image's registry is not the token's. */
  async current(): Promise<RegistryAuth | undefined> {
    const token = await this.credentials.get();
    const tokenRegistry = this.options.address ?? endpointAddress(token.proxyEndpoint) ?? '';
    if (!sameRegistry(this.serveraddress, tokenRegistry)) {
      this.options.onWithheld?.(this.serveraddress, tokenRegistry);
      return undefined;
    }
    return { username: token.username, password: token.password, serveraddress: this.serveraddress };
  }

  /** The registry refused `used`: the next current() asks for a new token. */
  refused(used: RegistryAuth): void {
    this.credentials.renewAfterRefusal(used.password);
  }

  toJSON(): Record<string, string> {
    return { serveraddress: this.serveraddress, username: this.username, password: '[redacted]' };
  }
}
