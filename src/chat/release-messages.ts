import type { RequestTarget } from '../request/release-request.js';
import type { ChatMessage } from './chat.js';
import { formatDuration, fullImage, hostList, plural, shortImage, targetName } from './release-format.js';
import { untrusted } from './slack-text.js';

// What a person following a release reads: a start, one line per host, and one result, or one line
// for a refused request. Each `text` is a single short line that makes sense on its own (it is also
// the notification and the fallback); the details go in fields. Pure: no clock, no I/O.
//
// Everything that came from outside (the request, host names, error messages) goes through
// `untrusted`, which escapes Slack's &, < and > and silences @channel-style mentions.

type Field = { readonly title: string; readonly value: string };

export interface ReleaseStartedInput {
  readonly target: RequestTarget | string;
  readonly image: string;
  readonly requestedBy: string;
  readonly hosts: readonly string[];
  readonly releaseId: string;
  readonly source?: { readonly branch?: string; readonly commit?: string; readonly buildUrl?: string };
}

export function releaseStarted(input: ReleaseStartedInput): ChatMessage {
  const target = targetName(input.target);
  const requestedBy = untrusted(input.requestedBy, 100);
  const fields: Field[] = [
    { title: 'Target', value: target },
    { title: 'Image', value: fullImage(input.image) },
    { title: 'Requested by', value: requestedBy },
    { title: 'Hosts', value: hostList(input.hosts) },
  ];
  const { branch, commit, buildUrl } = input.source ?? {};
  if (branch) fields.push({ title: 'Branch', value: untrusted(branch, 200) });
  if (commit) fields.push({ title: 'Commit', value: untrusted(commit.slice(0, 12), 12) });
  if (buildUrl) fields.push({ title: 'Build', value: untrusted(buildUrl, 500) });
  fields.push({ title: 'Release', value: untrusted(input.releaseId, 64) });
  return {
    text: `Releasing ${shortImage(input.image)} to ${target} on ${plural(input.hosts.length, 'host')} (requested by ${requestedBy})`,
    fields,
    severity: 'info',
    event: { kind: 'started', releaseId: input.releaseId, hosts: input.hosts.length },
  };
}

export interface HostProgressInput {
  readonly target: RequestTarget | string;
  readonly host: string;
  /** 1-based position of this host in the rollout. */
  readonly index: number;
  readonly total: number;
  readonly durationMs: number;
  readonly outOfServiceMs: number;
}

/** One line per host, no fields: a ten-host release should read as ten lines, not ten cards. */
export function hostProgress(input: HostProgressInput): ChatMessage {
  return {
    text:
      `${targetName(input.target)}: host ${input.index}/${input.total} ${untrusted(input.host, 100)} done ` +
      `in ${formatDuration(input.durationMs)} (out of service ${formatDuration(input.outOfServiceMs)})`,
    severity: 'info',
    event: { kind: 'host-done', host: untrusted(input.host, 100), index: input.index, total: input.total, outOfServiceMs: input.outOfServiceMs },
  };
}

export interface ReleaseSucceededInput {
  readonly target: RequestTarget | string;
  readonly image: string;
  readonly hosts: readonly string[];
  readonly durationMs: number;
}

export function releaseSucceeded(input: ReleaseSucceededInput): ChatMessage {
  const target = targetName(input.target);
  const duration = formatDuration(input.durationMs);
  return {
    text: `Released ${shortImage(input.image)} to ${target}: ${plural(input.hosts.length, 'host')} in ${duration}`,
    fields: [
      { title: 'Target', value: target },
      { title: 'Image', value: fullImage(input.image) },
      { title: 'Hosts', value: hostList(input.hosts) },
      { title: 'Duration', value: duration },
    ],
    severity: 'success',
    event: { kind: 'ended', outcome: 'succeeded', durationMs: input.durationMs },
  };
}

export interface ReleaseFailedInput {
  readonly target: RequestTarget | string;
  readonly image: string;
  /** The host that failed; absent when the release failed before any host (preflight, pulls). */
  readonly host?: string;
  /** The rollout step that failed, as the rollout names it (`health check`, `pull`, ...). */
  readonly step: string;
  readonly reason: string;
  /** Hosts put back on their previous container. */
  readonly rolledBack: readonly string[];
  /** Hosts that could not be put back, each with why: they need a person. */
  readonly attention?: readonly string[];
}

