import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { formatIssues } from './release-request.js';

// What travels on the queue: the request as an exact JSON string, and an HMAC-SHA256 over that string
// bound to the key id. Signing the transported bytes (not a re-serialisation) means no canonical JSON
// is needed, and nothing in the payload is looked at before its signature has been checked.

export const ENVELOPE_FORMAT = 'harbormaster.release-request.v1';
/** The most a message body may weigh; a request is well under 2 KiB. */
export const MAX_MESSAGE_BYTES = 16 * 1024;
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface SigningKey {
  readonly id: string;
  readonly secret: Buffer;
}

const envelopeSchema = z
  .object({
    format: z.literal(ENVELOPE_FORMAT, { errorMap: () => ({ message: `format must be '${ENVELOPE_FORMAT}'` }) }),
    keyId: z.string({ required_error: 'keyId is missing' }).regex(KEY_ID, 'keyId has characters outside [A-Za-z0-9._-]'),
    signature: z
      .string({ required_error: 'signature is missing: the request is not signed' })
      .regex(/^[A-Za-z0-9+/]{43}=$/, 'signature is not a base64 HMAC-SHA256'),
    payload: z.string({ required_error: 'payload is missing' }),
  })
  .strict();

function mac(key: SigningKey, payload: string): Buffer {
  return createHmac('sha256', key.secret)
    .update(`${ENVELOPE_FORMAT}\n${key.id}\n`)
    .update(payload, 'utf8')
    .digest();
}

export function signEnvelope(payload: unknown, key: SigningKey): string {
  const payloadText = JSON.stringify(payload);
  return JSON.stringify({
    format: ENVELOPE_FORMAT,
    keyId: key.id,
    signature: mac(key, payloadText).toString('base64'),
    payload: payloadText,
  });
}

export type EnvelopeRefusal =
  | 'oversize'
  | 'malformed'
  | 'unknown-key'
  | 'bad-signature';

export type OpenedEnvelope =
  | { ok: true; keyId: string; payload: unknown }
  | { ok: false; code: EnvelopeRefusal; reason: string };

/** Checks size, shape and signature, in that order, and only then parses the payload. */
export function openEnvelope(body: string, keys: ReadonlyMap<string, SigningKey>): OpenedEnvelope {
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > MAX_MESSAGE_BYTES) {
    return { ok: false, code: 'oversize', reason: `message is ${bytes} bytes, more than the ${MAX_MESSAGE_BYTES} allowed` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (error) {
    return { ok: false, code: 'malformed', reason: `message is not JSON (${(error as Error).message})` };
  }
  const parsed = envelopeSchema.safeParse(raw);
  if (!parsed.success) {
    const unsigned = parsed.error.issues.some((i) => i.path[0] === 'signature' && i.code === 'invalid_type');
    return { ok: false, code: unsigned ? 'bad-signature' : 'malformed', reason: `envelope: ${formatIssues(parsed.error)}` };
  }
  const envelope = parsed.data;
  const key = keys.get(envelope.keyId);
  if (!key) {
    return { ok: false, code: 'unknown-key', reason: `signed with key id '${envelope.keyId}', which this worker does not hold` };
  }
  const expected = mac(key, envelope.payload);
  const given = Buffer.from(envelope.signature, 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, code: 'bad-signature', reason: `signature does not match key '${key.id}': the request was altered or signed with another key` };
  }
  try {
    return { ok: true, keyId: key.id, payload: JSON.parse(envelope.payload) };
  } catch (error) {
    return { ok: false, code: 'malformed', reason: `payload is not JSON (${(error as Error).message})` };
  }
}

export function isValidKeyId(id: string): boolean {
  return KEY_ID.test(id);
}

