import type { Membership } from '../../loadbalancer/load-balancers.js';
import type { ReleaseSummary } from '../../state/target-summary.js';
import { renderTable, shortId, shortImage, type Tone } from './table.js';

// `hosts TARGET`, decided: what each instance runs now against the target's current release. Pure:
// observe-hosts.ts gathers the facts from AWS and over SSH.

export interface ContainerFacts {
  readonly id: string;
  readonly name: string;
  readonly image: string;
  readonly state: string;
  /** The image's HEALTHCHECK: starting, healthy, unhealthy or none. */
  readonly health: string;
  /** The release that started it (its label); null for a container no release started. */
  readonly releaseId: string | null;
}

export interface HostFacts {
  readonly instanceId: string;
  readonly address: string;
  readonly name: string | null;
  readonly zone: string | null;
  /** One per load balancer of the target: what it says of this instance. */
  readonly balancers: { readonly loadBalancer: string; readonly membership: Membership | 'unknown'; readonly error?: string }[];
  /** Why the engine could not be read over SSH; null when it was, or was not asked (containersRead false). */
  readonly unreachable: string | null;
  /** false: the containers were not read (hosts without --ssh); live and kept are then empty. */
  readonly containersRead?: boolean;
  /** The container under the configured name; null when there is none. */
  readonly live: ContainerFacts | null;
  /** The bastion's HTTP health check of the host: ok, or why not. */
  readonly check: { readonly ok: boolean; readonly reason?: string } | null;
  /** The target's other containers: rollback copies kept by earlier releases. */
  readonly kept: ContainerFacts[];
}

/**
 * current: runs the current release (or its image); drifted: it was released and runs something else
 * now; never-released: it is not among the current release's hosts (it joined after) and runs something
 * else; no-live-container: nothing runs under the configured name; unknown: its engine could not be
 * read; no-current-release: the target has no succeeded release recorded; not-read: its containers were not
 * asked for (hosts without --ssh).
 */
export type Match = 'current' | 'drifted' | 'never-released' | 'no-live-container' | 'unknown' | 'no-current-release' | 'not-read';

export interface HostRow extends HostFacts {
  readonly matches: Match;
}

export interface HostsView {
  readonly format: 'harbormaster.hosts/1';
  readonly at: string;
  readonly target: string;
  readonly current: ReleaseSummary | null;
  readonly hosts: HostRow[];
}

export function matchOf(host: HostFacts, current: ReleaseSummary | null): Match {
  if (host.containersRead === false) return 'not-read';
  if (host.unreachable !== null) return 'unknown';
  if (!host.live || host.live.state !== 'running') return 'no-live-container';
  if (!current) return 'no-current-release';
  if (host.live.releaseId === current.releaseId || host.live.image === current.image) return 'current';
  return current.hosts.includes(host.instanceId) ? 'drifted' : 'never-released';
}

export function hostsView(target: string, current: ReleaseSummary | null, hosts: readonly HostFacts[], now: Date): HostsView {
  return { format: 'harbormaster.hosts/1', at: now.toISOString(), target, current, hosts: hosts.map((host) => ({ ...host, matches: matchOf(host, current) })) };
}

const matchTone = (match: Match): Tone => (match === 'current' ? 'good' : match === 'no-current-release' || match === 'not-read' ? 'dim' : 'bad');
const membershipTone = (m: string): Tone => (m === 'in-service' ? 'good' : m === 'out' || m === 'draining' || m === 'pending' ? 'warn' : 'bad');

export function hostsText(view: HostsView, colour: boolean): string[] {
  const head = view.current
    ? `${view.target}: current release ${shortId(view.current.releaseId)} ${view.current.image} (by ${view.current.requestedBy})`
    : `${view.target}: no succeeded release recorded`;
  if (view.hosts.length === 0) return [head, 'no running instance carries the target\'s tags'];
  const rows = view.hosts.map((h) => [
    h.instanceId,
    h.name ?? '-',
    h.address,
    h.zone ?? '-',
    h.balancers.length ? { text: h.balancers.map((b) => `${b.loadBalancer}=${b.membership}`).join(' '), tone: h.balancers.every((b) => b.membership === 'in-service') ? ('good' as const) : membershipTone(h.balancers.find((b) => b.membership !== 'in-service')!.membership) } : '-',
    h.containersRead === false ? { text: 'not read (--ssh)', tone: 'dim' as const } : h.unreachable !== null ? { text: `unreachable: ${h.unreachable}`, tone: 'bad' as const } : h.live ? `${h.live.name} ${h.live.state}` : { text: 'none', tone: 'bad' as const },
    h.live ? shortImage(h.live.image) : '-',
    h.live ? h.live.health : '-',
    h.check ? (h.check.ok ? { text: 'ok', tone: 'good' as const } : { text: h.check.reason ?? 'failed', tone: 'bad' as const }) : '-',
    h.kept.length ? h.kept.map((k) => shortImage(k.image)).join(' ') : '-',
    { text: h.matches, tone: matchTone(h.matches) },
  ]);
  return [head, ...renderTable(['INSTANCE', 'NAME', 'ADDRESS', 'ZONE', 'LOAD BALANCERS', 'CONTAINER', 'IMAGE', 'HEALTH', 'CHECK', 'KEPT', 'MATCHES'], rows, colour)];
}
