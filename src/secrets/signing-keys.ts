import { readFileSync, statSync } from 'node:fs';
import { isValidKeyId, type SigningKey } from '../request/signed-envelope.js';
import { describeSource, readSecret, SecretUnavailableError, type SecretSource } from '../config/secret-source.js';

/** Shorter keys are refused: HMAC-SHA256 wants at least 32 bytes of secret. */
export const MIN_KEY_BYTES = 32;

function toKey(id: string, text: string, origin: string): SigningKey {
  if (!isValidKeyId(id)) throw new SecretUnavailableError(`key id '${id}' from ${origin} must match [A-Za-z0-9._-], at most 64`);
  const secret = Buffer.from(text, 'utf8');
  if (secret.length < MIN_KEY_BYTES) {
    throw new SecretUnavailableError(`signing key '${id}' from ${origin} is ${secret.length} bytes; at least ${MIN_KEY_BYTES} are needed (openssl rand -base64 48)`);
  }
  return { id, secret };
}

export type KeySourceEntry = SecretSource & { readonly id: string };

/** The worker's keys, from the sources its configuration names, read once. */
export function loadWorkerKeys(entries: ReadonlyArray<KeySourceEntry>, env = process.env): Map<string, SigningKey> {
  const keys = new Map<string, SigningKey>();
  for (const { id, ...source } of entries) keys.set(id, toKey(id, readSecret(source, env), `key '${id}'`));
  return keys;
}

/** What a file looked like when it was last read: a rotation changes one of these. */
function fileStamp(path: string): string | undefined {
  try {
    const info = statSync(path);
    return `${info.ino}:${info.size}:${info.mtimeMs}`;
  } catch {
    return undefined;
  }
}

export interface KeyRingLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * The worker's keys, kept current: a key read from a file is read again when the file changes (its
 * inode, size or modification time, looked at each time the keys are used) or on `reload()` (SIGHUP),
 * so a rotation needs no restart. A file that is deleted, emptied, unreadable or too short removes
 * its key at once (a request signed with it is refused as signed with a key the worker does not
 * hold), and says why once per change; a file that holds a valid key again brings it back. Write a
 * rotated key to a new file and rename it over the old one, so that no request meets a half-written
 * file. Keys from environment variables cannot change while the worker runs and are read once.
 */
export class WorkerKeyRing {
  private readonly keys = new Map<string, SigningKey>();
  /** Per file key: the stamp last looked at (read or refused), so a refused file is not retried until it changes again. */
  private readonly stamps = new Map<string, string | undefined>();

  /** Reads every key; a key missing at start stops the worker (SecretUnavailableError). */
  constructor(
    private readonly entries: ReadonlyArray<KeySourceEntry>,
    private readonly log: KeyRingLog,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    for (const entry of entries) {
      const stamp = entry.file !== undefined ? fileStamp(entry.file) : undefined;
      const { id, ...source } = entry;
      this.keys.set(id, toKey(id, readSecret(source, env), `key '${id}'`));
      if (entry.file !== undefined) this.stamps.set(id, stamp);
    }
  }

  /** The keys as they are now: file keys whose file changed are read again first. */
  current(): ReadonlyMap<string, SigningKey> {
    for (const entry of this.entries) {
      if (entry.file === undefined) continue;
      const stamp = fileStamp(entry.file);
      if (stamp === this.stamps.get(entry.id)) continue;
      this.stamps.set(entry.id, stamp);
      this.readAgain(entry, 'its file changed');
    }
    return this.keys;
  }

  /** Reads every file key again, changed or not (SIGHUP). */
  reload(): void {
    for (const entry of this.entries) {
      if (entry.file === undefined) continue;
      this.stamps.set(entry.id, fileStamp(entry.file));
      this.readAgain(entry, 'reload asked for');
    }
  }

  private readAgain(entry: KeySourceEntry, why: string): void {
    const { id, ...source } = entry;
    try {
      const key = toKey(id, readSecret(source, {}), `key '${id}'`);
      const before = this.keys.get(id);
      if (before && before.secret.equals(key.secret)) return;
      this.keys.set(id, key);
      this.log.info({ keyId: id, source: describeSource(source), why }, 'signing key read again: requests signed with the new key are accepted from now on');
    } catch (error) {
      const removed = this.keys.delete(id);
      this.log.warn(
        { keyId: id, source: describeSource(source), why, problem: (error as Error).message, removed },
        'signing key removed: its file holds no valid key; requests signed with it are refused until the file holds a valid key again',
      );
    }
  }
}

/**
 * The key CI signs with: HARBORMASTER_SIGNING_KEY_ID plus HARBORMASTER_SIGNING_KEY or
 * HARBORMASTER_SIGNING_KEY_FILE. Never a flag, so it stays out of process listings and shell history.
 */
export function loadEnqueueKey(env: NodeJS.ProcessEnv = process.env): SigningKey {
  const id = env.HARBORMASTER_SIGNING_KEY_ID;
  if (!id) throw new SecretUnavailableError('HARBORMASTER_SIGNING_KEY_ID is not set: name the key the worker knows this CI by');
  if (env.HARBORMASTER_SIGNING_KEY) return toKey(id, env.HARBORMASTER_SIGNING_KEY, 'HARBORMASTER_SIGNING_KEY');
  const file = env.HARBORMASTER_SIGNING_KEY_FILE;
  if (!file) throw new SecretUnavailableError('no signing key: set HARBORMASTER_SIGNING_KEY or HARBORMASTER_SIGNING_KEY_FILE');
  let text: string;
  try {
    text = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new SecretUnavailableError(`cannot read HARBORMASTER_SIGNING_KEY_FILE ${file}: ${(error as Error).message}`);
  }
  return toKey(id, text, file);
}
