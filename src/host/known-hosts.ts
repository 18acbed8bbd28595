import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

// An OpenSSH known_hosts file, parsed once, answering "is this key the one for this address?".
// Supported: plain host lists (`a,b,[c]:2222 type base64`), hashed names (`|1|salt|hash`), wildcard
// patterns (`*`, `?`) with `!` negation, and the @revoked marker. @cert-authority lines are ignored:
// the worker does not accept host certificates, so such a host is simply unknown.

export interface KnownHostKey {
  readonly keyType: string;
  /** The key blob, as the server sends it in the key exchange. */
  readonly blob: Buffer;
  readonly revoked: boolean;
}

interface KnownHostsLine extends KnownHostKey {
  readonly patterns: readonly string[];
}

export type HostKeyVerdict =
  | { readonly accepted: true }
  | { readonly accepted: false; readonly problem: 'unknown-host' | 'changed-key' | 'revoked-key'; readonly known: readonly KnownHostKey[] };

/** OpenSSH's fingerprint of a key blob: SHA256: then unpadded base64 of its SHA-256. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The algorithm name at the start of a key blob (uint32 length, then the name). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const length = blob.readUInt32BE(0);
  return length > 0 && 4 + length <= blob.length ? blob.subarray(4, 4 + length).toString('latin1') : 'unknown';
}

/** How known_hosts names an address: bare for port 22, `[address]:port` otherwise. */
export function hostPatternName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

function hashedNameMatches(entry: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const [, magic, salt, hash] = entry.split('|');
  if (magic !== '1' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|')) return hashedNameMatches(pattern, name);
  return globToRegExp(pattern).test(name);
}

/** OpenSSH semantics: any negated pattern that matches excludes the line, else any positive match includes it. */
function linesMatches(patterns: readonly string[], name: string): boolean {
  let matched = false;
  for (const pattern of patterns) {
    if (pattern.startsWith('!')) {
      if (patternMatches(pattern.slice(1), name)) return false;
    } else if (patternMatches(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

export class KnownHosts {
  private constructor(private readonly lines: readonly KnownHostsLine[]) {}

  static parse(contents: string): KnownHosts {
    const lines: KnownHostsLine[] = [];
    for (const raw of contents.split(/\r?\n/)) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      let fields = line.split(/\s+/);
      let revoked = false;
      if (fields[0]?.startsWith('@')) {
        if (fields[0] === '@revoked') revoked = true;
        else continue; // @cert-authority: certificates are not accepted
        fields = fields.slice(1);
      }
      const [hosts, keyType, base64] = fields;
      if (!hosts || !keyType || !base64) continue;
      const blob = Buffer.from(base64, 'base64');
      if (blob.length === 0) continue;
      lines.push({ patterns: hosts.split(','), keyType, blob, revoked });
    }
    return new KnownHosts(lines);
  }

  /** Every key known_hosts lists for this address and port (revoked ones included, marked). */
  keysFor(address: string, port: number): KnownHostKey[] {
    const names = port === 22 ? [address, `[${address}]:22`] : [hostPatternName(address, port)];
    return this.lines.filter((line) => names.some((name) => linesMatches(line.patterns, name)));
  }

  verify(address: string, port: number, presented: Buffer): HostKeyVerdict {
    const known = this.keysFor(address, port);
    if (known.some((key) => key.revoked && key.blob.equals(presented))) return { accepted: false, problem: 'revoked-key', known };
    const trusted = known.filter((key) => !key.revoked);
    if (trusted.some((key) => key.blob.equals(presented))) return { accepted: true };
    return { accepted: false, problem: trusted.length === 0 ? 'unknown-host' : 'changed-key', known: trusted };
  }
}

/** Host key algorithms ssh2 supports, in its default order of preference. */
const SSH2_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const;
export type HostKeyAlgorithm = (typeof SSH2_HOST_KEY_ALGORITHMS)[number];

/**
 * Host key algorithms to offer, those of the key types known_hosts has for the host first (as OpenSSH
 * orders them), so that a server with several host keys presents one we can check rather than one of
 * another type we would then refuse as "changed".
 */
export function hostKeyAlgorithmsFor(keys: readonly KnownHostKey[]): HostKeyAlgorithm[] {
  const preferred = new Set<string>();
  for (const key of keys) {
    if (key.revoked) continue;
    for (const algorithm of key.keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [key.keyType]) preferred.add(algorithm);
  }
  const first = SSH2_HOST_KEY_ALGORITHMS.filter((algorithm) => preferred.has(algorithm));
  return [...first, ...SSH2_HOST_KEY_ALGORITHMS.filter((algorithm) => !preferred.has(algorithm))];
}
