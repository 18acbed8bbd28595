// Java .properties text, as TeamCity writes its build and configuration parameter files: `key=value`
// or `key:value` lines, `#`/`!` comments, backslash escapes (`\:`, `\\`, `\t`, `\n`, `\uXXXX`) and
// lines continued with a trailing backslash.

function unescape(text: string): string {
  return text.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_all, escaped: string) => {
    if (escaped.length === 5) return String.fromCharCode(Number.parseInt(escaped.slice(1), 16));
    return ({ t: '\t', n: '\n', r: '\r', f: '\f' } as Record<string, string>)[escaped] ?? escaped;
  });
}

/** The logical lines: physical lines joined where one ends in an odd number of backslashes. */
function logicalLines(text: string): string[] {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = pending ? raw.replace(/^\s+/, '') : raw;
    const trailing = /\\+$/.exec(line)?.[0].length ?? 0;
    if (trailing % 2 === 1) {
      pending += line.slice(0, -1);
      continue;
    }
    lines.push(pending + line);
    pending = '';
  }
  if (pending) lines.push(pending);
  return lines;
}

export function parseJavaProperties(text: string): Map<string, string> {
  const properties = new Map<string, string>();
  for (const line of logicalLines(text)) {
    const trimmed = line.replace(/^\s+/, '');
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith('!')) continue;
    // The key ends at the first unescaped '=', ':' or whitespace.
    const match = /^((?:\\.|[^=:\s\\])*)\s*[=:]?\s*(.*)$/.exec(trimmed);
    if (!match) continue;
    properties.set(unescape(match[1]!), unescape(match[2]!));
  }
  return properties;
}
