import type { ReleaseConfig } from '../../src/config/worker-config.js';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import { signPayloadText, type SigningKey, type StoredEnvelope } from '../../src/request/signed-envelope.js';
import { vouchFor } from '../../src/request/vouching.js';
import { newReleaseRecord, type ReleaseRecord } from '../../src/state/release-record.js';
import { TEST_KEY } from './worker-fixtures.js';

// Release records as the worker writes them for a CI request: with the signed envelope the request
// came in, so that the worker's check at take-up (vouching.ts) finds what vouches for them.

/** The envelope CI would have sent for `request`, signed with `key`. */
export function envelopeOf(request: ReleaseRequest, key: SigningKey = TEST_KEY): StoredEnvelope {
  return JSON.parse(signPayloadText(JSON.stringify(request), key)) as StoredEnvelope;
}

/** newReleaseRecord for a request signed with `key` (TEST_KEY), its envelope kept. */
export function signedRecord(input: Omit<Parameters<typeof newReleaseRecord>[0], 'envelope' | 'keyId'> & { key?: SigningKey }): ReleaseRecord {
  const key = input.key ?? TEST_KEY;
  return newReleaseRecord({ ...input, keyId: key.id, envelope: envelopeOf(input.request, key) });
}

/** The worker's own check, with TEST_KEY held and `releases` served, reading vouchers from `get`. */
export const vouchWithTestKey =
  (releases: readonly ReleaseConfig[], get: (releaseId: string) => Promise<ReleaseRecord | undefined> = async () => undefined) =>
  (record: ReleaseRecord) =>
    vouchFor(record, { keys: () => new Map([[TEST_KEY.id, TEST_KEY]]), releases, get });
