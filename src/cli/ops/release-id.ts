import { releaseIdPattern } from '../../request/names.js';
import type { ReleaseRecord } from '../../state/release-record.js';
import type { ReleaseHistory } from '../../state/target-summary.js';
import { UsageError } from '../usage-error.js';
import type { ReleaseState } from './release-state.js';

// A release id as people type it: the whole UUID, or its first 8 or more characters as the tables
// show them. A prefix is looked for where the tables look: every target's current release and last
// failure, the releases not yet final, and each target's RECENT_PER_TARGET newest releases.

export const MIN_PREFIX = 8;
/** Each target's newest releases searched for a prefix: twice what `history` shows by default. */
export const RECENT_PER_TARGET = 40;
const prefixPattern = /^[0-9a-f][0-9a-f-]{7,35}$/;

/** No release has the id given, or none that the prefix search reaches (exit 1). */
export class ReleaseNotFoundError extends Error {
  override name = 'ReleaseNotFoundError';
}

/** The releases of the history a prefix search reaches, by id. */
async function reachable(history: ReleaseHistory): Promise<Map<string, Pick<ReleaseRecord, 'releaseId' | 'target' | 'status'>>> {
  const [summaries, open] = await Promise.all([history.targetSummaries(), history.openReleases()]);
  const found = new Map<string, Pick<ReleaseRecord, 'releaseId' | 'target' | 'status'>>();
  for (const summary of summaries) {
    for (const release of [summary.current, summary.lastFailure]) if (release) found.set(release.releaseId, { releaseId: release.releaseId, target: summary.target, status: release.status });
  }
  for (const record of open) found.set(record.releaseId, record);
  const targets = new Set([...summaries.map((s) => s.target), ...open.map((r) => r.target)]);
  const recent = await Promise.all([...targets].map((target) => history.recent(target, RECENT_PER_TARGET)));
  for (const record of recent.flat()) found.set(record.releaseId, record);
  return found;
}

/**
 * The whole release id for what was given: a whole id as it is, a prefix of 8 or more characters
 * when exactly one reachable release starts with it. A malformed or ambiguous one is a UsageError
 * (exit 2; the ambiguous one names the candidates), a prefix no release starts with a ReleaseNotFoundError.
 */
export async function resolveReleaseId(history: ReleaseHistory, given: string): Promise<string> {
  const text = given.trim().toLowerCase();
  if (releaseIdPattern.test(text)) return text;
  if (!prefixPattern.test(text)) {
    throw new UsageError(`not a release id: '${given.slice(0, 80)}' (the UUID enqueue printed, or its first ${MIN_PREFIX} or more characters as the tables show them)`);
  }
  const matches = [...(await reachable(history)).values()].filter((release) => release.releaseId.startsWith(text));
  if (matches.length === 1) return matches[0]!.releaseId;
  if (matches.length === 0) {
    throw new ReleaseNotFoundError(
      `no release whose id starts with ${text} among the current, unfinished and ${RECENT_PER_TARGET} newest releases of each target (${history.description}); give the whole id`,
    );
  }
  const named = matches.slice(0, 10).map((release) => `${release.releaseId} (${release.target}, ${release.status})`);
  throw new UsageError(`release id ${text} is ambiguous: ${matches.length} releases start with it: ${named.join(', ')}${matches.length > 10 ? ', ...' : ''}; give more characters`);
}

/** The history of an opened release state, each read through `state.read` (a failure names the store). */
export function readThrough(state: Pick<ReleaseState, 'history' | 'read'>): ReleaseHistory {
  return {
    description: state.history.description,
    targetSummaries: () => state.read('the targets', (history) => history.targetSummaries()),
    openReleases: () => state.read('the unfinished releases', (history) => history.openReleases()),
    recent: (target, limit) => state.read(`the releases of ${target}`, (history) => history.recent(target, limit)),
    get: (releaseId) => state.read(`release ${releaseId}`, (history) => history.get(releaseId)),
  };
}
