import type { RequestTarget } from '../request/release-request.js';
import type { ChatMessage } from './chat.js';
import { fullImage, shortImage, targetName } from './release-format.js';
import { untrusted } from './slack-text.js';

// What chat says about what operators asked of a target (control.ts) as the worker meets it: a
// release held back by a lock. Pure: no clock, no I/O; everything from outside goes through `untrusted`.

export interface ReleaseHeldInput {
  readonly target: RequestTarget | string;
  readonly image: string;
  readonly releaseId: string;
  readonly lock: { readonly by: string; readonly reason: string; readonly until: string };
}

/** Said once per release (and again only if the lock changes): it waits, and who holds the target and why. */
export function releaseHeld(input: ReleaseHeldInput): ChatMessage {
  const target = targetName(input.target);
  const by = untrusted(input.lock.by, 200);
  const reason = untrusted(input.lock.reason, 300);
  return {
    text: `Release of ${shortImage(input.image)} to ${target} waits: the target is locked by ${by} until ${untrusted(input.lock.until, 40)} (${reason}); it starts once the lock is lifted or ends`,
    fields: [
      { title: 'Target', value: target },
      { title: 'Image', value: fullImage(input.image) },
      { title: 'Locked by', value: by },
      { title: 'Reason', value: reason },
      { title: 'Until', value: untrusted(input.lock.until, 40) },
      { title: 'Release', value: untrusted(input.releaseId, 64) },
    ],
    severity: 'warning',
    event: { kind: 'held', releaseId: input.releaseId, by, reason },
  };
}

/** A rollback an operator asked for that the worker could not turn into a release: nothing changed. */
export function rollbackRefused(input: { readonly target: string; readonly by: string; readonly reason: string }): ChatMessage {
  const target = targetName(input.target);
  const by = untrusted(input.by, 200);
  const reason = untrusted(input.reason, 300);
  return {
    text: `Rollback of ${target} asked by ${by} refused, nothing changed: ${reason}`,
    fields: [
      { title: 'Target', value: target },
      { title: 'Asked by', value: by },
      { title: 'Reason', value: reason },
    ],
    severity: 'warning',
  };
}
