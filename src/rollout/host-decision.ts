import type { ProbeResult } from '../health/http-probe.js';
import type { ContainerInfo } from '../host/host-session.js';
import type { Membership } from '../loadbalancer/load-balancers.js';
import type { HostRecord } from '../state/release-record.js';

// The one place that decides what a host needs next. Pure: what was observed on the host (its
// containers, what every load balancer says of it, the HTTP probe), what the release recorded about
// it (what it was before, when it was deregistered or registered, which container the release
// started) and where the release is going (the new image, or back) in; one action out. No I/O and
// no clock but the observation's: first run, redelivery and repair after a crash all come here.
//
// The new container is created (not started) while the host still serves, under a name of its own
// (nextName): the old container holds the configured name and the host port until it stops. Once the
// old one is stopped and renamed, the created one takes the name and starts.
//
// Two rules hold in every answer: a host registered in a load balancer always has a healthy live
// container (otherwise the answer is to deregister it), and a host goes back only into the load
// balancers it was in before the release.

export const RELEASE_ID_LABEL = 'harbormaster.release-id';
export const START_CHECK_LABEL = 'harbormaster.start-check';

export interface HostObservation {
  /** When it was observed (epoch ms): every deadline below is measured against it. */
  readonly at: number;
  /** Containers of the target on the host (by label or by the configured name), running or not. */
  readonly containers: readonly ContainerInfo[];
  /** What each load balancer of the release says of the host, by loadBalancerKey. */
  readonly memberships: Readonly<Record<string, Membership>>;
  /** The HTTP health probe on the host's address, made when a container runs. */
  readonly probe?: ProbeResult;
}

export interface ReleaseTerms {
  readonly releaseId: string;
  /** The live container's name on every host. */
  readonly containerName: string;
  /** loadBalancerKey of every load balancer of the release. */
  readonly loadBalancers: readonly string[];
  readonly smoke: boolean;
  /** Also wait for the image's own HEALTHCHECK verdict (health.waitForDocker); otherwise the probe alone decides. */
  readonly waitForDocker: boolean;
  readonly healthTimeoutMs: number;
  readonly drainTimeoutMs: number;
  readonly inServiceTimeoutMs: number;
}

export interface HostSituation {
  /** new: the release goes forward on this host; old: it goes back to the container live before. */
  readonly goal: 'new' | 'old';
  readonly host: HostRecord;
  readonly observed: HostObservation;
  readonly release: ReleaseTerms;
}

export type WaitFor = 'drain' | 'healthy' | 'in-service';

export type HostAction =
  | { readonly kind: 'deregister'; readonly step: string; readonly from: readonly string[] }
  | { readonly kind: 'register'; readonly step: string; readonly to: readonly string[] }
  /** The recorded live container: renamed out of the way and stopped, kept for rollback. */
  | { readonly kind: 'stop-old'; readonly step: string; readonly container: string; readonly rename: string; readonly drainTimedOut: boolean }
  /** Any other container holding the configured name, or live beside the one that should be: renamed and stopped. */
  | { readonly kind: 'set-aside'; readonly step: string; readonly container: string; readonly rename: string; readonly why: string }
  /** The new container created, not started, under nextName: before the host leaves service. */
  | { readonly kind: 'create-new'; readonly step: string; readonly name: string }
  /** The created new container under the configured name, started. */
  | { readonly kind: 'start-new'; readonly step: string; readonly container: string }
  /** The recorded live container back under its name, started. */
  | { readonly kind: 'start-old'; readonly step: string; readonly container: string }
  | { readonly kind: 'remove'; readonly step: string; readonly container: string; readonly why: string }
  | { readonly kind: 'smoke'; readonly step: string; readonly container: string }
  | { readonly kind: 'wait'; readonly step: string; readonly for: WaitFor; readonly until: number; readonly status: string }
  | { readonly kind: 'done'; readonly step: 'done'; readonly on: 'new' | 'old' }
  /** Going forward, the host cannot reach the new image: the release turns back. */
  | { readonly kind: 'fail'; readonly step: string; readonly reason: string }
  /** Going back, the host cannot be put back: left out of service unless it is healthy, for a person. */
  | { readonly kind: 'attention'; readonly step: string; readonly reason: string };