export function releaseFailed(input: ReleaseFailedInput): ChatMessage {
  const target = targetName(input.target);
  const step = untrusted(input.step, 80);
  const where = input.host !== undefined ? ` on ${untrusted(input.host, 100)}` : '';
  const rolledBack = input.rolledBack.length > 0 ? `; rolled back ${plural(input.rolledBack.length, 'host')}` : '';
  const attention = input.attention && input.attention.length > 0 ? `; NEEDS ATTENTION: ${untrusted(input.attention.join('; '), 200)}` : '';
  const fields: Field[] = [
    { title: 'Target', value: target },
    { title: 'Image', value: fullImage(input.image) },
  ];
  if (input.host !== undefined) fields.push({ title: 'Failed on', value: untrusted(input.host, 100) });
  fields.push(
    { title: 'Step', value: step },
    { title: 'Reason', value: untrusted(input.reason, 1000) },
    { title: 'Rolled back', value: hostList(input.rolledBack) },
  );
  for (const what of input.attention ?? []) fields.push({ title: 'Needs attention', value: untrusted(what, 500) });
  return {
    text: `Release of ${shortImage(input.image)} to ${target} failed${where} at ${step}: ${untrusted(input.reason, 160)}${rolledBack}${attention}`,
    fields,
    severity: 'failure',
    event: {
      kind: 'ended',
      outcome: input.attention && input.attention.length > 0 ? 'failed' : 'rolled-back',
      step,
      ...(input.host !== undefined ? { host: untrusted(input.host, 100) } : {}),
    },
  };
}

export interface ReleaseIncompleteInput {
  readonly target: RequestTarget | string;
  readonly image: string;
  /** Hosts released: they stay on the new image. */
  readonly released: readonly string[];
  /** Hosts of the target not released, and why. */
  readonly notReleased: readonly string[];
  readonly reason: string;
}

/** A release that reached some hosts of its target but not all: a failure, never a success. */
export function releaseIncomplete(input: ReleaseIncompleteInput): ChatMessage {
  const target = targetName(input.target);
  const left = untrusted(input.notReleased.join(', '), 200);
  return {
    text: `Release of ${shortImage(input.image)} to ${target} did not reach every host: ${left} not released (${untrusted(input.reason, 160)}); NEEDS ATTENTION: release the target again. The ${plural(input.released.length, 'host')} released stay on the new image`,
    fields: [
      { title: 'Target', value: target },
      { title: 'Image', value: fullImage(input.image) },
      { title: 'Released', value: hostList(input.released) },
      { title: 'Not released', value: left },
      { title: 'Reason', value: untrusted(input.reason, 1000) },
    ],
    severity: 'failure',
    event: { kind: 'ended', outcome: 'failed', step: 'not every host released' },
  };
}

export interface RequestRefusedInput {
  readonly code: string;
  readonly reason: string;
  readonly releaseId?: string;
  /** The queue message id: what ops look for in the dead-letter queue. */
  readonly messageId: string;
  /**
   * Where the message was kept when the dead-letter queue could not take it (`WorkQueue.deadLetter`'s
   * `keptAt`), with that queue's error; absent when it went to the dead-letter queue.
   */
  readonly keptAt?: string;
  readonly deadLetterError?: string;
}

export function requestRefused(input: RequestRefusedInput): ChatMessage {
  const code = untrusted(input.code, 40);
  const fields: Field[] = [
    { title: 'Refusal', value: code },
    { title: 'Reason', value: untrusted(input.reason, 1000) },
  ];
  if (input.releaseId !== undefined) fields.push({ title: 'Release', value: untrusted(input.releaseId, 64) });
  fields.push({ title: 'Queue message', value: untrusted(input.messageId, 128) });
  if (input.keptAt === undefined) {
    return {
      text: `Refused a release request (${code}): ${untrusted(input.reason, 160)}. It changed nothing and went to the dead-letter queue.`,
      fields,
      severity: 'warning',
    };
  }
  // The dead-letter queue itself is broken: a person has to look, so this one says where.
  fields.push({ title: 'Kept at', value: untrusted(input.keptAt, 300) });
  if (input.deadLetterError !== undefined) fields.push({ title: 'Dead-letter queue error', value: untrusted(input.deadLetterError, 300) });
  return {
    text:
      `Refused a release request (${code}): ${untrusted(input.reason, 160)}. It changed nothing; the dead-letter queue ` +
      `could not take it, so it is kept on the bastion at ${untrusted(input.keptAt, 200)}.`,
    fields,
    severity: 'failure',
  };
}

export interface ReleaseRefusedInput {
  readonly target: RequestTarget | string;
  readonly image: string;
  readonly releaseId: string;
  readonly reason: string;
}

