// One line of the worker's log (pino JSON: time as ISO text, level as a label, msg, then fields) as a
// person reads it: "2026-11-29 10:02:03.120Z INFO  request accepted  releaseId=... target=...".
// A line that is not a JSON object is returned as it is.

const LEAVE_OUT = new Set(['time', 'level', 'msg', 'pid', 'hostname']);
const TONE: Record<string, string> = { error: '31', fatal: '31', warn: '33', debug: '2', trace: '2' };

export interface LogLine {
  readonly text: string;
  /** The line's releaseId, when it names one. */
  readonly releaseId?: string;
}

const value = (v: unknown) => (typeof v === 'string' ? (/[\s"=]/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v));

export function prettyLine(line: string, colour: boolean): LogLine {
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { text: line };
    entry = parsed as Record<string, unknown>;
  } catch {
    return { text: line };
  }
  const time = typeof entry.time === 'string' ? entry.time.replace('T', ' ') : typeof entry.time === 'number' ? new Date(entry.time).toISOString().replace('T', ' ') : '';
  const level = String(entry.level ?? '').toUpperCase();
  const tone = TONE[String(entry.level)];
  const shownLevel = colour && tone ? `\x1b[${tone}m${level.padEnd(5)}\x1b[0m` : level.padEnd(5);
  const fields = Object.entries(entry)
    .filter(([key]) => !LEAVE_OUT.has(key))
    .map(([key, v]) => `${key}=${value(v)}`);
  const text = [time, shownLevel, String(entry.msg ?? ''), ...(fields.length > 0 ? [` ${fields.join(' ')}`] : [])].filter((part) => part !== '').join(' ');
  return { text, ...(typeof entry.releaseId === 'string' ? { releaseId: entry.releaseId } : {}) };
}
