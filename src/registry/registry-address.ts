import { z } from 'zod';

// The registry a release's credentials belong to (rollout.registry.address): host[:port] as image
// references name it. Credentials go to that registry alone: a pull of an image that names another
// registry is made without them.

const HOST = '(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\\[[0-9A-Fa-f:]+\\])';
const ADDRESS = new RegExp(`^${HOST}(?::[0-9]{1,5})?$`);

export const registryAddressSchema = z
  .string()
  .regex(ADDRESS, 'address is the registry as image references name it, host[:port] without a scheme or path (registry.internal:5000)');

/** Whether an image's registry (from its reference) is `address`; host names compare without case. */
export function sameRegistry(imageRegistry: string, address: string): boolean {
  return imageRegistry.toLowerCase() === address.toLowerCase();
}

/** host[:port] of a registry endpoint URL such as ECR's proxyEndpoint (https://ACCOUNT.dkr.ecr.REGION.amazonaws.com). */
export function endpointAddress(endpoint: string): string | undefined {
  try {
    return new URL(endpoint).host || undefined;
  } catch {
    return undefined;
  }
}
