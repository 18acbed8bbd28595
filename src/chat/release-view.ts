import type { ReleaseRecord } from '../state/release-record.js';
import type { ChatMessage } from './chat.js';
import { isFailure, type ReleaseEvent, type ReleaseOutcomeKind } from './release-events.js';
import { fullImage, plural, shortImage, targetName } from './release-format.js';
import { untrusted } from './slack-text.js';

// What the one message of a release shows: target, image, who asked, the step it is at, hosts k of
// n, the outcome, and the latest line. Built from the release's record and kept current from the
// events of the messages posted while it runs. Every text is escaped for Slack. Pure: no clock, no I/O.

export interface ReleaseView {
  readonly releaseId: string;
  readonly target: string;
  readonly shortImage: string;
  readonly image: string;
  readonly requestedBy: string;
  step: string;
  done: number;
  total: number;
  outcome?: ReleaseOutcomeKind;
  /** The latest line posted about the release. */
  latest: string;
}

export function viewOf(record: Readonly<ReleaseRecord>): ReleaseView {
  const hosts = Object.values(record.hosts).filter((host) => host.progress !== 'gone');
  return {
    releaseId: untrusted(record.releaseId, 64),
    target: targetName(record.target),
    shortImage: shortImage(record.request.image),
    image: fullImage(record.request.image),
    requestedBy: untrusted(record.request.requestedBy, 100),
    step: record.status === 'accepted' ? 'preparing' : record.direction === 'back' ? 'rolling back' : 'rolling out',
    done: hosts.filter((host) => host.progress === 'released').length,
    total: hosts.length,
    latest: '',
  };
}

/** The view after a message: its event moves the step, the count or the outcome; its text is the latest line. */
export function apply(view: ReleaseView, message: ChatMessage): void {
  view.latest = message.text;
  const event: ReleaseEvent | undefined = message.event;
  if (!event) return;
  switch (event.kind) {
    case 'started':
      view.total = event.hosts;
      view.step = 'rolling out';
      return;
    case 'host-done':
      view.done = event.index;
      view.total = event.total;
      view.step = `${event.host} released`;
      return;
    case 'host-trouble':
      view.step = `waiting for ${event.host}`;
      return;
    case 'resumed':
      view.step = 'resumed';
      return;
    case 'gate':
      view.step = event.waiting;
      return;
    case 'gate-passed':
      view.step = 'rolling out';
      return;
    case 'held':
      view.step = `waiting: target locked by ${event.by} (${event.reason})`;
      return;
    case 'restore-pending':
      view.step = 'restoring Auto Scaling and alarms';
      return;
    case 'restore-confirmed':
      view.step = 'Auto Scaling and alarms restored';
      return;
    case 'ended':
      view.outcome = event.outcome;
      view.step = isFailure(event.outcome) && event.step ? `failed at ${event.step}${event.host ? ` on ${event.host}` : ''}` : OUTCOME_WORDS[event.outcome];
      return;
  }
}

export const OUTCOME_WORDS: Readonly<Record<ReleaseOutcomeKind, string>> = {
  succeeded: 'succeeded',
  'rolled-back': 'failed, rolled back',
  failed: 'failed, needs attention',
  refused: 'refused before any change',
  superseded: 'superseded by a newer release',
  interrupted: 'paused at a safe point',
  stopped: 'stopped by an operator',
};

/** The headline: what a person scanning the channel reads first. */
export function headline(view: ReleaseView): string {
  const what = `${view.shortImage} to ${view.target}`;
  switch (view.outcome) {
    case undefined:
      return `:arrows_counterclockwise: Releasing ${what}: ${view.done} of ${plural(view.total, 'host')}`;
    case 'succeeded':
      return `:white_check_mark: Released ${what}: ${plural(view.total, 'host')}`;
    case 'interrupted':
      return `:double_vertical_bar: Release of ${what} paused: ${view.done} of ${plural(view.total, 'host')}`;
    case 'stopped':
      return `:octagonal_sign: Release of ${what} stopped: ${view.done} of ${plural(view.total, 'host')}`;
    case 'superseded':
      return `:fast_forward: Release of ${what} superseded`;
    case 'refused':
      return `:no_entry: Release of ${what} refused`;
    default:
      return `:x: Release of ${what} failed`;
  }
}

/** Slack Block Kit: the headline, the facts as fields, and the latest line with the release id. */
export function viewBlocks(view: ReleaseView): unknown[] {
  const field = (title: string, value: string) => ({ type: 'mrkdwn', text: `*${title}*\n${value || '-'}` });
  return [
    { type: 'section', text: { type: 'mrkdwn', text: `*${headline(view)}*` } },
    {
      type: 'section',
      fields: [
        field('Target', view.target),
        field('Image', view.image),
        field('Requested by', view.requestedBy),
        field('Step', view.step),
        field('Hosts', `${view.done} of ${view.total}`),
        field('Outcome', view.outcome ? OUTCOME_WORDS[view.outcome] : 'in progress'),
      ],
    },
    { type: 'context', elements: [{ type: 'mrkdwn', text: `Release ${view.releaseId}${view.latest ? ` · ${clip(view.latest, 2500)}` : ''}` }] },
  ];
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
