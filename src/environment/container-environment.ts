import { describeEnvironmentSource, type EnvironmentSource } from '../config/environment-source.js';
import { readSecret, SecretUnavailableError } from '../config/secret-source.js';
import type { ContainerSpec } from '../host/host-session.js';
import type { SecretStores } from './secret-stores.js';

// The values of a container's environment that come from elsewhere, read for one release: every
// container the release starts gets the same values, and the next release reads them again (a
// rotated secret reaches it). A value is never logged nor recorded: it only goes into the spec
// handed to the engine. A variable that cannot be read stops the start, naming the variable and
// its source.

export class ContainerEnvironmentError extends Error {
  override name = 'ContainerEnvironmentError';
}

/** One of a JSON secret's keys; the secret's text is never quoted. */
function keyOf(text: string, key: string, what: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SecretUnavailableError(`${what} is not JSON: leave key out to use the whole secret, or store a JSON object`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new SecretUnavailableError(`${what} is not a JSON object: leave key out, or store a JSON object`);
  const value = (parsed as Record<string, unknown>)[key];
  if (value === undefined || value === null) throw new SecretUnavailableError(`${what} has no key ${key}: add it to the secret, or correct key`);
  if (typeof value === 'object') throw new SecretUnavailableError(`${what}: key ${key} holds an object, not a value`);
  return String(value);
}

async function readOne(source: EnvironmentSource, stores: SecretStores, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<string> {
  if (source.env !== undefined) return readSecret({ env: source.env }, env);
  if (source.file !== undefined) return readSecret({ file: source.file }, env);
  if (source.ssm !== undefined) return stores.parameter(source.ssm, signal);
  const text = await stores.secret(source.secret!, signal);
  return source.key === undefined ? text : keyOf(text, source.key, `secret ${source.secret}`);
}

/**
 * Every variable's value, read side by side. All failures are reported together, each as
 * `container.environment.NAME (SOURCE): why`; a failure that is worth trying again (throttling, the
 * network) stays the cause, so the caller's retry rules see it.
 */
export async function readEnvironment(
  sources: Readonly<Record<string, EnvironmentSource>>,
  stores: SecretStores,
  env: NodeJS.ProcessEnv = process.env,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  const names = Object.keys(sources).sort();
  const results = await Promise.allSettled(names.map((name) => readOne(sources[name]!, stores, env, signal)));
  // Abandoned (the lease given up): its reason, not a failure of the variables.
  signal?.throwIfAborted();
  const failures = results.flatMap((result, i) => (result.status === 'rejected' ? [[names[i]!, result.reason as Error] as const] : []));
  if (failures.length > 0) {
    const reasons = failures.map(([name, error]) => `container.environment.${name} (${describeEnvironmentSource(sources[name]!)}): ${error.message}`);
    throw new ContainerEnvironmentError(`cannot read the container's environment: ${reasons.join('; ')}`, { cause: failures[0]![1] });
  }
  return Object.fromEntries(names.map((name, i) => [name, (results[i] as PromiseFulfilledResult<string>).value]));
}

/** The spec with its sourced variables filled in: what the engine is given, never what is recorded. */
export function withValues(spec: ContainerSpec, values: Readonly<Record<string, string>>): ContainerSpec {
  const { environmentSources: _sources, ...rest } = spec;
  return { ...rest, environment: { ...spec.environment, ...values } };
}

/**
 * The values read once per release (by the release id label of the spec), shared by the containers
 * it starts; a failed read is not kept, so the next start reads again. Only the last few releases
 * are kept: a release's values are never used by another.
 */
export class ReleaseEnvironments {
  private readonly byRelease = new Map<string, Promise<Record<string, string>>>();

  constructor(
    private readonly read: (sources: Readonly<Record<string, EnvironmentSource>>, signal?: AbortSignal) => Promise<Record<string, string>>,
    private readonly keep = 16,
  ) {}

  /** The spec ready for the engine: unchanged when nothing is sourced. */
  async complete(spec: ContainerSpec, signal?: AbortSignal): Promise<ContainerSpec> {
    const sources = spec.environmentSources;
    if (!sources || Object.keys(sources).length === 0) return withValues(spec, {});
    const releaseId = spec.labels['harbormaster.release-id'];
    if (releaseId === undefined) return withValues(spec, await this.read(sources, signal));
    const key = `${releaseId} ${JSON.stringify(Object.entries(sources).sort(([a], [b]) => a.localeCompare(b)))}`;
    let values = this.byRelease.get(key);
    if (!values) {
      values = this.read(sources, signal);
      this.byRelease.set(key, values);
      values.catch(() => this.byRelease.get(key) === values && this.byRelease.delete(key));
      while (this.byRelease.size > this.keep) this.byRelease.delete(this.byRelease.keys().next().value!);
    }
    return withValues(spec, await values);
  }
}