const REGISTERED: ReadonlySet<Membership> = new Set(['in-service', 'pending', 'unhealthy']);
const isLive = (c: ContainerInfo) => c.state === 'running' || c.state === 'restarting' || c.state === 'paused';
const shortId = (id: string) => id.slice(0, 12);
const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

type Health = { status: 'healthy' } | { status: 'starting'; until: number; detail: string } | { status: 'failed'; reason: string };

/**
 * Whether a container is healthy: running, not crash-looping (for the container the release started)
 * and the HTTP probe passing; with waitForDocker, also its image's HEALTHCHECK healthy (or
 * absent). Failed once past the timeout.
 */
export function judgeHealth(container: ContainerInfo, observed: HostObservation, terms: ReleaseTerms, startedByRelease: boolean): Health {
  if (container.state !== 'running') {
    return { status: 'failed', reason: `container ${container.state}${container.exitCode !== undefined ? ` with code ${container.exitCode}` : ''}` };
  }
  if (startedByRelease && container.restartCount > 0) {
    return { status: 'failed', reason: `container restarted ${container.restartCount} time(s) since the release started it (a crash loop)` };
  }
  if (terms.waitForDocker && container.health === 'unhealthy') return { status: 'failed', reason: "the image's HEALTHCHECK reports unhealthy" };
  const imageHealthy = !terms.waitForDocker || container.health === 'none' || container.health === 'healthy';
  if (imageHealthy && observed.probe?.ok) return { status: 'healthy' };
  const detail = !imageHealthy ? `image health ${container.health}` : observed.probe && !observed.probe.ok ? observed.probe.reason : 'not probed yet';
  const until = (container.startedAt ?? observed.at) + terms.healthTimeoutMs;
  if (observed.at >= until) return { status: 'failed', reason: `container did not become healthy within ${seconds(terms.healthTimeoutMs)} (last: ${detail})` };
  return { status: 'starting', until, detail };
}

/** What the host looks like in the release's terms. */
function classify(situation: HostSituation) {
  const { host, observed, release } = situation;
  const fresh = observed.containers.find((c) => c.id === host.started || (c.labels[RELEASE_ID_LABEL] === release.releaseId && c.labels[START_CHECK_LABEL] !== 'true'));
  const old = host.before.live ? observed.containers.find((c) => c.id === host.before.live!.id) : undefined;
  const membership = (key: string) => observed.memberships[key] ?? 'out';
  const registered = release.loadBalancers.filter((key) => REGISTERED.has(membership(key)));
  const draining = release.loadBalancers.filter((key) => membership(key) === 'draining');
  const wanted = host.before.registeredIn.filter((key) => release.loadBalancers.includes(key));
  const readings = release.loadBalancers.map((key) => `${key.replace(/^target-group:.*:targetgroup\//, 'tg/').replace(/^classic:/, 'elb/')} ${membership(key)}`).join(', ');
  const leftover = observed.containers.find((c) => c.labels[START_CHECK_LABEL] === 'true');
  const others = observed.containers.filter((c) => c !== fresh && c !== old && c !== leftover);
  return { fresh, old, membership, registered, draining, wanted, readings, leftover, others };
}

type Classified = ReturnType<typeof classify>;

export function decideHostAction(situation: HostSituation): HostAction {
  const c = classify(situation);
  const back = situation.goal === 'old';
  // A start check that a killed worker left running: it has no ports and no traffic, but it is not ours to keep.
  if (c.leftover) return { kind: 'remove', step: back ? 'rollback-remove-leftover' : 'remove-leftover', container: c.leftover.id, why: 'a start check left behind' };
  if (!back) return forward(situation, c);
  // Nothing to go back to (the host's first release): keep what the release started if it is healthy.
  if (situation.host.before.live === null) return keepWhatRuns(situation, c, 'there was no container before the release to go back to');
  // The kept copy is gone (pruned, or started with --rm): checked before anything is taken away, so
  // that going back never empties a host; a healthy new container stays live and registered.
  if (!c.old && c.fresh) return keepWhatRuns(situation, c, `the container live before the release (${shortId(situation.host.before.live.id)}) is gone`);
  return backward(situation, c);
}

/** Drained long enough: every load balancer says no traffic, or its own draining timeout has passed. */
function drainWait(situation: HostSituation, c: Classified, step: string): HostAction | undefined {
  const { host, observed, release } = situation;
  if (c.draining.length === 0 || host.deregisteredAt === undefined) return undefined;
  const until = Date.parse(host.deregisteredAt) + release.drainTimeoutMs;
  if (observed.at < until) return { kind: 'wait', step, for: 'drain', until, status: c.readings };
  return undefined;
}