/** An accepted request that stopped before changing anything (target not found, preflight failed). */
export function releaseRefused(input: ReleaseRefusedInput): ChatMessage {
  const target = targetName(input.target);
  return {
    text: `Release of ${shortImage(input.image)} to ${target} refused before any change: ${untrusted(input.reason, 160)}`,
    fields: [
      { title: 'Target', value: target },
      { title: 'Image', value: fullImage(input.image) },
      { title: 'Reason', value: untrusted(input.reason, 1000) },
      { title: 'Release', value: untrusted(input.releaseId, 64) },
    ],
    severity: 'warning',
    event: { kind: 'ended', outcome: 'refused', releaseId: input.releaseId, step: 'preflight' },
  };
}

export interface NeedsAttentionInput {
  /** What could not be put back, e.g. `resuming ingest-asg`. */
  readonly what: string;
  readonly reason: string;
  readonly target?: RequestTarget | string;
}

/** A restoration that failed: the one message that asks a person to act, so it says so first. */
export function needsAttention(input: NeedsAttentionInput): ChatMessage {
  const what = untrusted(input.what, 120);
  const where = input.target !== undefined ? ` on ${targetName(input.target)}` : '';
  const fields: Field[] = [];
  if (input.target !== undefined) fields.push({ title: 'Target', value: targetName(input.target) });
  fields.push({ title: 'Failed', value: what }, { title: 'Reason', value: untrusted(input.reason, 1000) });
  return {
    text: `Needs attention${where}: ${what} failed (${untrusted(input.reason, 160)}); the fleet may not be as it was before the release`,
    fields,
    severity: 'failure',
  };
}

export interface ReleaseResumedInput {
  readonly target: RequestTarget | string;
  readonly image: string;
  readonly releaseId: string;
  /** Where the record says it stands: "running, 1 of 3 host(s) released, h2 at stop-old". */
  readonly found: string;
  /** repair: found at the worker's start; redelivered: its request came again; takeover: found by a later sweep. */
  readonly occasion: 'repair' | 'redelivered' | 'takeover';
}

/** A release found unfinished: what was found, and that it is being carried to its end. */
export function releaseResumed(input: ReleaseResumedInput): ChatMessage {
  const target = targetName(input.target);
  const when = { repair: 'when the worker started', redelivered: 'when its request came again', takeover: 'after its worker stopped holding it' }[input.occasion];
  return {
    text: `Found the release of ${shortImage(input.image)} to ${target} unfinished ${when} (${untrusted(input.found, 200)}); carrying it to its end`,
    fields: [
      { title: 'Target', value: target },
      { title: 'Image', value: fullImage(input.image) },
      { title: 'Found', value: untrusted(input.found, 500) },
      { title: 'Release', value: untrusted(input.releaseId, 64) },
    ],
    severity: 'warning',
    event: { kind: 'resumed', releaseId: input.releaseId },
  };
}

export interface ReleaseInterruptedInput {
  readonly target: RequestTarget | string;
  readonly image: string;
  readonly released: number;
  readonly total: number;
}

/** Stopped on request at a safe point; resumed by the next start. */
export function releaseInterrupted(input: ReleaseInterruptedInput): ChatMessage {
  return {
    text:
      `Release of ${shortImage(input.image)} to ${targetName(input.target)} paused at a safe point: ${input.released} of ${plural(input.total, 'host')} released, ` +
      'every host whole, Auto Scaling and alarms restored; it is resumed by the next start of a worker (or by another worker sharing the release state), unless a newer release comes first',
    severity: 'warning',
    event: { kind: 'ended', outcome: 'interrupted' },
  };
}

export interface ReleaseStoppedInput extends ReleaseInterruptedInput {
  /** Who stopped it (`harbormaster stop`). */
  readonly by: string;
}

/** Stopped by an operator at a safe point and ended there; the hosts released so far stay on the new image. */
export function releaseStopped(input: ReleaseStoppedInput): ChatMessage {
  return {
    text:
      `Release of ${shortImage(input.image)} to ${targetName(input.target)} stopped by ${untrusted(input.by, 100)} at a safe point: ${input.released} of ${plural(input.total, 'host')} released ` +
      '(they stay on the new image), every host whole, Auto Scaling and alarms restored',
    severity: 'warning',
    event: { kind: 'ended', outcome: 'stopped' },
  };
}

export interface RestorePendingInput {
  readonly target: RequestTarget | string;
  /** Each restore still not confirmed, with AWS's reason. */
  readonly left: readonly string[];
  readonly attempt: number;
  readonly retryInMs: number;
}

