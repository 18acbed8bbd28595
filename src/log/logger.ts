import { pino, destination as pinoDestination, stdSerializers, stdTimeFunctions, type DestinationStream, type Logger } from 'pino';

import { escapeUnsafe, redactCredentials } from '../request/outside-text.js';

export type { Logger };

// Secrets are redacted once, here, for every child logger: anything that looks like a key, a password,
// a token or a webhook URL never reaches the log even if a caller passes it by mistake.
export const REDACTED_PATHS = [
  'secret',
  'password',
  'token',
  'signature',
  'webhookUrl',
  'authorization',
  '*.secret',
  '*.password',
  '*.token',
  '*.signature',
  '*.webhookUrl',
  '*.authorization',
  '*.privateKey',
  'headers.authorization',
  '*.headers.authorization',
];

// The last guard for text from outside (a request, a queue message) that reaches a log field: a
// terminal escape, a bidirectional override or a credential in a URL is escaped or redacted, whoever
// logged it. Newlines and tabs are left alone (multi-line output stays readable; JSON escapes them).
// Plain objects and arrays are walked (copied, never changed in place); errors and other class
// instances are left to their serializers.
const MAX_WALK_DEPTH = 8;

function safeLogText(text: string): string {
  return escapeUnsafe(text.includes('@') ? redactCredentials(text) : text, { keepLineBreaks: true });
}

export function safeLogValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return safeLogText(value);
  if (value === null || typeof value !== 'object' || depth >= MAX_WALK_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => safeLogValue(item, depth + 1));
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) copy[key] = safeLogValue(item, depth + 1);
  return copy;
}

/** JSON lines on stdout by default; `toStderr` for commands whose stdout is their answer (`plan`). */
export function createLogger(options: { level?: string; name?: string; toStderr?: boolean } = {}, destination?: DestinationStream): Logger {
  return pino(
    {
      name: options.name ?? 'harbormaster',
      level: options.level ?? 'info',
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: { err: stdSerializers.err },
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: (object) => safeLogValue(object) as Record<string, unknown> },
    },
    destination ?? pinoDestination({ dest: options.toStderr ? 2 : 1, sync: true }),
  );
}
