import { z } from 'zod';
import { resourceName } from '../request/names.js';

// The fixed deployments a release serves (`releases[].deployments`): each a name (`staging`), or
// `{name, protected: true}` for one (production) that a signing key without a scope may not release:
// only a key whose scope lists it (signing.keys[].scope.deployments) may. Personal deployments are
// never protected.

const SHAPE = 'a deployment is a name (staging) or {name: production, protected: true}';

export const deploymentEntry = z.preprocess(
  (value) => (typeof value === 'string' ? { name: value } : value),
  z.object({ name: resourceName('deployment'), protected: z.boolean().default(false) }, { invalid_type_error: SHAPE }).strict(),
);

export type DeploymentEntry = z.infer<typeof deploymentEntry>;

/** The names, as the rest of the worker reads them, and those marked protected (none when left out). */
export function splitDeployments(entries: readonly DeploymentEntry[]): { deployments: string[]; protectedDeployments?: string[] } {
  return { deployments: entries.map((d) => d.name), protectedDeployments: entries.filter((d) => d.protected).map((d) => d.name) };
}

/** Whether `deployment` of this release is marked protected in the configuration. */
export function isProtectedDeployment(release: { readonly protectedDeployments?: readonly string[] }, deployment: string): boolean {
  return release.protectedDeployments?.includes(deployment) ?? false;
}
