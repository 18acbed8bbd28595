import { readFileSync } from 'node:fs';
import { isValidKeyId, type SigningKey } from '../request/signed-envelope.js';
import { readSecret, SecretUnavailableError } from '../config/secret-source.js';

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

/** The worker's keys, from the sources its configuration names. */
export function loadWorkerKeys(entries: ReadonlyArray<{ id: string; env?: string; file?: string }>, env = process.env): Map<string, SigningKey> {
  const keys = new Map<string, SigningKey>();
  for (const { id, ...source } of entries) keys.set(id, toKey(id, readSecret(source, env), `key '${id}'`));
  return keys;
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
