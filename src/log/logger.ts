import { pino, destination as pinoDestination, stdSerializers, stdTimeFunctions, type DestinationStream, type Logger } from 'pino';

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

/** JSON lines on stdout by default; `toStderr` for commands whose stdout is their answer (`plan`). */
export function createLogger(options: { level?: string; name?: string; toStderr?: boolean } = {}, destination?: DestinationStream): Logger {
  return pino(
    {
      name: options.name ?? 'harbormaster',
      level: options.level ?? 'info',
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: { err: stdSerializers.err },
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pinoDestination({ dest: options.toStderr ? 2 : 1, sync: true }),
  );
}
