// Bounds of `enqueue --wait` shared by its options (enqueue-command.ts) and the wait (wait-for-release.ts).

/**
 * After this long with the release unknown to the table and nothing waiting on the queue, the
 * workers do not write the table. With the queue looked at every 10 s, two looks in a row find it
 * within a minute of sending.
 */
export const DEFAULT_UNRECORDED_SECONDS = 40;
