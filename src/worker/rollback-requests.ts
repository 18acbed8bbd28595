import * as say from '../chat/control-messages.js';
import type { Chat } from '../chat/chat.js';
import type { ReleaseConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import { servedTargetNames } from '../request/acceptance.js';
import { releaseIdPattern } from '../request/names.js';
import { printable } from '../request/outside-text.js';
import type { RollbackRequest } from '../state/control.js';
import type { ReleaseRecord } from '../state/release-record.js';
import type { ReleaseStore } from '../state/release-store.js';
import type { ReleaseHistory } from '../state/target-summary.js';
import { chooseRollback, rollbackRecord } from './rollback-choice.js';

// `harbormaster rollback` writes a request into the target's control, never a release. At every
// sweep the worker reads the control of each target it serves and turns a rollback request into a
// release: chosen from its own history (the newest succeeded image other than the current one, or the
// release the request names, which must have succeeded on the target), by that release's recorded
// digest, resting on the signed release that vouches for it. The release gets the id the request
// carries, so a request read twice (a kill between the claim and the clean-up) makes one release.
// A request that cannot be met is recorded as refused in the control, where the command finds it.

/** How many of a target's newest records are read to choose what to go back to. */
const RECENT = 50;
const MAX_TEXT = 300;

export interface RollbackRequestDeps {
  readonly store: ReleaseStore & Pick<ReleaseHistory, 'recent'>;
  readonly releases: readonly ReleaseConfig[];
  readonly logger: Logger;
  readonly workerId: string;
  readonly chat?: Chat;
}


/** Why a stored rollback request is not well formed, or undefined: it is data anyone with write access to the control could have written. */
function malformed(request: RollbackRequest): string | undefined {
  const text = (value: unknown) => typeof value === 'string' && value.length > 0 && value.length <= MAX_TEXT && printable(value) === value;
  if (typeof request.releaseId !== 'string' || !releaseIdPattern.test(request.releaseId)) return 'rollback.releaseId must be a release id (a UUID)';
  if (request.to !== undefined && (typeof request.to !== 'string' || !releaseIdPattern.test(request.to))) return 'rollback.to must be a release id (a UUID)';
  if (!text(request.by)) return `rollback.by must be printable text of at most ${MAX_TEXT} characters`;
  if (request.reason !== undefined && !text(request.reason)) return `rollback.reason must be printable text of at most ${MAX_TEXT} characters`;
  if (request.note !== undefined && !text(request.note)) return `rollback.note must be printable text of at most ${MAX_TEXT} characters`;
  if (typeof request.at !== 'string' || Number.isNaN(Date.parse(request.at))) return 'rollback.at must be an ISO time';
  return undefined;
}

/** The release a request turns into, or why it cannot be met. */
async function decide(deps: RollbackRequestDeps, target: string, request: RollbackRequest, now: Date): Promise<{ ok: true; record: ReleaseRecord } | { ok: false; reason: string }> {
  const wrong = malformed(request);
  if (wrong) return { ok: false, reason: wrong };
  const recent = await deps.store.recent(target, RECENT);
  const named = request.to === undefined ? undefined : ((await deps.store.get(request.to)) ?? request.to);
  const choice = chooseRollback(target, recent, named);
  if (!choice.ok) return { ok: false, reason: choice.reason };
  return { ok: true, record: rollbackRecord(choice, request, now, deps.workerId) };
}

/** One look at the control of every served target; returns the rollback releases claimed. */
export async function takeRollbackRequests(deps: RollbackRequestDeps, now = new Date()): Promise<ReleaseRecord[]> {
  const claimed: ReleaseRecord[] = [];
  const { fixed, personal } = servedTargetNames(deps.releases);
  for (const target of [...fixed, ...personal]) {
    try {
      const request = (await deps.store.control(target)).rollback;
      if (!request) continue;
      const log = deps.logger.child({ target, releaseId: request.releaseId });
      const known = typeof request.releaseId === 'string' && releaseIdPattern.test(request.releaseId) ? await deps.store.get(request.releaseId) : undefined;
      if (!known) {
        const decided = await decide(deps, target, request, now);
        if (!decided.ok) {
          const reason = printable(decided.reason, 500);
          log.warn({ by: printable(String(request.by), 200), reason }, 'rollback request refused: nothing was changed');
          await deps.store.updateControl(target, (current) => (current.rollback?.releaseId === request.releaseId ? { ...withoutRollback(current), refusedRollback: { releaseId: String(request.releaseId).slice(0, 36), reason, at: now.toISOString() } } : undefined));
          deps.chat?.post(say.rollbackRefused({ target, by: printable(String(request.by), 200), reason }));
          continue;
        }
        const result = await deps.store.claim(decided.record);
        if (result.claimed) {
          claimed.push(result.record);
          log.info({ by: request.by, to: decided.record.origin?.to, image: decided.record.request.image }, 'rollback request taken: its release is recorded');
        }
      }
      // Turned into a release (now or before a kill): the request is done.
      await deps.store.updateControl(target, (current) => (current.rollback?.releaseId === request.releaseId ? withoutRollback(current) : undefined));
    } catch (error) {
      deps.logger.warn({ err: error, target }, 'reading or taking a rollback request failed; looking again at the next sweep');
    }
  }
  return claimed;
}

function withoutRollback<T extends { rollback?: RollbackRequest }>(control: T): Omit<T, 'rollback'> {
  const { rollback: _done, ...rest } = control;
  return rest;
}
