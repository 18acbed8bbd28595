// A 429's Retry-After is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). Anything else is
// ignored, and the sender falls back to its own backoff.

/** Milliseconds to wait, or undefined when the header is missing or unreadable. */
export function parseRetryAfter(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  if (!/[a-z]/i.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
