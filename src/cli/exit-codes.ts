// The exit codes of `harbormaster enqueue`, in one place: the CLI exits with them, `enqueue --help`
// lists them, and the tests check that the README and docs/ci.md tables say the same.

export const EXIT = {
  /** Without --wait: the request was sent. With --wait: the release succeeded. */
  ok: 0,
  /** Nothing was sent: the queue could not be reached or refused the message. */
  notSent: 1,
  /** Nothing was sent: a mistake in the call (flag, image, environment, signing key). */
  usage: 2,
  /** Sent; the release ended without the new image and the fleet is whole (rolled back, refused, or stopped by an operator). */
  notReleased: 3,
  /** Sent; a newer request for the same target came first. */
  superseded: 4,
  /** Sent; the release had not ended within --wait-minutes. It goes on. */
  timedOut: 5,
  /** Sent; the release failed and left something a person must put right (the reason says what). */
  needsPerson: 6,
  /** Sent, but its outcome cannot be followed: the release state cannot be read, or the workers do not write it. It goes on. */
  cannotFollow: 7,
  /** Sent, but no worker has taken anything from the queue: it waits there. */
  noWorker: 8,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** One line per code, as `enqueue --help` prints them and the documentation tables list them. */
export const EXIT_CODE_LINES: ReadonlyArray<readonly [ExitCode, string]> = [
  [EXIT.ok, 'sent (without --wait); the release succeeded (with --wait)'],
  [EXIT.notSent, 'nothing was sent: the queue (or, for --promote-from, the release state) could not be reached'],
  [EXIT.usage, 'nothing was sent: a mistake in the call (flag, image, environment, signing key), or nothing to promote'],
  [EXIT.notReleased, 'not released, fleet whole: rolled back, refused (also as unauthentic) or stopped by an operator'],
  [EXIT.superseded, 'superseded by a newer request for the same target'],
  [EXIT.timedOut, 'not ended within --wait-minutes; the release goes on'],
  [EXIT.needsPerson, 'failed and needs a person: something could not be put back'],
  [EXIT.cannotFollow, 'sent, but the outcome cannot be followed (the release table cannot be read, or no worker writes it); it goes on'],
  [EXIT.noWorker, 'sent, but no worker is taking requests from the queue; it waits there'],
];
