import { randomUUID } from 'node:crypto';
import { signEnvelope, signPayloadText, ENVELOPE_FORMAT, type SigningKey } from '../../src/request/signed-envelope.js';
import { REGISTRY, TEST_KEY, OTHER_KEY } from './worker-fixtures.js';

/** A well-formed request for data/ingest/staging; tests change one thing at a time. */
export function validRequest(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1,
    releaseId: randomUUID(),
    target: { stack: 'data', release: 'ingest', deployment: 'staging' },
    image: `${REGISTRY}/data/ingest:v2`,
    requestedBy: 'ci-bot',
    source: { branch: 'main', commit: 'a1b2c3d4e5f6', buildUrl: 'https://ci.example.com/build/42' },
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

export const signed = (request: unknown, key: SigningKey = TEST_KEY) => signEnvelope(request, key);

export interface RefusedCase {
  readonly name: string;
  readonly body: () => string;
  readonly code: string;
  readonly reason: RegExp;
}

const withTarget = (target: Record<string, unknown>) => signed(validRequest({ target }));

/** Written into every credential the table sends: it must never come back in a reason, a log line, an attribute or chat. */
export const CREDENTIAL_MARKER = 's3cr3t-token';

/** A valid request's exact JSON text with `from` replaced by `to` (a key written twice, say), signed as sent. */
const signedText = (from: string, to: string) => {
  const text = JSON.stringify(validRequest());
  if (!text.includes(from)) throw new Error(`the request text has no ${from}`);
  return signPayloadText(text.replace(from, to), TEST_KEY);
};

/** A signed envelope whose text is edited after signing (the signature still matches the payload). */
const editedEnvelope = (edit: (text: string) => string) => {
  const text = signed(validRequest());
  const edited = edit(text);
  if (edited === text) throw new Error('the envelope edit changed nothing');
  return edited;
};

const withoutField = (field: string) => {
  const request = validRequest();
  delete request[field];
  return signed(request);
};

const envelopeWith = (fields: Record<string, unknown>) =>
  JSON.stringify({ ...(JSON.parse(signed(validRequest())) as Record<string, unknown>), ...fields });

const HEX64 = '0123456789abcdef'.repeat(4);

/** Every kind of input the worker must refuse, each with the refusal it must give. */
export const REFUSED_CASES: readonly RefusedCase[] = [
  { name: 'malformed JSON', body: () => '{"format": "harbormaster', code: 'malformed', reason: /not JSON/ },
  { name: 'JSON that is not an envelope', body: () => '[1,2,3]', code: 'malformed', reason: /envelope/ },
  {
    name: 'missing signature',
    body: () => JSON.stringify({ format: ENVELOPE_FORMAT, keyId: TEST_KEY.id, payload: JSON.stringify(validRequest()) }),
    code: 'bad-signature',
    reason: /not signed/,
  },
  { name: 'bad signature (another key under the same id)', body: () => signed(validRequest(), OTHER_KEY), code: 'bad-signature', reason: /does not match key 'ci-test'/ },
  {
    name: 'payload altered after signing',
    body: () => {
      const envelope = JSON.parse(signed(validRequest())) as { payload: string };
      envelope.payload = envelope.payload.replace('staging', 'integration');
      return JSON.stringify(envelope);
    },
    code: 'bad-signature',
    reason: /altered/,
  },
  { name: 'unknown key id', body: () => signed(validRequest(), { id: 'ci-retired', secret: TEST_KEY.secret }), code: 'unknown-key', reason: /'ci-retired'/ },
  {
    name: 'missing field',
    body: () => {
      const request = validRequest();
      delete request.image;
      return signed(request);
    },
    code: 'invalid',
    reason: /image is required/,
  },
  { name: 'extra field', body: () => signed(validRequest({ command: 'rm -rf /' })), code: 'invalid', reason: /unknown field\(s\) 'command'/ },
  { name: 'extra field in the target', body: () => withTarget({ stack: 'data', release: 'ingest', deployment: 'staging', ports: ['22:22'] }), code: 'invalid', reason: /target/ },
  { name: 'oversize', body: () => signed(validRequest({ padding: 'x'.repeat(20_000) })), code: 'oversize', reason: /more than the 16384 allowed/ },
  { name: 'expired (a replay)', body: () => signed(validRequest({ createdAt: new Date(Date.now() - 3_600_000).toISOString() })), code: 'expired', reason: /signed 3600 s before the queue received it, more than the 300 s allowed/ },
  { name: 'dated in the future', body: () => signed(validRequest({ createdAt: new Date(Date.now() + 3_600_000).toISOString() })), code: 'from-the-future', reason: /after the queue received it: check the clock/ },
  { name: 'unknown format version', body: () => signed(validRequest({ version: 2 })), code: 'invalid', reason: /version must be 1/ },
  { name: 'image without tag or digest', body: () => signed(validRequest({ image: `${REGISTRY}/data/ingest` })), code: 'invalid', reason: /neither a tag nor a digest/ },
  { name: 'image with shell metacharacters', body: () => signed(validRequest({ image: `${REGISTRY}/data/ingest:v2;reboot` })), code: 'invalid', reason: /not a Docker reference/ },
  { name: 'image with an option smuggled in', body: () => signed(validRequest({ image: `${REGISTRY}/data/ingest:v2 --privileged` })), code: 'invalid', reason: /not a Docker reference/ },
  { name: 'image that is a flag', body: () => signed(validRequest({ image: '--volume=/:/host' })), code: 'invalid', reason: /not a Docker reference/ },
  { name: 'image with uppercase path', body: () => signed(validRequest({ image: `${REGISTRY}/Data/Ingest:v2` })), code: 'invalid', reason: /not a Docker reference/ },
  { name: 'image with a bad digest', body: () => signed(validRequest({ image: `${REGISTRY}/data/ingest@sha256:xyz` })), code: 'invalid', reason: /not a Docker reference/ },
  { name: 'image from a repository that is not allowed', body: () => signed(validRequest({ image: `${REGISTRY}/data/ingest-evil:v2` })), code: 'image-not-allowed', reason: /'127.0.0.1:5000\/data\/ingest-evil' is not allowed/ },
  { name: 'image from another registry', body: () => signed(validRequest({ image: 'docker.io/data/ingest:v2' })), code: 'image-not-allowed', reason: /not allowed/ },
  { name: 'stack with shell metacharacters', body: () => withTarget({ stack: 'data;reboot', release: 'ingest', deployment: 'staging' }), code: 'invalid', reason: /target/ },
  { name: 'deployment with command substitution', body: () => withTarget({ stack: 'data', release: 'ingest', deployment: '$(id)' }), code: 'invalid', reason: /target/ },
  { name: 'requester with backticks', body: () => signed(validRequest({ requestedBy: 'bob`id`' })), code: 'invalid', reason: /requestedBy must be letters/ },
  { name: 'release that is a path traversal', body: () => withTarget({ stack: 'data', release: '..', deployment: 'staging' }), code: 'invalid', reason: /target/ },
  { name: 'feature that is a path traversal', body: () => withTarget({ stack: 'data', release: 'ingest', personal: { user: 'alice', feature: '../../etc' } }), code: 'invalid', reason: /target/ },
  { name: 'branch with a path traversal', body: () => signed(validRequest({ source: { branch: 'remote-run/../../x' } })), code: 'invalid', reason: /path traversal/ },
  { name: 'deployment with a newline', body: () => withTarget({ stack: 'data', release: 'ingest', deployment: 'staging\nrelease: evil' }), code: 'invalid', reason: /target/ },
  { name: 'requester with terminal escape codes', body: () => signed(validRequest({ requestedBy: 'alice\u001b[31m' })), code: 'invalid', reason: /control characters/ },
  { name: 'build URL that is not http', body: () => signed(validRequest({ source: { buildUrl: 'file:///etc/passwd' } })), code: 'invalid', reason: /http\(s\) URL/ },
  { name: 'release id that is not a UUID', body: () => signed(validRequest({ releaseId: '../../state' })), code: 'invalid', reason: /releaseId/ },
  { name: 'deployment this worker does not serve', body: () => withTarget({ stack: 'data', release: 'ingest', deployment: 'production' }), code: 'unknown-target', reason: /does not serve data\/ingest\/production/ },
  { name: 'release this worker does not serve', body: () => withTarget({ stack: 'data', release: 'query', deployment: 'staging' }), code: 'unknown-target', reason: /does not serve data\/query/ },
  { name: 'personal branch for a user who is not allowed', body: () => withTarget({ stack: 'data', release: 'ingest', personal: { user: 'mallory', feature: 'faster' } }), code: 'user-not-allowed', reason: /user 'mallory' may not deploy/ },

  // A key written twice: JSON.parse keeps the last, a person or another tool may read the first.
  {
    name: 'duplicate key in the envelope (a second payload)',
    body: () => editedEnvelope((text) => text.replace('"payload":', `"payload":${JSON.stringify(JSON.stringify(validRequest({ target: { stack: 'data', release: 'ingest', deployment: 'integration' } })))},"payload":`)),
    code: 'malformed',
    reason: /^envelope: key 'payload' appears twice: a key may appear only once/,
  },
  {
    name: 'duplicate key in the signed payload (deployment written twice)',
    body: () => signedText('"deployment":"staging"', '"deployment":"integration","deployment":"staging"'),
    code: 'malformed',
    reason: /^request: key 'target\.deployment' appears twice: a key may appear only once/,
  },
  {
    name: 'duplicate key in the signed payload, the second written with an escape',
    body: () => signedText('"image":', '"image":"127.0.0.1:5000/data/ingest:v1","\\u0069mage":'),
    code: 'malformed',
    reason: /^request: key 'image' appears twice/,
  },
  { name: 'duplicate key id in the envelope', body: () => editedEnvelope((text) => text.replace('"keyId":', '"keyId":"ci-other","keyId":')), code: 'malformed', reason: /key 'keyId' appears twice/ },

  // Digests exactly as Docker (distribution/reference with go-digest) reads them.
  { name: 'image whose sha256 digest is too short for Docker', body: () => signed(validRequest({ image: `${REGISTRY}/data/ingest@sha256:${HEX64.slice(0, 32)}` })), code: 'invalid', reason: /image '.*' is not a Docker reference: the digest must be sha256: followed by 64 lowercase hexadecimal digits.*32 digits given/ },
  { name: 'image with an uppercase digest', body: () => signed(validRequest({ image: `${REGISTRY}/data/ingest@sha256:${HEX64.toUpperCase()}` })), code: 'invalid', reason: /the digest must be sha256: followed by 64 lowercase hexadecimal digits.*only 0-9 and a-f/ },
  { name: 'image with a digest algorithm Docker does not know', body: () => signed(validRequest({ image: `${REGISTRY}/data/ingest@md5:${HEX64}` })), code: 'invalid', reason: /the digest must be sha256: followed by 64/ },

  // Wrong types: every refusal names the field and its rule.
  { name: 'deployment that is a number', body: () => withTarget({ stack: 'data', release: 'ingest', deployment: 7 }), code: 'invalid', reason: /^request: target\.deployment must be a string: lowercase letters, digits and inner hyphens/ },
  { name: 'personal user that is a number', body: () => withTarget({ stack: 'data', release: 'ingest', personal: { user: 7, feature: 'x' } }), code: 'invalid', reason: /^request: target\.personal\.user must be a string: lowercase letters/ },
  { name: 'personal that is a string', body: () => withTarget({ stack: 'data', release: 'ingest', personal: 'alice' }), code: 'invalid', reason: /^request: target\.personal must be an object \{user, feature\}/ },
  { name: 'target that is a string', body: () => signed(validRequest({ target: 'data/ingest/staging' })), code: 'invalid', reason: /^request: target must be an object: \{stack, release, deployment\} or \{stack, release, personal: \{user, feature\}\}/ },
  { name: 'target with neither deployment nor personal', body: () => withTarget({ stack: 'data', release: 'ingest' }), code: 'invalid', reason: /^request: target must be \{stack, release, deployment\} or/ },
  { name: 'missing target', body: () => withoutField('target'), code: 'invalid', reason: /^request: target is required: \{stack, release, deployment\}/ },
  { name: 'image that is a number', body: () => signed(validRequest({ image: 42 })), code: 'invalid', reason: /^request: image must be a string: a full Docker reference/ },
  { name: 'release id that is a number', body: () => signed(validRequest({ releaseId: 42 })), code: 'invalid', reason: /^request: releaseId must be a string: a lowercase UUID/ },
  { name: 'requester that is null', body: () => signed(validRequest({ requestedBy: null })), code: 'invalid', reason: /^request: requestedBy must be a string: letters, digits/ },
  { name: 'missing requester', body: () => withoutField('requestedBy'), code: 'invalid', reason: /^request: requestedBy is required: letters, digits/ },
  { name: 'source that is a string', body: () => signed(validRequest({ source: 'main' })), code: 'invalid', reason: /^request: source must be an object \{branch, commit, buildUrl\}/ },
  { name: 'missing source', body: () => withoutField('source'), code: 'invalid', reason: /^request: source is required: an object \{branch, commit, buildUrl\}/ },
  { name: 'commit that is a number', body: () => signed(validRequest({ source: { commit: 1234567 } })), code: 'invalid', reason: /^request: source\.commit must be a string: a hexadecimal commit id/ },
  { name: 'build URL that is a number', body: () => signed(validRequest({ source: { buildUrl: 42 } })), code: 'invalid', reason: /^request: source\.buildUrl must be a string: an http\(s\) URL/ },
  { name: 'creation time that is a number', body: () => signed(validRequest({ createdAt: Date.now() })), code: 'invalid', reason: /^request: createdAt must be a string: an ISO-8601 UTC timestamp/ },
  { name: 'missing creation time', body: () => withoutField('createdAt'), code: 'invalid', reason: /^request: createdAt is required: an ISO-8601 UTC timestamp/ },
  { name: 'version that is a string', body: () => signed(validRequest({ version: '1' })), code: 'invalid', reason: /^request: version must be 1 \(the number\)/ },
  { name: 'missing version', body: () => withoutField('version'), code: 'invalid', reason: /^request: version is required: it must be 1/ },
  { name: 'request that is not an object', body: () => signed(['data', 'ingest']), code: 'invalid', reason: /^request: the request must be a JSON object \{version, releaseId, target/ },
  { name: 'envelope payload that is an object, not JSON text', body: () => envelopeWith({ payload: validRequest() }), code: 'malformed', reason: /^envelope: payload must be a string: the request as JSON text, exactly as signed/ },
  { name: 'envelope key id that is a number', body: () => envelopeWith({ keyId: 2026 }), code: 'malformed', reason: /^envelope: keyId must be a string: the signing key id/ },
  { name: 'envelope signature that is a number', body: () => envelopeWith({ signature: 0 }), code: 'bad-signature', reason: /^envelope: signature must be a string: a base64 HMAC-SHA256/ },
  { name: 'envelope without its format', body: () => JSON.stringify({ keyId: TEST_KEY.id, signature: 'x', payload: '{}' }), code: 'malformed', reason: /^envelope: format is required: it must be 'harbormaster\.release-request\.v1'/ },
  { name: 'envelope that is a string', body: () => JSON.stringify('hello'), code: 'malformed', reason: /^envelope: the message must be a JSON object \{format, keyId, signature, payload\}/ },

  // Control characters (and what SQS refuses in an attribute) are escaped wherever they are quoted.
  {
    name: 'unknown field whose name carries terminal escapes',
    body: () => signed(validRequest({ 'evil\u001b[2J\u0007\r\nrelease: ok': 1 })),
    code: 'invalid',
    reason: /^request: unknown field\(s\) 'evil\\u001b\[2J\\u0007\\r\\nrelease: ok' \(not part of the format: remove them\)$/,
  },
  { name: 'unknown envelope field whose name carries a bidirectional override', body: () => envelopeWith({ 'x\u202egnp.exe': 1 }), code: 'malformed', reason: /^envelope: unknown field\(s\) 'x\\u202egnp\.exe'/ },
  { name: 'unknown field whose name is a lone surrogate (SQS refuses it in an attribute)', body: () => signed(validRequest({ '\ud800': 1 })), code: 'invalid', reason: /unknown field\(s\) '\\ud800'/ },
  // (Raw in the body: SQS itself takes tab, newline and carriage return, C1 controls and bidi overrides.)
  { name: 'JSON with a raw tab in a string', body: () => '{"format":"harbor\tmaster"}', code: 'malformed', reason: /^message is not JSON: control character U\+0009 inside a string \(it must be escaped\) at position 17$/ },
  {
    name: 'malformed JSON that JSON.parse would quote back (C1 controls, a bidirectional override, a credential)',
    body: () => `{"format": x\u009b2J\u202e\r\nhttps://ci:${CREDENTIAL_MARKER}@ci.example.com/}`,
    code: 'malformed',
    reason: /^message is not JSON: unexpected character 'x' \(expected a value\) at position 11$/,
  },
  { name: 'duplicate key whose name carries terminal escapes', body: () => signedText('"image":', '"\\u001b[31m":1,"\\u001b[31m":2,"image":'), code: 'malformed', reason: /key '\["\\u001b\[31m"\]' appears twice/ },

  // Credentials written into the request are refused and never repeated.
  {
    name: 'image with credentials in a URL',
    body: () => signed(validRequest({ image: `https://deployer:${CREDENTIAL_MARKER}@registry.internal/data/ingest:1` })),
    code: 'invalid',
    reason: /^request: image 'https:\/\/deployer:\[redacted\]@registry\.internal\/data\/ingest:1' contains credentials \(a user name or password before '@'\): a Docker reference has none/,
  },
  {
    name: 'image with credentials before the registry',
    body: () => signed(validRequest({ image: `deployer:${CREDENTIAL_MARKER}@${REGISTRY}/data/ingest:1` })),
    code: 'invalid',
    reason: /^request: image 'deployer:\[redacted\]@127\.0\.0\.1:5000\/data\/ingest:1' contains credentials.*rollout\.registry/,
  },
  { name: 'image with a token before the registry', body: () => signed(validRequest({ image: `${CREDENTIAL_MARKER}@${REGISTRY}/data/ingest:1` })), code: 'invalid', reason: /^request: image '\[redacted\]@127\.0\.0\.1:5000\/data\/ingest:1' contains credentials/ },
  {
    name: 'build URL with credentials',
    body: () => signed(validRequest({ source: { buildUrl: `https://ci:${CREDENTIAL_MARKER}@ci.example.com/build/42` } })),
    code: 'invalid',
    reason: /^request: source\.buildUrl must not contain a user name or password before '@'/,
  },
];
