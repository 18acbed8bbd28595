import type { PromoteRequest } from '../state/control.js';
import type { RecordedRelease } from '../state/recorded-release.js';

// When the worker first saw an operator's promotion of the release, by the worker's own clock: what a
// pause is judged by (release-decision.ts), never the time the promotion's writer put on it (a
// promotion dated in the future would pass every pause reached before that date). Recorded in the
// release before any decision uses it, so a worker that takes the release up again knows which
// promotion was seen before a pause was reached.

const same = (a: { by: string; at: string; note?: string | undefined }, b: PromoteRequest) => a.by === b.by && a.at === b.at && a.note === b.note;

/** Records `promotion` as first seen `now` unless it is the one the release already saw. */
export async function seePromotion(release: RecordedRelease, promotion: PromoteRequest | undefined, now: () => Date = () => new Date()): Promise<void> {
  const seen = release.record.promotion;
  if (!promotion || (seen && same(seen, promotion))) return;
  await release.update((draft) => {
    draft.promotion = { by: promotion.by, at: promotion.at, ...(promotion.note ? { note: promotion.note } : {}), seenAt: now().toISOString() };
  });
}
