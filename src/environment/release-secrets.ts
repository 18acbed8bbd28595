import { ECRClient } from '@aws-sdk/client-ecr';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { clientOptions } from '../aws/clients.js';
import { describeEnvironmentSource } from '../config/environment-source.js';
import { readSecret } from '../config/secret-source.js';
import type { WorkerConfig } from '../config/worker-config.js';
import type { ContainerSpec, HostConnector, RegistryAuth } from '../host/host-session.js';
import { ResolvingConnector } from '../host/resolving-connector.js';
import type { Logger } from '../log/logger.js';
import { EcrCredentials, ecrTokenSource } from '../registry/ecr-credentials.js';
import { RenewableRegistryAuth } from '../registry/renewable-auth.js';
import { sameRegistry } from '../registry/registry-address.js';
import { parseImageReference } from '../request/image-reference.js';
import type { ReleaseRequest } from '../request/release-request.js';
import { ReleaseEnvironments, readEnvironment } from './container-environment.js';
import { AwsSecretStores } from './secret-stores.js';

// What releases read from secret stores, wired from the configuration: each release's registry
// login (a password read at start, or ECR tokens renewed while the worker runs) and the stores its
// container's environment is read from at each release.

export interface ReleaseSecrets {
  /** A request's registry credentials, from its release's configuration. */
  registryAuth(request: ReleaseRequest): RegistryAuth | undefined;
  /** `connector` with pulls and starts that fetch what they need (ECR tokens, environment values). */
  connector(connector: HostConnector): HostConnector;
  /**
   * Reads the release's sourced environment now (kept for its starts); rejects naming the variables
   * that cannot be read. For a preflight: called before any host leaves service, a missing secret
   * refuses the release instead of failing its first start.
   */
  readEnvironment(spec: ContainerSpec, signal?: AbortSignal): Promise<void>;
  close(): void;
}

const releaseKey = (stack: string, release: string) => `${stack}/${release}`;

export function releaseSecrets(config: WorkerConfig, logger: Logger, env: NodeJS.ProcessEnv = process.env): ReleaseSecrets {
  const clients: Array<{ destroy(): void }> = [];
  const client = <T extends { destroy(): void }>(made: T): T => (clients.push(made), made);
  const passwords = new Map<string, string>();
  const ecr = new Map<string, EcrCredentials>();
  const ecrByRegistry = new Map<string, EcrCredentials>();
  config.releases.forEach((release, index) => {
    const registry = release.rollout?.registry;
    if (!registry) return;
    const key = releaseKey(release.stack, release.release);
    if (!registry.ecr) {
      // Read at start: a missing password stops the worker before it takes a request.
      passwords.set(key, readSecret(registry.password!, env));
      return;
    }
    const region = registry.region ?? config.aws.region;
    // Releases that pull from the same registry share its token.
    const shared = `${region}/${registry.registryId ?? 'own'}`;
    let credentials = ecrByRegistry.get(shared);
    if (!credentials) {
      const field = `releases.${index}.rollout.registry`;
      credentials = new EcrCredentials(ecrTokenSource(client(new ECRClient(clientOptions({ ...config.aws, region }))), { registryId: registry.registryId, field, logger }));
      ecrByRegistry.set(shared, credentials);
    }
    ecr.set(key, credentials);
  });

  let environments: ReleaseEnvironments | undefined;
  const stores = () => {
    const aws = clientOptions(config.aws);
    const log = logger.child({ component: 'secrets' });
    const secretStores = new AwsSecretStores(client(new SSMClient(aws)), client(new SecretsManagerClient(aws)), log);
    return new ReleaseEnvironments(async (sources, signal) => {
      const values = await readEnvironment(sources, secretStores, env, signal);
      // Which variables were read from where; their values never.
      log.debug({ sources: Object.fromEntries(Object.entries(sources).map(([name, source]) => [name, describeEnvironmentSource(source)])) }, 'container environment read');
      return values;
    });
  };

  // Credentials go to the configured registry alone; an image of another registry is pulled without them.
  const withheld = new Set<string>();
  const onWithheld = (field: string) => (imageRegistry: string, registry: string) => {
    if (withheld.has(`${field} ${imageRegistry}`)) return;
    withheld.add(`${field} ${imageRegistry}`);
    logger.warn({ imageRegistry, registry, field }, `the image's registry is not the one ${field} logs in to: pulled without credentials (credentials go to ${field}.address alone)`);
  };

  return {
    registryAuth(request) {
      const key = releaseKey(request.target.stack, request.target.release);
      const image = parseImageReference(request.image);
      if (!image.ok) return undefined;
      const index = config.releases.findIndex((r) => releaseKey(r.stack, r.release) === key);
      const registry = config.releases[index]?.rollout?.registry;
      if (!registry) return undefined;
      const field = `releases.${index}.rollout.registry`;
      const credentials = ecr.get(key);
      if (credentials) return new RenewableRegistryAuth(image.image.registry, credentials, { address: registry.address, onWithheld: onWithheld(field) });
      const password = passwords.get(key);
      if (!registry.username || !registry.address || password === undefined) return undefined;
      if (!sameRegistry(image.image.registry, registry.address)) {
        onWithheld(field)(image.image.registry, registry.address);
        return undefined;
      }
      return { username: registry.username, password, serveraddress: registry.address };
    },
    connector(connector) {
      environments ??= stores();
      return new ResolvingConnector(connector, environments);
    },
    async readEnvironment(spec, signal) {
      environments ??= stores();
      await environments.complete(spec, signal);
    },
    close() {
      clients.forEach((made) => made.destroy());
    },
  };
}
