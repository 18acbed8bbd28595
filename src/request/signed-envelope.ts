import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { formatIssues } from './release-request.js';
import { checkJson, type JsonCheck } from './strict-json.js';

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

const ENVELOPE_SHAPE = '{format, keyId, signature, payload}';

const envelopeSchema = z
  .object(
    {
      format: z.literal(ENVELOPE_FORMAT, {
        errorMap: (_issue, ctx) => ({
          message: ctx.data === undefined ? `format is required: it must be '${ENVELOPE_FORMAT}'` : `format must be the string '${ENVELOPE_FORMAT}'`,
        }),
      }),
      keyId: z
        .string({
          required_error: 'keyId is missing: it names the key the request is signed with',
          invalid_type_error: 'keyId must be a string: the signing key id, letters, digits and "._-"',
        })
        .regex(KEY_ID, 'keyId has characters outside [A-Za-z0-9._-] or is longer than 64'),
      signature: z
        .string({
          required_error: 'signature is missing: the request is not signed',
          invalid_type_error: 'signature must be a string: a base64 HMAC-SHA256, as `harbormaster enqueue` writes it',
        })
        .regex(/^[A-Za-z0-9+/]{43}=$/, 'signature is not a base64 HMAC-SHA256 (44 characters ending in "=")'),
      payload: z.string({
        required_error: 'payload is missing: it carries the request as JSON text',
        invalid_type_error: 'payload must be a string: the request as JSON text, exactly as signed (not a JSON object)',
      }),
    },
    {
      required_error: `the message must be a JSON object ${ENVELOPE_SHAPE}`,
      invalid_type_error: `the message must be a JSON object ${ENVELOPE_SHAPE}`,
    },
  )
  .strict();

function mac(key: SigningKey, payload: string): Buffer {
  return createHmac('sha256', key.secret)
    .update(`${ENVELOPE_FORMAT}\n${key.id}\n`)
    .update(payload, 'utf8')
    .digest();
}

export function signEnvelope(payload: unknown, key: SigningKey): string {
  return signPayloadText(JSON.stringify(payload), key);
}

/** Signs a payload given as its exact JSON text (what `signEnvelope` does after serialising). */
export function signPayloadText(payloadText: string, key: SigningKey): string {
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

/** The envelope as received, kept with the release record so that the worker can verify it again at every take-up. */
export interface StoredEnvelope {
  readonly format: typeof ENVELOPE_FORMAT;
  readonly keyId: string;
  readonly signature: string;
  readonly payload: string;
}

/**
 * `authentic`: whether the refusal came after the signature was verified with a key the worker holds
 * (only the payload's JSON was wrong); every other refusal is of a message nobody is known to have written.
 */
export type OpenedEnvelope =
  | { ok: true; keyId: string; payload: unknown; envelope: StoredEnvelope }
  | { ok: false; code: EnvelopeRefusal; reason: string; authentic: boolean };

/** Why a text `checkJson` refused is refused, saying what to do about a repeated key. */
function jsonRefusal(text: 'message' | 'payload', object: 'envelope' | 'request', check: Exclude<JsonCheck, { ok: true }>): string {
  switch (check.kind) {
    case 'duplicate-key':
      return `${object}: ${check.reason}: a key may appear only once (JSON readers disagree on which value counts); send it once`;
    case 'too-deep':
      return `${text} is ${check.reason}`;
    case 'syntax':
      return `${text} is not JSON: ${check.reason}`;
  }
}

/** Checks size, shape and signature, in that order, and only then parses the payload. */
export function openEnvelope(body: string, keys: ReadonlyMap<string, SigningKey>): OpenedEnvelope {
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > MAX_MESSAGE_BYTES) {
    return { ok: false, code: 'oversize', reason: `message is ${bytes} bytes, more than the ${MAX_MESSAGE_BYTES} allowed`, authentic: false };
  }
  // Walked before JSON.parse: its syntax errors quote the input, and it lets a repeated key win.
  const checked = checkJson(body);
  if (!checked.ok) {
    return { ok: false, code: 'malformed', reason: jsonRefusal('message', 'envelope', checked), authentic: false };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return { ok: false, code: 'malformed', reason: 'message is not JSON', authentic: false };
  }
  const parsed = envelopeSchema.safeParse(raw);
  if (!parsed.success) {
    const unsigned = parsed.error.issues.some((i) => i.path[0] === 'signature' && i.code === 'invalid_type');
    return { ok: false, code: unsigned ? 'bad-signature' : 'malformed', reason: `envelope: ${formatIssues(parsed.error, '', { namedPaths: true })}`, authentic: false };
  }
  const envelope = parsed.data;
  const key = keys.get(envelope.keyId);
  if (!key) {
    return { ok: false, code: 'unknown-key', reason: `signed with key id '${envelope.keyId}', which this worker does not hold`, authentic: false };
  }
  const expected = mac(key, envelope.payload);
  const given = Buffer.from(envelope.signature, 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, code: 'bad-signature', reason: `signature does not match key '${key.id}': the request was altered or signed with another key`, authentic: false };
  }
  // Only now, signature checked, is the payload looked at: exactly JSON, every key once.
  const checkedPayload = checkJson(envelope.payload);
  if (!checkedPayload.ok) {
    return { ok: false, code: 'malformed', reason: jsonRefusal('payload', 'request', checkedPayload), authentic: true };
  }
  try {
    return { ok: true, keyId: key.id, payload: JSON.parse(envelope.payload), envelope: { format: ENVELOPE_FORMAT, keyId: key.id, signature: envelope.signature, payload: envelope.payload } };
  } catch {
    return { ok: false, code: 'malformed', reason: 'payload is not JSON', authentic: true };
  }
}

export function isValidKeyId(id: string): boolean {
  return KEY_ID.test(id);
}