/** Auto Scaling or alarms not back as they were: said loudly, and tried again until they are, fail for good, or the worker is asked to stop. */
export function restorePending(input: RestorePendingInput): ChatMessage {
  const target = targetName(input.target);
  return {
    text:
      `Needs attention on ${target}: Auto Scaling or alarms are not yet back as they were before the release (${untrusted(input.left.join('; '), 300)}); ` +
      `trying again in ${formatDuration(input.retryInMs)} (attempt ${input.attempt}), until it succeeds (or fails for good, or the worker is asked to stop)`,
    fields: [{ title: 'Target', value: target }, ...input.left.map((what) => ({ title: 'Pending', value: untrusted(what, 500) }))],
    severity: 'failure',
    event: { kind: 'restore-pending' },
  };
}

/** Restores AWS refused for good (a group deleted, access denied): exactly what was left as it is, for a person. */
export function restoreLeft(input: { readonly target: RequestTarget | string; readonly left: readonly string[] }): ChatMessage {
  const target = targetName(input.target);
  return {
    text: `NEEDS ATTENTION on ${target}: not put back as before the release, and not tried again: ${untrusted(input.left.join('; '), 600)}`,
    fields: [{ title: 'Target', value: target }, ...input.left.map((what) => ({ title: 'Left for a person', value: untrusted(what, 500) }))],
    severity: 'failure',
  };
}

export function restoreConfirmed(input: { readonly target: RequestTarget | string; readonly attempts: number }): ChatMessage {
  return {
    text: `Auto Scaling and alarms of ${targetName(input.target)} are back as they were before the release (after ${plural(input.attempts, 'attempt')})`,
    severity: 'success',
    event: { kind: 'restore-confirmed' },
  };
}

export interface DamagedRecordInput {
  readonly releaseId?: string;
  readonly where: string;
  readonly problem: string;
  readonly recovered: 'previous-copy' | 'nothing';
}

/** A release record damaged on disk: what the worker did about it. */
export function damagedRecord(input: DamagedRecordInput): ChatMessage {
  const release = input.releaseId ? `release ${untrusted(input.releaseId, 64)}` : 'a release';
  const done =
    input.recovered === 'previous-copy'
      ? 'the previous copy of the record is used and the release carried to its end from what the hosts show'
      : 'no copy can be read: the worker leaves that release alone; check its target by hand';
  return {
    text: `The record of ${release} was damaged (${untrusted(input.problem, 160)}): ${done}`,
    fields: [
      { title: 'File', value: untrusted(input.where, 300) },
      { title: 'Problem', value: untrusted(input.problem, 500) },
    ],
    severity: input.recovered === 'previous-copy' ? 'warning' : 'failure',
  };
}

export interface ReleaseSupersededInput {
  readonly target: RequestTarget | string;
  readonly image: string;
  readonly releaseId: string;
  /** The newer release of the same target that came first. */
  readonly newer: { readonly releaseId: string; readonly image?: string; readonly createdAt: string };
  /** Hosts it had changed before it stopped at a safe point (none: it changed nothing). */
  readonly changed?: readonly string[];
}

/** An older request that a newer one of the same target overtook: it changed nothing, or (stopped half-way) the newer one carries its hosts on. */
export function releaseSuperseded(input: ReleaseSupersededInput): ChatMessage {
  const target = targetName(input.target);
  const newer = input.newer.image ? shortImage(input.newer.image) : `release ${untrusted(input.newer.releaseId, 64)}`;
  const changed = input.changed ?? [];
  const what = changed.length > 0 ? `it had changed ${untrusted(changed.join(', '), 200)}, which the newer release carries on` : 'it changed nothing';
  return {
    text: `Release of ${shortImage(input.image)} to ${target} superseded by the newer ${newer}: ${what}`,
    fields: [
      { title: 'Target', value: target },
      { title: 'Image', value: fullImage(input.image) },
      { title: 'Release', value: untrusted(input.releaseId, 64) },
      { title: 'Newer release', value: untrusted(input.newer.releaseId, 64) },
      { title: 'Newer request made', value: untrusted(input.newer.createdAt, 40) },
    ],
    severity: 'info',
    event: { kind: 'ended', outcome: 'superseded', releaseId: input.releaseId },
  };
}

export interface HostTroubleInput {
  readonly target: RequestTarget | string;
  readonly host: string;
  readonly step: string;
  readonly reason: string;
  /** How long it is tried again before the host fails (going forward) or is left for a person (going back). */
  readonly retryingForMs: number;
  readonly goingBack: boolean;
}

