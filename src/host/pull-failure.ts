import type { PullFailureReason } from './host-errors.js';

// The engine passes the registry's refusal on as free text (in the HTTP error body, or as `error` /
// `errorDetail` in the progress stream). These are the phrasings of Docker 20.10+ and distribution
// 2.x for each reason the rollout acts on differently.

const REASONS: ReadonlyArray<readonly [PullFailureReason, RegExp]> = [
  ['unauthorised', /unauthori[sz]ed|authentication required|no basic auth credentials|denied|incorrect username or password|\b401\b/i],
  ['not-found', /not found|manifest unknown|name unknown|does not exist|\b404\b/i],
  ['unreachable', /connection refused|no route to host|no such host|i\/o timeout|timeout|dial tcp|network is unreachable|connection reset|EOF|server gave HTTP response to HTTPS client/i],
];

export function classifyPullFailure(message: string): PullFailureReason {
  for (const [reason, pattern] of REASONS) if (pattern.test(message)) return reason;
  return 'other';
}

/** The failure carried by one progress event, if it carries one. */
export function progressEventError(event: unknown): string | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const { error, errorDetail } = event as { error?: unknown; errorDetail?: { message?: unknown } };
  if (typeof error === 'string' && error !== '') return error;
  if (typeof errorDetail?.message === 'string' && errorDetail.message !== '') return errorDetail.message;
  if (errorDetail !== undefined) return JSON.stringify(errorDetail);
  return undefined;
}
