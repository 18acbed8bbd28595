import { askedBy } from '../../state/control.js';
import { isFinal, type ReleaseRecord } from '../../state/release-record.js';
import { historyEntry, toneOf, type HistoryEntry } from './history-view.js';
import { restoresOf } from './status-view.js';
import { duration, paint, renderTable, when } from './table.js';

// `show RELEASE_ID`, decided: the whole record, readable. Pure.

export interface ShowView {
  readonly format: 'harbormaster.show/1';
  readonly at: string;
  readonly summary: HistoryEntry;
  readonly ended: boolean;
  readonly restoresPending: string[];
  /** The record exactly as the store holds it (format harbormaster.release/1). */
  readonly record: ReleaseRecord;
}

export function showView(record: ReleaseRecord, now: Date): ShowView {
  return { format: 'harbormaster.show/1', at: now.toISOString(), summary: historyEntry(record, now), ended: isFinal(record.status), restoresPending: restoresOf(record), record };
}

const span = (from?: string, to?: string) => (from && to ? duration(Date.parse(to) - Date.parse(from)) : '-');

export function showText(view: ShowView, colour: boolean): string[] {
  const { record, summary } = view;
  const { request } = record;
  const lines = [
    `release ${record.releaseId}  ${paint({ text: record.status, tone: toneOf(record.status) }, colour)}${record.direction === 'back' && !view.ended ? ' (rolling back)' : ''}`,
    `  target       ${record.target}`,
    `  image        ${request.image}`,
    `  requested    by ${request.requestedBy} at ${when(request.createdAt)}${request.source.branch ? `, branch ${request.source.branch}` : ''}${request.source.commit ? `, commit ${request.source.commit}` : ''}`,
    ...(request.source.buildUrl ? [`  build        ${request.source.buildUrl}`] : []),
    `  accepted     ${when(record.acceptedAt)} (key ${record.keyId}); taken up ${record.attempts} time(s)${record.owner ? `, last by ${record.owner.worker}` : ''}`,
    `  started      ${when(record.startedAt)}   finished ${when(record.finishedAt)}   took ${summary.durationMs === null ? '-' : duration(summary.durationMs)}`,
  ];
  if (record.origin) lines.push(`  rollback     to the image of ${record.origin.to}${record.origin.of ? `, undoing ${record.origin.of}` : ''}, by ${record.origin.by} at ${when(record.origin.at)}${record.origin.reason ? `: ${record.origin.reason}` : ''}`);
  if (record.stop) lines.push(`  stopped      by ${askedBy(record.stop)} at ${when(record.stop.at)}${record.stop.rollback ? ', with rollback' : ''}`);
  if (record.held && !view.ended) lines.push(`  waiting      ${record.target} is locked by ${record.held.by} until ${when(record.held.until)}: ${record.held.reason}`);
  if (record.reason) lines.push(`  reason       ${record.reason}`);
  if (record.failure) lines.push(`  failure      ${record.failure.host ? `${record.failure.host} ` : ''}at ${record.failure.step}: ${record.failure.reason}`);
  if (record.damaged) lines.push(`  damaged      ${record.damaged}`);
  const plan = record.plan;
  if (plan) {
    lines.push('plan');
    lines.push(`  batches      ${plan.batches.map((batch) => batch.join(' ')).join(' | ')}`);
    lines.push(`  batch size ${plan.batchSize}, min healthy ${plan.minHealthy}, on failure ${plan.onFailure}, drain ${plan.drainTimeoutMs / 1000}s, in service within ${plan.inServiceTimeoutMs / 1000}s`);
    lines.push(`  load balancers ${plan.loadBalancers.map((lb) => `${lb.kind}:${lb.id}`).join(', ') || 'none'}`);
  }
  const hosts = Object.values(record.hosts);
  if (hosts.length > 0) {
    lines.push('hosts');
    const rows = hosts.map((h) => [
      h.instanceId,
      h.name ?? h.address,
      { text: h.progress, tone: h.progress === 'released' ? ('good' as const) : h.progress === 'attention' ? ('bad' as const) : ('plain' as const) },
      h.before.live ? h.before.live.image : 'none',
      h.before.registeredIn.join(' ') || '-',
      when(h.outAt),
      span(h.outAt, h.backAt),
      h.intent ? `${h.intent.action} @ ${when(h.intent.at)}` : '-',
      h.outcome ? `${h.outcome.action} ${h.outcome.ok ? 'ok' : `FAILED: ${h.outcome.error ?? ''}`}` : '-',
      [h.failure ? `${h.failure.step}: ${h.failure.reason}` : '', h.attention ?? ''].filter(Boolean).join('; '),
    ]);
    lines.push(...renderTable(['INSTANCE', 'HOST', 'PROGRESS', 'BEFORE', 'REGISTERED IN', 'OUT AT', 'OUT FOR', 'LAST STEP', 'ITS OUTCOME', 'PROBLEM'], rows, colour).map((l) => `  ${l}`));
  }
  const groups = Object.entries(record.scaling);
  if (groups.length > 0 || record.alarms) {
    lines.push('changed and restored');
    for (const [group, g] of groups) lines.push(`  Auto Scaling ${group}: suspended ${g.suspend.join(', ') || 'nothing'} (already suspended before: ${g.before.join(', ') || 'none'}): ${g.phase}`);
    if (record.alarms) lines.push(`  alarms ${record.alarms.names.join(', ') || 'none'} by ${record.alarms.mode}${record.alarms.rule ? ` (rule ${record.alarms.rule.name} until ${when(record.alarms.rule.until)})` : ''}: ${record.alarms.phase}`);
  }
  for (const line of view.restoresPending) lines.push(`  still to restore: ${line}`);
  for (const line of record.attention ?? []) lines.push(`  ${paint({ text: 'needs a person', tone: 'bad' }, colour)}: ${line}`);
  return lines;
}
