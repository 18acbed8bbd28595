/** A mistake in what the caller asked for: reported in one line, exit code 2, nothing sent. */
export class UsageError extends Error {
  override name = 'UsageError';
}
