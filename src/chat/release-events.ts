// The structured side of a release message: what happened, without the wording. A chat that keeps
// one message per release (Slack app, Discord) renders its summary from these; the GitHub and metrics
// listeners act on them. Which release a message belongs to comes from the release scope
// (release-scope.ts), or from `releaseId` where the message itself knows it. Text in events (hosts,
// steps) is already escaped for Slack, as in the messages.

export type ReleaseOutcomeKind = 'succeeded' | 'rolled-back' | 'failed' | 'refused' | 'superseded' | 'interrupted' | 'stopped';

export type ReleaseEvent =
  | { readonly kind: 'started'; readonly releaseId: string; readonly hosts: number }
  | { readonly kind: 'host-done'; readonly host: string; readonly index: number; readonly total: number; readonly outOfServiceMs: number }
  | { readonly kind: 'host-trouble'; readonly host: string }
  | { readonly kind: 'resumed'; readonly releaseId: string }
  /** At a gate of policy.steps: what it waits for (already worded), and when it was passed. */
  | { readonly kind: 'gate'; readonly waiting: string }
  | { readonly kind: 'gate-passed' }
  /** Not started: its target is locked (by and reason already escaped for Slack). */
  | { readonly kind: 'held'; readonly releaseId: string; readonly by: string; readonly reason: string }
  | { readonly kind: 'restore-pending' }
  | { readonly kind: 'restore-confirmed' }
  | {
      readonly kind: 'ended';
      readonly outcome: ReleaseOutcomeKind;
      /** Present where the message knows it (refused, superseded). */
      readonly releaseId?: string;
      readonly durationMs?: number;
      /** For a failure: where and why, already escaped for Slack. */
      readonly step?: string;
      readonly host?: string;
    };

/** Whether an outcome is a failure a requester should hear about. */
export const isFailure = (outcome: ReleaseOutcomeKind) => outcome === 'rolled-back' || outcome === 'failed';