/** Registered where it was before and in service there: the last steps of a host with a healthy container. */
function backInService(situation: HostSituation, c: Classified, steps: { register: string; wait: string }, onTimeout: 'fail' | 'attention', on: 'new' | 'old'): HostAction {
  const { host, observed, release } = situation;
  const missing = c.wanted.filter((key) => !c.registered.includes(key));
  if (missing.length > 0) return { kind: 'register', step: steps.register, to: missing };
  const waiting = c.wanted.filter((key) => c.membership(key) !== 'in-service');
  if (waiting.length === 0) return { kind: 'done', step: 'done', on };
  // Registered, but not by this release as far as the record knows: register again (a no-op), which times the wait.
  if (host.registeredAt === undefined) return { kind: 'register', step: steps.register, to: waiting };
  const until = Date.parse(host.registeredAt) + release.inServiceTimeoutMs;
  if (observed.at >= until) {
    const reason = `load balancers did not report the host in service within ${seconds(release.inServiceTimeoutMs)} (last: ${c.readings})`;
    return onTimeout === 'fail' ? { kind: 'fail', step: steps.wait, reason } : { kind: 'attention', step: steps.wait, reason };
  }
  return { kind: 'wait', step: steps.wait, for: 'in-service', until, status: c.readings };
}

function asideName(situation: HostSituation, container: ContainerInfo): string {
  return `${situation.release.containerName}-displaced-${shortId(container.id)}`;
}

function forward(situation: HostSituation, c: Classified): HostAction {
  const { observed, release } = situation;
  if (c.fresh && c.fresh.state !== 'created') {
    const health = judgeHealth(c.fresh, observed, release, true);
    // Never registered without a healthy container: out first, then the failure is the release's.
    if (health.status !== 'healthy' && c.registered.length > 0) return { kind: 'deregister', step: 'deregister', from: c.registered };
    if (health.status === 'failed') return { kind: 'fail', step: situation.host.registeredAt ? 'wait-in-service' : 'wait-healthy', reason: health.reason };
    if (health.status === 'starting') {
      return { kind: 'wait', step: 'wait-healthy', for: 'healthy', until: health.until, status: health.detail };
    }
    if (c.old && isLive(c.old)) return { kind: 'stop-old', step: 'stop-old', container: c.old.id, rename: previousName(situation), drainTimedOut: false };
    const extra = c.others.find(isLive);
    if (extra) return { kind: 'set-aside', step: 'stop-extra', container: extra.id, rename: asideName(situation, extra), why: 'a second live container beside the new one' };
    if (release.smoke && situation.host.smokePassed !== c.fresh.id) return { kind: 'smoke', step: 'smoke', container: c.fresh.id };
    return backInService(situation, c, { register: 'register', wait: 'wait-in-service' }, 'fail', 'new');
  }
  if (!c.fresh) {
    // Created while the host still serves, so that only the start is left once it is out. A host
    // registered without a healthy container is taken out first.
    if (c.registered.length > 0 && !servesHealthy(situation, c.old ? [c.old, ...c.others] : c.others)) return { kind: 'deregister', step: 'deregister', from: c.registered };
    return { kind: 'create-new', step: 'create-new', name: nextName(situation) };
  }
  const created = c.fresh;
  if (c.registered.length > 0) return { kind: 'deregister', step: 'deregister', from: c.registered };
  const draining = drainWait(situation, c, 'drain');
  if (draining) return draining;
  if (c.old && (isLive(c.old) || c.old.name === release.containerName)) {
    return { kind: 'stop-old', step: 'stop-old', container: c.old.id, rename: previousName(situation), drainTimedOut: c.draining.length > 0 && situation.host.deregisteredAt !== undefined };
  }
  const extra = c.others.find((o) => isLive(o) || o.name === release.containerName);
  if (extra) {
    return { kind: 'set-aside', step: 'stop-old', container: extra.id, rename: asideName(situation, extra), why: isLive(extra) ? 'live, but not the container recorded as live before the release' : `holds the name ${release.containerName}` };
  }
  return { kind: 'start-new', step: 'start-new', container: created.id };
}