/** Watched alarms already in ALARM at the start, with policy.alarmAtStart ignore: said, then not counted until they have left ALARM. */
export function alarmsAtStart(input: { readonly target: RequestTarget | string; readonly alarms: readonly string[] }): ChatMessage {
  return {
    text: `${targetName(input.target)}: watched alarm(s) already in ALARM before the release: ${untrusted(input.alarms.join(', '), 300)}; releasing anyway (policy.alarmAtStart: ignore), and they turn the release back only once they have left ALARM and entered it again`,
    severity: 'warning',
  };
}

/** A watched alarm entered ALARM during the release: named with CloudWatch's reason, and what the release does now. */
export function alarmEntered(input: { readonly target: RequestTarget | string; readonly image: string; readonly alarm: string; readonly reason: string; readonly then: 'rollback' | 'stop' }): ChatMessage {
  const then = input.then === 'rollback' ? 'turning the release back, every released host with it' : 'stopping the release at its next safe point';
  return {
    text: `Release of ${shortImage(input.image)} to ${targetName(input.target)}: alarm ${untrusted(input.alarm, 200)} entered ALARM (${untrusted(input.reason, 300)}); ${then}`,
    severity: 'failure',
  };
}

/** The release task ended: its outcome and the tail of what it wrote. */
export function releaseTaskEnded(input: { readonly target: RequestTarget | string; readonly image: string; readonly host: string; readonly ok: boolean; readonly outcome: string; readonly output: string }): ChatMessage {
  const tail = input.output.trim() === '' ? '' : `; its last lines: ${untrusted(input.output.trim().split('\n').slice(-5).join(' | '), 600)}`;
  return {
    text: `Release of ${shortImage(input.image)} to ${targetName(input.target)}: the release task on ${untrusted(input.host, 100)} ${untrusted(input.outcome, 100)}${tail}`,
    severity: input.ok ? 'info' : 'failure',
  };
}

export interface GateInput {
  readonly target: RequestTarget | string;
  readonly image: string;
  readonly released: number;
  readonly total: number;
  /** A bake's length; absent: a pause. */
  readonly bakeSeconds?: number;
}

/** At a gate of policy.steps: a bake (waits and watches) or a pause (waits for `harbormaster promote`). */
export function releaseAtGate(input: GateInput): ChatMessage {
  const waiting = input.bakeSeconds !== undefined ? `baking for ${formatDuration(input.bakeSeconds * 1000)}` : 'paused until `harbormaster promote`';
  return {
    text: `Release of ${shortImage(input.image)} to ${targetName(input.target)}: ${input.released} of ${plural(input.total, 'host')} released, ${waiting}`,
    severity: 'info',
    event: { kind: 'gate', waiting },
  };
}

/** A gate passed: the bake's time is over, or an operator promoted the release. */
export function releaseGatePassed(input: { readonly target: RequestTarget | string; readonly image: string; readonly by?: string | undefined }): ChatMessage {
  const how = input.by !== undefined ? `promoted by ${untrusted(input.by, 100)}` : 'bake over, nothing went wrong';
  return { text: `Release of ${shortImage(input.image)} to ${targetName(input.target)}: ${how}; going on`, severity: 'info', event: { kind: 'gate-passed' } };
}

/** A host that does not answer for now: said once per episode, while the release keeps trying. */
export function hostTrouble(input: HostTroubleInput): ChatMessage {
  const host = untrusted(input.host, 100);
  const what = input.goingBack ? 'putting it back' : 'trying again';
  return {
    text: `${targetName(input.target)}: ${host} does not answer for now at ${untrusted(input.step, 80)} (${untrusted(input.reason, 200)}); ${what} for up to ${formatDuration(input.retryingForMs)}`,
    severity: 'warning',
    event: { kind: 'host-trouble', host },
  };
}

/** A host's SSH connection lost: open again after some attempts, or not (the release then retries or fails the host). */
export function hostReconnect(input: { readonly address: string; readonly ok: boolean; readonly attempts: number; readonly reason: string }): ChatMessage {
  const host = untrusted(input.address, 100);
  return input.ok
    ? { text: `${host}: the SSH connection was lost (${untrusted(input.reason, 200)}) and is open again after ${plural(input.attempts, 'attempt')}`, severity: 'warning' }
    : { text: `${host}: the SSH connection was lost and ${plural(input.attempts, 'attempt')} to open it again failed (${untrusted(input.reason, 200)})`, severity: 'warning' };
}
