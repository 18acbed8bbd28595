import { randomUUID } from 'node:crypto';
import { signEnvelope, ENVELOPE_FORMAT, type SigningKey } from '../../src/request/signed-envelope.js';
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
  { name: 'expired (a replay)', body: () => signed(validRequest({ createdAt: new Date(Date.now() - 3_600_000).toISOString() })), code: 'expired', reason: /more than the 300 s allowed/ },
  { name: 'dated in the future', body: () => signed(validRequest({ createdAt: new Date(Date.now() + 3_600_000).toISOString() })), code: 'from-the-future', reason: /in the future/ },
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
];
