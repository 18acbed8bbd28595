import { isDeepStrictEqual } from 'node:util';
import type { KeyScope, ReleaseConfig } from '../config/worker-config.js';
import type { ReleaseRecord } from '../state/release-record.js';
import { isProtectedTarget, keyScopeRefusal, openRequest, servedRelease } from './acceptance.js';
import { parseImageReference } from './image-reference.js';
import { printable } from './outside-text.js';
import { describeTarget, type ReleaseRequest } from './release-request.js';
import type { SigningKey } from './signed-envelope.js';

// What vouches for a release record before the worker acts on it. The release state is data anyone
// with write access to the table or the state directory could have written: the worker acts on a
// record only when a CI signature it can verify now vouches for its image and target, and when its
// own configuration still serves that target with that image. A CI request carries its own signed
// envelope; a rollback or a release for new hosts names the succeeded, signed release it repeats
// (`vouchedBy`), whose envelope vouches for it. How the container runs is never taken from the record:
// the engine derives it from the configuration (plan-cache.ts). Checked at every take-up.

export interface VouchingPolicy {
  /** The keys as they are now: a key removed from the configuration or emptied vouches for nothing. */
  readonly keys: () => ReadonlyMap<string, SigningKey>;
  readonly releases: readonly ReleaseConfig[];
  readonly scopes?: ReadonlyMap<string, KeyScope>;
  /** Reads the release a derived record names. */
  readonly get: (releaseId: string) => Promise<ReleaseRecord | undefined>;
}

export type Vouched =
  | { readonly ok: true; readonly releaseConfig: ReleaseConfig; readonly voucher: string; readonly keyId: string }
  | { readonly ok: false; readonly reason: string };

const no = (reason: string): Vouched => ({ ok: false, reason: printable(reason, 1000) });

/** The release a rollback or a release for new hosts repeats, if the record is one. */
export function repeats(record: Pick<ReleaseRecord, 'origin' | 'newHosts'>): string | undefined {
  return record.origin?.kind === 'rollback' ? record.origin.to : record.newHosts?.of;
}

/** The signed release a record rests on: its own id for a CI request, the one it repeats (or that one's voucher) otherwise. */
export function voucherOf(record: Pick<ReleaseRecord, 'releaseId' | 'origin' | 'newHosts' | 'vouchedBy'>): string {
  return record.vouchedBy ?? repeats(record) ?? record.releaseId;
}

/** The record's own envelope, verified with the keys held now, and the request it carries. */
function signedRequest(record: ReleaseRecord, keys: ReadonlyMap<string, SigningKey>, which: string): { ok: true; request: ReleaseRequest; keyId: string } | { ok: false; reason: string } {
  if (!record.envelope) return { ok: false, reason: `${which} has no signed envelope: nothing a CI key signed vouches for it` };
  const opened = openRequest(JSON.stringify(record.envelope), keys);
  if (!opened.ok) return { ok: false, reason: `${which}'s envelope does not verify (${opened.code}): ${opened.reason}` };
  if (opened.request.releaseId !== record.releaseId) return { ok: false, reason: `${which}'s envelope is signed for release ${opened.request.releaseId}, not ${record.releaseId}` };
  if (!isDeepStrictEqual(opened.request, record.request)) return { ok: false, reason: `${which}'s request differs from what its envelope signed (the record was changed after the worker wrote it)` };
  return { ok: true, request: opened.request, keyId: opened.keyId };
}

/**
 * A derived record's image: the signed image, or a digest in the same repository that a pull of the
 * releases it repeats recorded (the signed one's, or the one it names directly).
 */
function repeatsImage(image: string, signed: string, recordedDigests: ReadonlyArray<string | undefined>): boolean {
  if (image === signed) return true;
  if (!recordedDigests.includes(image)) return false;
  const digest = parseImageReference(image);
  const original = parseImageReference(signed);
  return digest.ok && original.ok && digest.image.digest !== undefined && digest.image.repository === original.image.repository;
}

export async function vouchFor(record: ReleaseRecord, policy: VouchingPolicy): Promise<Vouched> {
  if (record.request?.releaseId !== record.releaseId) return no(`the record's request is for release ${String(record.request?.releaseId)}, not ${record.releaseId}`);
  const keys = policy.keys();
  const repeated = repeats(record);
  let signed: { request: ReleaseRequest; keyId: string };
  let voucherId = record.releaseId;
  if (repeated === undefined) {
    if (record.vouchedBy !== undefined) return no(`the record names release ${record.vouchedBy} as its voucher but is neither a rollback nor a release for new hosts`);
    const own = signedRequest(record, keys, `release ${record.releaseId}`);
    if (!own.ok) return no(own.reason);
    signed = own;
  } else {
    voucherId = record.vouchedBy ?? repeated;
    const voucher = await policy.get(voucherId);
    const which = `release ${voucherId}, which it repeats,`;
    if (!voucher) return no(`${which} is not in the release state`);
    if (voucher.status !== 'succeeded') return no(`${which} ended ${voucher.status}: only a succeeded release vouches for a rollback or new hosts`);
    if (repeats(voucher) !== undefined) return no(`${which} is itself a repeat: a record must name the signed release it rests on`);
    if (voucher.target !== record.target) return no(`${which} is of ${voucher.target}, not of ${record.target}`);
    const theirs = signedRequest(voucher, keys, `release ${voucherId}`);
    if (!theirs.ok) return no(theirs.reason);
    if (!isDeepStrictEqual(theirs.request.target, record.request.target)) return no(`the record's target ${describeTarget(record.request.target)} is not the one release ${voucherId} was signed for`);
    const direct = repeated === voucherId ? voucher : await policy.get(repeated);
    if (!repeatsImage(record.request.image, theirs.request.image, [voucher.imageDigest, direct?.target === record.target ? direct.imageDigest : undefined])) {
      return no(`the record's image ${record.request.image} is neither the image release ${voucherId} was signed for nor the digest its pull recorded`);
    }
    signed = theirs;
  }
  const served = servedRelease(record.request, policy.releases);
  if (!served.ok) return no(`${served.reason} (${served.code})`);
  const { deployment, releaseConfig } = served.release;
  const target = `${record.request.target.stack}/${record.request.target.release}/${deployment}`;
  if (record.deployment !== deployment || record.target !== target) {
    return no(`the record says target ${record.target} (deployment ${record.deployment}), but its request is for ${target}`);
  }
  const scope = keyScopeRefusal(signed.request, signed.keyId, deployment, policy.scopes?.get(signed.keyId), isProtectedTarget(signed.request, releaseConfig, deployment));
  if (scope) return no(scope);
  return { ok: true, releaseConfig, voucher: voucherId, keyId: signed.keyId };
}
