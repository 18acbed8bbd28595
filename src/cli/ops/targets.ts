import type { WorkerConfig } from '../../config/worker-config.js';
import { servedTargetNames } from '../../request/acceptance.js';
import { UsageError } from '../usage-error.js';

// Which targets the configuration serves: its fixed deployments, and the personal deployments of its
// users (known only once they have releases). Targets are named as records name them:
// stack/release/deployment-tag.

export interface ServedTargets {
  /** Every fixed target, in configuration order. */
  readonly fixed: readonly string[];
  /** True for a fixed target or a personal deployment of a configured user. */
  serves(target: string): boolean;
}

export function servedTargets(config: Pick<WorkerConfig, 'releases'>): ServedTargets {
  const { fixed, personal } = servedTargetNames(config.releases);
  const all = new Set([...fixed, ...personal]);
  return { fixed, serves: (target) => all.has(target) };
}

/** The targets to show: the fixed ones, then the others the store knows, each once, sorted within each group. */
export function knownTargets(served: ServedTargets, fromStore: Iterable<string>): string[] {
  const extra = [...new Set(fromStore)].filter((target) => served.serves(target) && !served.fixed.includes(target)).sort();
  return [...served.fixed, ...extra];
}

/** Checks the targets asked for against the known ones; a UsageError names the known ones. */
export function checkTargets(asked: readonly string[], known: readonly string[]): void {
  const unknown = asked.filter((target) => !known.includes(target));
  if (unknown.length === 0) return;
  throw new UsageError(`unknown target ${unknown.join(', ')}; known: ${known.join(', ') || 'none'}`);
}
