import { askedBy } from '../../state/control.js';
import type { StatusView } from './status-view.js';
import { ago, renderTable, shortId, shortImage, type CellInput } from './table.js';

// `status` for people: one line per target, then a note per waiting release and pending restore.

export function statusText(view: StatusView, colour: boolean): string[] {
  const now = new Date(view.at);
  const rows = view.targets.map((t): CellInput[] => {
    const now_ = t.inProgress
      ? {
          text: `${t.inProgress.direction === 'back' ? 'rolling back' : 'releasing'} ${shortImage(t.inProgress.image)} ${t.inProgress.hostsDone}/${t.inProgress.hostsTotal}${t.inProgress.steps.length ? ` (${t.inProgress.steps.join(', ')})` : ''} [${shortId(t.inProgress.releaseId)}] on ${t.inProgress.worker ?? '?'} since ${ago(now, t.inProgress.since)}`,
          tone: t.inProgress.direction === 'back' ? ('bad' as const) : ('warn' as const),
        }
      : '-';
    const failure = t.lastFailure ? { text: `${t.lastFailure.status} ${shortImage(t.lastFailure.image)} [${shortId(t.lastFailure.releaseId)}] ${ago(now, t.lastFailure.finishedAt)}`, tone: 'bad' as const } : '-';
    return [
      t.target,
      t.current ? { text: shortImage(t.current.image), tone: 'good' } : { text: 'none recorded', tone: 'dim' },
      t.current ? t.current.requestedBy : '-',
      t.current ? ago(now, t.current.finishedAt) : '-',
      t.current?.commit ? t.current.commit.slice(0, 10) : '-',
      now_,
      t.waiting.length ? { text: String(t.waiting.length), tone: 'warn' } : '0',
      t.restoresPending.length ? { text: String(t.restoresPending.length), tone: 'warn' } : '0',
      failure,
    ];
  });
  const lines = renderTable(['TARGET', 'CURRENT', 'BY', 'WHEN', 'COMMIT', 'NOW', 'WAITING', 'RESTORES', 'LAST FAILURE'], rows, colour);
  for (const t of view.targets) {
    if (t.lock) lines.push(`  ${t.target}: locked by ${askedBy(t.lock)} ${ago(now, t.lock.at)}, until ${t.lock.until}: ${t.lock.reason}`);
    if (t.rollbackRequested) lines.push(`  ${t.target}: rollback asked by ${askedBy(t.rollbackRequested)} ${ago(now, t.rollbackRequested.at)}, waiting for the worker's next sweep [${shortId(t.rollbackRequested.releaseId)}]`);
    if (t.rollbackRefused) lines.push(`  ${t.target}: rollback [${shortId(t.rollbackRefused.releaseId)}] refused by the worker ${ago(now, t.rollbackRefused.at)}: ${t.rollbackRefused.reason}`);
    for (const w of t.waiting) lines.push(`  ${t.target}: waiting ${shortImage(w.image)} [${shortId(w.releaseId)}] by ${w.requestedBy}: ${w.why}`);
    for (const r of t.restoresPending) lines.push(`  ${t.target}: to restore: ${r}`);
    for (const a of t.lastFailure?.attention ?? []) lines.push(`  ${t.target}: needs a person: ${a}`);
  }
  return lines;
}
