// The Docker reference grammar (distribution/reference), written out so that a request's image is
// parsed, not pattern-matched loosely: a reference that Docker would read differently is refused.
//
//   reference := name [ ":" tag ] [ "@" digest ]
//   name      := [domain "/"] path-component ["/" path-component]*
//   domain    := domain-component ["." domain-component]* [":" port]  |  "[" IPv6 "]" [":" port]

const ALPHANUMERIC = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]{1,5})?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const REFERENCE = new RegExp(
  `^(?:(${DOMAIN})/)?(${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`,
);

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
  if (typeof text !== 'string' || text.length === 0) return { ok: false, reason: 'image is empty' };
  if (text.length > 512) return { ok: false, reason: 'image reference is longer than 512 characters' };
  const match = REFERENCE.exec(text);
  if (!match) {
    return {
      ok: false,
      reason: `image '${printable(text)}' is not a Docker reference (expected registry/path:tag or registry/path@sha256:digest, lowercase path)`,
    };
  }
  const [, domainCandidate, rest, tag, digest] = match;
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

/** For error messages: never echo control characters back into a log or chat line. */
export function printable(text: string, max = 80): string {
  const cleaned = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
  return cleaned.length > max ? `${cleaned.slice(0, max)}...` : cleaned;
}