function backward(situation: HostSituation, c: Classified): HostAction {
  const { observed, release, host } = situation;
  // Created but never started: it never served, so a host that serves need not leave service for it to go.
  if (c.fresh?.state === 'created' && (c.registered.length === 0 || servesHealthy(situation, c.old ? [c.old, ...c.others] : c.others))) return { kind: 'remove', step: 'rollback-remove-new', container: c.fresh.id, why: 'the release is going back' };
  if (c.fresh) {
    if (c.registered.length > 0) return { kind: 'deregister', step: 'rollback-deregister', from: c.registered };
    const draining = drainWait(situation, c, 'rollback-drain');
    if (draining) return draining;
    return { kind: 'remove', step: 'rollback-remove-new', container: c.fresh.id, why: 'the release is going back' };
  }
  if (!c.old) {
    if (c.registered.length > 0 && !servesHealthy(situation, c.others)) return { kind: 'deregister', step: 'rollback-deregister', from: c.registered };
    return { kind: 'attention', step: 'rollback-start-previous', reason: `the container live before the release (${shortId(host.before.live!.id)}) is gone; nothing to go back to` };
  }
  const extra = c.others.find((o) => isLive(o) || o.name === release.containerName);
  const switching = extra !== undefined || !isLive(c.old) || c.old.name !== release.containerName;
  // Which container serves is about to change: out of the load balancers first.
  if (switching && c.registered.length > 0) return { kind: 'deregister', step: 'rollback-deregister', from: c.registered };
  if (extra) return { kind: 'set-aside', step: 'rollback-stop-extra', container: extra.id, rename: asideName(situation, extra), why: 'in the way of the container live before the release' };
  if (!isLive(c.old) || c.old.name !== release.containerName) return { kind: 'start-old', step: 'rollback-start-previous', container: c.old.id };
  const health = judgeHealth(c.old, observed, release, false);
  if (health.status !== 'healthy') {
    if (c.registered.length > 0) return { kind: 'deregister', step: 'rollback-deregister', from: c.registered };
    if (health.status === 'failed') return { kind: 'attention', step: 'rollback-wait-healthy', reason: `the previous container is not healthy: ${health.reason}` };
    return { kind: 'wait', step: 'rollback-wait-healthy', for: 'healthy', until: health.until, status: health.detail };
  }
  return backInService(situation, c, { register: 'rollback-register', wait: 'rollback-wait-in-service' }, 'attention', 'old');
}

/**
 * Whether one of these containers (none the release knows) is live and healthy: only then may a host
 * left for a person stay registered. Anything less serves errors, so it is taken out.
 */
function servesHealthy(situation: HostSituation, containers: readonly ContainerInfo[]): boolean {
  return containers.some((o) => isLive(o) && judgeHealth(o, situation.observed, situation.release, false).status === 'healthy');
}

/** Going back with nothing to go back to (`nothing` says why): what the release started stays if it is healthy. */
function keepWhatRuns(situation: HostSituation, c: Classified, nothing: string): HostAction {
  if (!c.fresh || c.fresh.state === 'created') {
    if (c.registered.length > 0 && !servesHealthy(situation, c.others)) return { kind: 'deregister', step: 'rollback-deregister', from: c.registered };
    return { kind: 'attention', step: 'rollback-start-previous', reason: `${nothing}, and the release started none that runs` };
  }
  const health = judgeHealth(c.fresh, situation.observed, situation.release, true);
  if (health.status !== 'healthy') {
    if (c.registered.length > 0) return { kind: 'deregister', step: 'rollback-deregister', from: c.registered };
    if (health.status === 'failed') return { kind: 'attention', step: 'rollback-wait-healthy', reason: `${nothing}, and the new container is not healthy: ${health.reason}` };
    return { kind: 'wait', step: 'rollback-wait-healthy', for: 'healthy', until: health.until, status: health.detail };
  }
  return backInService(situation, c, { register: 'rollback-register', wait: 'rollback-wait-in-service' }, 'attention', 'new');
}

/** The name the live container is kept under for rollback while the release runs. */
export function previousName(situation: Pick<HostSituation, 'release'>): string {
  return `${situation.release.containerName}-previous-${situation.release.releaseId.slice(0, 8)}`;
}

/** The name the new container is created under, while the live one still holds the configured name. */
export function nextName(situation: Pick<HostSituation, 'release'>): string {
  return `${situation.release.containerName}-next-${situation.release.releaseId.slice(0, 8)}`;
}
