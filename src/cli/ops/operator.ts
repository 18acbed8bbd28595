import { userInfo } from 'node:os';
import { UsageError } from '../usage-error.js';

// What the verbs that steer a target take from the person running them: who they are (recorded with
// every request), their free text (--reason, --by), and durations (--for). Text from the command line
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

/**
 * Who ran the command: --by, else the AWS identity (DynamoDB store: `aws` resolves it), else the login
 * user on the bastion (SUDO_USER when run through sudo, so the person rather than root).
 */
export async function operatorName(by: string | undefined, aws: (() => Promise<string>) | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (by !== undefined) return operatorText('--by', by, MAX_BY);
  if (aws) {
    try {
      return operatorText('the AWS identity', await aws(), MAX_BY);
    } catch (error) {
      throw new UsageError(`cannot tell who you are from AWS (STS GetCallerIdentity: ${(error as Error).message.split('\n')[0]!.slice(0, 200)}); say it with --by NAME`);
    }
  }
  const login = env.SUDO_USER || userInfo().username;
  return operatorText('the login user', login, MAX_BY);
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
