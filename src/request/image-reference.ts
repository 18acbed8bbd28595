// The Docker reference grammar (distribution/reference), written out so that a request's image is
// parsed, not pattern-matched loosely: a reference that Docker would read differently is refused.
//
//   reference := name [ ":" tag ] [ "@" digest ]
//   name      := [domain "/"] path-component ["/" path-component]*
//   domain    := domain-component ["." domain-component]* [":" port]  |  "[" IPv6 "]" [":" port]

import { printable, REDACTED } from './outside-text.js';

const ALPHANUMERIC = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]{1,5})?`;
const TAG = '[\\w][\\w.-]{0,127}';
// Matched loosely here and checked exactly by `digestProblem`, so that a bad digest is named as such.
const ANY_DIGEST = '[^@]+';

const REFERENCE = new RegExp(
  `^(?:(${DOMAIN})/)?(${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::(${TAG}))?(?:@(${ANY_DIGEST}))?$`,
);

// Exactly what Docker accepts after '@': distribution/reference parses the digest with go-digest,
// which knows sha256, sha384 and sha512 and wants exactly 64, 96 or 128 lowercase hex digits. The
// reference grammar alone (`algorithm:[[:xdigit:]]{32,}`) is looser; Docker refuses the rest at
// `digest.Validate`, and so does this.
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };
const DIGEST_RULE = 'sha256: followed by 64 lowercase hexadecimal digits (or sha384: 96, sha512: 128)';

function digestProblem(digest: string): string | undefined {
  const colon = digest.indexOf(':');
  const algorithm = colon > 0 ? digest.slice(0, colon) : '';
  const expected = DIGEST_HEX_LENGTH[algorithm];
  if (expected === undefined) return `the digest must be ${DIGEST_RULE}`;
  const hex = digest.slice(colon + 1);
  if (!/^[0-9a-f]*$/.test(hex)) return `the digest must be ${DIGEST_RULE}: only 0-9 and a-f`;
  if (hex.length !== expected) return `the digest must be ${DIGEST_RULE}: ${hex.length} digits given`;
  return undefined;
}

// `user:token@registry/app:1`, `https://user:token@registry/app:1`, `token@registry/app:1`: a name
// before an '@' that is not followed by a digest. Never part of a Docker reference; refused, and the
// credentials are not repeated in the reason.
const USERINFO = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?([^/@\s]+)@(.*)$/s;
const DIGEST_AFTER_AT = /^sha(?:256|384|512):[0-9A-Fa-f]*$/;

/** The reference with its credentials replaced by `[redacted]`, or undefined when it has none. */
function withoutCredentials(text: string): string | undefined {
  const match = USERINFO.exec(text);
  if (!match) return undefined;
  const [, scheme = '', userinfo = '', after = ''] = match;
  if (scheme === '' && DIGEST_AFTER_AT.test(after)) return undefined; // name:tag@sha256:...
  const colon = userinfo.indexOf(':');
  return `${scheme}${colon >= 0 ? `${userinfo.slice(0, colon)}:` : ''}${REDACTED}@${after}`;
}

const MAX_NAME_LENGTH = 255;
export const DEFAULT_REGISTRY = 'docker.io';

export interface ImageReference {
  /** Registry host (and port), `docker.io` when the reference names none. */
  readonly registry: string;
  /** Path inside the registry, `library/` added for Docker Hub's official images as Docker does. */
  readonly path: string;
  /** registry/path: what allow-lists compare against. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
  /** The reference as given, which is what hosts pull. */
  readonly text: string;
}

export type ImageReferenceResult = { ok: true; image: ImageReference } | { ok: false; reason: string };

export function parseImageReference(text: string): ImageReferenceResult {
  if (typeof text !== 'string' || text.length === 0) return { ok: false, reason: 'image is empty: name the exact image to release (registry/path:tag)' };
  if (text.length > 512) return { ok: false, reason: 'image reference is longer than 512 characters' };
  const redacted = withoutCredentials(text);
  if (redacted !== undefined) {
    return {
      ok: false,
      reason: `image '${printable(redacted)}' contains credentials (a user name or password before '@'): a Docker reference has none; the worker pulls with its own registry credentials (rollout.registry in worker.yml)`,
    };
  }
  const match = REFERENCE.exec(text);
  if (!match) {
    return {
      ok: false,
      reason: `image '${printable(text)}' is not a Docker reference (expected registry/path:tag or registry/path@sha256:digest, lowercase path)`,
    };
  }
  const [, domainCandidate, rest, tag, digest] = match;
  if (digest !== undefined) {
    const problem = digestProblem(digest);
    if (problem) return { ok: false, reason: `image '${printable(text)}' is not a Docker reference: ${problem}` };
  }
  let registry = DEFAULT_REGISTRY;
  let path = rest!;
  // As in Docker: the first component is a registry only if it looks like a host name.
  if (domainCandidate !== undefined) {
    if (domainCandidate.includes('.') || domainCandidate.includes(':') || domainCandidate === 'localhost' || /[A-Z]/.test(domainCandidate)) {
      registry = domainCandidate;
    } else {
      path = `${domainCandidate}/${rest}`;
      if (!new RegExp(`^${PATH_COMPONENT}$`).test(domainCandidate)) {
        return { ok: false, reason: `image '${printable(text)}' has an invalid first path component` };
      }
    }
  }
  if (registry === DEFAULT_REGISTRY && !path.includes('/')) path = `library/${path}`;
  if (`${registry}/${path}`.length > MAX_NAME_LENGTH) {
    return { ok: false, reason: `image name is longer than ${MAX_NAME_LENGTH} characters` };
  }
  if (tag === undefined && digest === undefined) {
    return { ok: false, reason: `image '${printable(text)}' has neither a tag nor a digest; name the exact image to release` };
  }
  return {
    ok: true,
    image: {
      registry,
      path,
      repository: `${registry}/${path}`,
      ...(tag !== undefined ? { tag } : {}),
      ...(digest !== undefined ? { digest } : {}),
      text,
    },
  };
}

/**
 * Whether a repository is allowed by a list whose entries are exact repositories
 * (`registry:5000/team/app`) or prefixes ending in `/*` (`registry:5000/team/*`).
 */
export function repositoryAllowed(repository: string, allowed: readonly string[]): boolean {
  return allowed.some((entry) =>
    entry.endsWith('/*') ? repository.startsWith(entry.slice(0, -1)) : repository === entry,
  );
}

/** For error messages: never echo control characters or credentials back into a log or chat line. */
export { printable } from './outside-text.js';
