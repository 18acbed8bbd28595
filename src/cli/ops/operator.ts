import { UsageError } from '../usage-error.js';

// What the verbs that steer a target take from the person running them: their free text (--reason,
// and --by, a note beside who they are) and durations (--for). Text from the command line
// is stored and shown in chat, so it is checked here: printable, bounded, never echoed raw when refused.

export const MAX_BY = 200;
export const MAX_REASON = 300;

/** Refuses text with control characters or over `max` characters; returns it trimmed. */
export function operatorText(option: string, value: string, max: number): string {
  const text = value.trim();
  if (text === '') throw new UsageError(`${option} must not be empty: say it in a few words`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(text)) throw new UsageError(`${option} must be one line of printable text (no control characters or line breaks)`);
  if (text.length > max) throw new UsageError(`${option} is ${text.length} characters; at most ${max}`);
  return text;
}

/** `--by`: a note recorded beside who ran the command (identity.ts), never instead of it. */
export function operatorNote(by: string | undefined): string | undefined {
  return by === undefined ? undefined : operatorText('--by', by, MAX_BY);
}

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
export const MAX_LOCK_MS = 30 * 86_400_000;

/** "4h", "90m", "1h30m", "2d": at least a minute, at most 30 days. */
export function parseDuration(option: string, value: string): number {
  const rule = 'a duration like 30m, 4h, 1h30m or 2d (s, m, h, d), from 1m to 30d';
  if (!/^(\d+[smhd])+$/.test(value)) throw new UsageError(`${option} must be ${rule}, not '${value.slice(0, 40).replace(/[^\x20-\x7e]/g, '?')}'`);
  let ms = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+)([smhd])/g)) ms += Number(amount) * UNIT_MS[unit!]!;
  if (ms < 60_000 || ms > MAX_LOCK_MS) throw new UsageError(`${option} must be ${rule}, not '${value}'`);
  return ms;
}
