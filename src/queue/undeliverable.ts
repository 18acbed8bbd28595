import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { QueueMessage, Refusal } from './sqs-queue.js';

// Where a refused message goes when the dead-letter queue cannot take it: one file per message in a
// directory only the worker's user can read, written atomically, with the body exactly as received
// so that ops can send it again once the cause is fixed.

export interface UndeliverableRecord {
  readonly message: QueueMessage;
  readonly refusal: Refusal;
  /** The dead-letter queue that refused it, and its error. */
  readonly deadLetterQueue: string;
  readonly error: string;
  readonly keptAt: Date;
}

/** Writes the message, its refusal and the failure to `<directory>/<messageId>.json` (0600, directory 0700); the path. */
export async function keepUndeliverable(directory: string, record: UndeliverableRecord): Promise<string> {
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const info = await lstat(directory);
  if (!info.isDirectory()) throw new Error(`${directory} is not a directory`);
  if ((info.mode & 0o077) !== 0) await chmod(directory, 0o700);
  const { message, refusal } = record;
  const name = fileNameFor(message.id);
  const path = join(directory, `${name}.json`);
  const temporary = join(directory, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const content = {
    messageId: message.id,
    receiveCount: message.receiveCount,
    keptAt: record.keptAt.toISOString(),
    refusal: { code: refusal.code, reason: refusal.reason },
    deadLetterQueue: record.deadLetterQueue,
    deadLetterError: record.error,
    /** The message body exactly as received: send it again from here once the cause is fixed. */
    body: message.body,
  };
  const file = await open(temporary, 'wx', 0o600);
  try {
    await file.writeFile(`${JSON.stringify(content, null, 2)}\n`, 'utf8');
    await file.sync();
  } catch (writeError) {
    await file.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw writeError;
  }
  await file.close();
  try {
    await rename(temporary, path);
  } catch (renameError) {
    await unlink(temporary).catch(() => undefined);
    throw renameError;
  }
  // The rename is durable once the directory is synced.
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  return path;
}

/** SQS message ids are UUIDs; anything else is made a safe file name all the same. */
function fileNameFor(messageId: string): string {
  const safe = messageId.replace(/[^A-Za-z0-9-]/g, '_').slice(0, 128);
  return safe.length > 0 && !/^[_-]+$/.test(safe) ? safe : `message-${randomBytes(6).toString('hex')}`;
}
