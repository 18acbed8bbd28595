import { parseImageReference } from '../request/image-reference.js';
import { describeTarget, type RequestTarget } from '../request/release-request.js';
import { untrusted } from './slack-text.js';

// Small, chat-safe renderings of the things release messages talk about. Every function returns text
// already escaped for Slack, so a message builder can paste its results as they are.

/** `stack/release/deployment` or `stack/release/~user`. */
export function targetName(target: RequestTarget | string): string {
  return untrusted(typeof target === 'string' ? target : describeTarget(target), 120);
}

/**
 * The image as a person says it: the last path component and tag (`ingest:v2`), or a 12-digit digest.
 * The full reference goes in a field; the text line stays short.
 */
export function shortImage(image: string): string {
  const parsed = parseImageReference(image);
  if (!parsed.ok) return untrusted(image, 80);
  const { path, tag, digest } = parsed.image;
  const name = path.slice(path.lastIndexOf('/') + 1);
  const version = tag !== undefined ? `:${tag}` : `@${digest!.slice(0, digest!.indexOf(':') + 13)}`;
  return untrusted(`${name}${version}`, 80);
}

export function fullImage(image: string): string {
  return untrusted(image, 512);
}

/** `4.2 s`, `42 s`, `3 min 5 s`, `1 h 2 min`: precise enough to compare releases, short enough to scan. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return seconds % 60 === 0 ? `${minutes} min` : `${minutes} min ${seconds % 60} s`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
}

/** Host names, comma separated, the first `max` of them: a 200-host fleet is not a chat message. */
export function hostList(hosts: readonly string[], max = 10): string {
  if (hosts.length === 0) return 'none';
  const shown = hosts.slice(0, max).map((host) => untrusted(host, 100));
  return hosts.length > max ? `${shown.join(', ')} and ${hosts.length - max} more` : shown.join(', ');
}

export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
