// Text for people: aligned columns, and colour only where it helps (a terminal, no NO_COLOR). Pure:
// the command decides whether colour is on (useColour) and prints what these return.

export type Tone = 'good' | 'bad' | 'warn' | 'dim' | 'plain';
export interface Cell {
  readonly text: string;
  readonly tone?: Tone;
}
export type CellInput = string | Cell;

const CODES: Record<Exclude<Tone, 'plain'>, string> = { good: '32', bad: '31', warn: '33', dim: '2' };

/** Colour on a terminal, unless NO_COLOR is set (to anything non-empty, as no-color.org says). */
export function useColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

export function paint(cell: CellInput, colour: boolean): string {
  const { text, tone = 'plain' } = typeof cell === 'string' ? { text: cell } : cell;
  return colour && tone !== 'plain' ? `\x1b[${CODES[tone]}m${text}\x1b[0m` : text;
}

/** Rows under a header, each column as wide as its widest cell, two spaces apart; the last column is not padded. */
export function renderTable(header: readonly string[], rows: readonly (readonly CellInput[])[], colour: boolean): string[] {
  const text = (cell: CellInput) => (typeof cell === 'string' ? cell : cell.text);
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => text(row[i] ?? '').length)));
  const line = (cells: readonly CellInput[]) =>
    cells
      .map((cell, i) => {
        const padding = i === cells.length - 1 ? '' : ' '.repeat(widths[i]! - text(cell).length);
        return paint(cell, colour) + padding;
      })
      .join('  ')
      .trimEnd();
  return [line(header.map((title) => ({ text: title, tone: 'dim' as const }))), ...rows.map(line)];
}

/** The image's last path segment with its tag or short digest: "ingest:v2", "ingest@sha256:1234abcd". */
export function shortImage(image: string): string {
  const last = image.slice(image.lastIndexOf('/') + 1);
  return last.replace(/@sha256:([0-9a-f]{8})[0-9a-f]*/, '@sha256:$1');
}

/** How long ago, in the largest whole unit: "40s ago", "5m ago", "3h ago", "2d ago". */
export function ago(now: Date, at: string | undefined): string {
  if (!at) return '-';
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(at)) / 1000));
  return `${duration(seconds * 1000)} ago`;
}

/** A duration in the largest whole unit but seconds below two minutes: "45s", "3m", "5h", "2d". */
export function duration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}

export const shortId = (releaseId: string) => releaseId.slice(0, 8);

/** ISO time to the second, without the T and the milliseconds: "2026-11-29 10:02:03Z". */
export const when = (at: string | undefined) => (at ? `${at.slice(0, 10)} ${at.slice(11, 19)}Z` : '-');
