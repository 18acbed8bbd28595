import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContainerInfo } from '../../src/host/host-session.js';
import type { Membership } from '../../src/loadbalancer/load-balancers.js';
import { decideHostAction, type HostAction, type HostObservation, type ReleaseTerms } from '../../src/rollout/host-decision.js';
import type { HostRecord } from '../../src/state/release-record.js';

// The decision table: every host state against both directions of a release, with no network.
// Each row is a host as a worker would find it (its containers, what the two load balancers say,
// the HTTP probe, what the release recorded); the columns say what it must do next going forward
// (towards v2) and going back (the release failed: back to the container live before).

const RELEASE_ID = '5e1ea5e0-aaaa-4bbb-8ccc-dddddddddddd';
const NOW = Date.parse('2026-11-29T12:00:00.000Z');
const ago = (seconds: number) => NOW - seconds * 1000;
const iso = (ms: number) => new Date(ms).toISOString();
const ELB = 'classic:web';
const TG = 'target-group:arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/web/abc';
const BOTH = [ELB, TG];

const terms: ReleaseTerms = {
  releaseId: RELEASE_ID,
  containerName: 'ingest',
  loadBalancers: BOTH,
  smoke: true,
  waitForDocker: true,
  healthTimeoutMs: 20_000,
  drainTimeoutMs: 5_000,
  inServiceTimeoutMs: 20_000,
};

function container(overrides: Partial<ContainerInfo>): ContainerInfo {
  return { id: 'x'.repeat(64), name: 'x', image: 'reg/app:v1', running: true, state: 'running', restartCount: 0, startedAt: ago(86_400), health: 'healthy', labels: {}, createdAt: iso(ago(86_400)), ...overrides };
}
const OLD_ID = `01d${'0'.repeat(61)}`;
const NEW_ID = `ae7${'0'.repeat(61)}`;
const old = (o: Partial<ContainerInfo> = {}) => container({ id: OLD_ID, name: 'ingest', labels: { 'harbormaster.target': 'data/ingest/staging' }, ...o });
const oldSetAside = (o: Partial<ContainerInfo> = {}) => old({ name: 'ingest-previous-5e1ea5e0', running: false, state: 'exited', exitCode: 0, ...o });
const fresh = (o: Partial<ContainerInfo> = {}) =>
  container({ id: NEW_ID, name: 'ingest', image: 'reg/app:v2', startedAt: ago(3), labels: { 'harbormaster.release-id': RELEASE_ID, 'harbormaster.target': 'data/ingest/staging' }, ...o });
const created = (o: Partial<ContainerInfo> = {}) => fresh({ name: 'ingest-next-5e1ea5e0', running: false, state: 'created', startedAt: undefined, health: 'none', ...o });
const starting = (o: Partial<ContainerInfo> = {}) => fresh({ health: 'starting', ...o });
const stranger = (o: Partial<ContainerInfo> = {}) => container({ id: `5a5${'0'.repeat(61)}`, name: 'ingest-debug', labels: { 'harbormaster.target': 'data/ingest/staging' }, ...o });
const leftoverCheck = () => container({ id: `c4e${'0'.repeat(61)}`, name: 'ingest-start-check-5e1ea5e0', labels: { 'harbormaster.start-check': 'true', 'harbormaster.release-id': RELEASE_ID } });

type Lb = Membership | [Membership, Membership];
const lbs = (m: Lb): Record<string, Membership> => (Array.isArray(m) ? { [ELB]: m[0], [TG]: m[1] } : { [ELB]: m, [TG]: m });

function hostRecord(o: Partial<HostRecord> = {}): HostRecord {
  return { instanceId: 'i-2', address: '10.0.0.2', name: 'h2', before: { registeredIn: BOTH, live: { id: OLD_ID, name: 'ingest', image: 'reg/app:v1' } }, progress: 'in-progress', ...o };
}

interface Row {
  readonly state: string;
  readonly containers: ContainerInfo[];
  readonly lb: Lb;
  readonly probe?: boolean;
  readonly host?: Partial<HostRecord>;
  readonly terms?: Partial<ReleaseTerms>;
  /** Expected summaries (kind:step[:detail]); a RegExp where the detail is a reason. */
  readonly forward: string | RegExp;
  readonly back: string | RegExp;
}

const firstRelease = { before: { registeredIn: BOTH, live: null } };
const drainedOnPurpose = { before: { registeredIn: [], live: { id: OLD_ID, name: 'ingest', image: 'reg/app:v1' } } };

const ROWS: Row[] = [
  // The old container, before and while the host leaves service.
  { state: 'old live, in service everywhere', containers: [old()], lb: 'in-service', probe: true, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: 'done:done:old' },
  { state: 'old live, still in one load balancer', containers: [old()], lb: ['in-service', 'out'], probe: true, host: { deregisteredAt: iso(ago(1)) }, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: `register:rollback-register:${TG}` },
  { state: 'old live, out, a load balancer draining, 1 s after deregistering', containers: [old()], lb: ['out', 'draining'], probe: true, host: { deregisteredAt: iso(ago(1)) }, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: `register:rollback-register:${ELB},${TG}` },
  { state: 'old live, out, still draining past the draining timeout', containers: [old()], lb: 'draining', probe: true, host: { deregisteredAt: iso(ago(10)) }, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: `register:rollback-register:${ELB},${TG}` },
  { state: 'old live, out of every load balancer', containers: [old()], lb: 'out', probe: true, host: { deregisteredAt: iso(ago(1)) }, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: `register:rollback-register:${ELB},${TG}` },
  { state: 'old live, registered again, not yet in service', containers: [old()], lb: 'pending', probe: true, host: { registeredAt: iso(ago(2)) }, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: 'wait:rollback-wait-in-service:in-service' },
  { state: 'old live, registered, never in service past the timeout', containers: [old()], lb: 'pending', probe: true, host: { registeredAt: iso(ago(60)) }, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: /^attention:rollback-wait-in-service:load balancers did not report the host in service within 20 s/ },
  { state: 'old renamed and stopped, nothing else', containers: [oldSetAside()], lb: 'out', forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: `start-old:rollback-start-previous:${OLD_ID}` },
  { state: 'old stopped but still under its name', containers: [old({ running: false, state: 'exited', exitCode: 0 })], lb: 'out', forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: `start-old:rollback-start-previous:${OLD_ID}` },
  { state: 'old renamed but still running (killed between rename and stop)', containers: [oldSetAside({ running: true, state: 'running', exitCode: undefined })], lb: 'out', forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: `start-old:rollback-start-previous:${OLD_ID}` },
  { state: 'old back under its name, starting', containers: [old({ health: 'starting', startedAt: ago(2) })], lb: 'out', probe: false, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: 'wait:rollback-wait-healthy:healthy' },
  { state: 'old back, never healthy past the timeout', containers: [old({ health: 'unhealthy', startedAt: ago(60) })], lb: 'out', probe: false, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: /^attention:rollback-wait-healthy:the previous container is not healthy: the image's HEALTHCHECK reports unhealthy/ },
  { state: 'old live but unhealthy, and registered', containers: [old({ health: 'unhealthy' })], lb: 'in-service', probe: false, forward: `deregister:deregister:${ELB},${TG}`, back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'old gone (recorded, but no such container), out', containers: [], lb: 'out', forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: /^attention:rollback-start-previous:the container live before the release \(01d000000000\) is gone/ },
  { state: 'old gone, host registered, a stranger live and serving', containers: [stranger()], lb: 'in-service', probe: true, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: /^attention:rollback-start-previous:the container live before the release \(01d000000000\) is gone/ },
  { state: 'old gone, host registered, a stranger live that does not serve', containers: [stranger()], lb: 'in-service', probe: false, forward: `deregister:deregister:${ELB},${TG}`, back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'old gone, host registered, a stranger live but unhealthy', containers: [stranger({ health: 'unhealthy' })], lb: 'in-service', probe: true, forward: `deregister:deregister:${ELB},${TG}`, back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'old gone, host still registered, nothing live', containers: [], lb: 'in-service', forward: `deregister:deregister:${ELB},${TG}`, back: `deregister:rollback-deregister:${ELB},${TG}` },
  // The kept copy gone (pruned, or started with --rm): going back never empties a host; a healthy new container stays.
  { state: 'old gone, new live and in service everywhere', containers: [fresh()], lb: 'in-service', probe: true, host: { smokePassed: NEW_ID, registeredAt: iso(ago(5)) }, forward: 'done:done:new', back: 'done:done:new' },
  { state: 'old gone, new healthy, out', containers: [fresh()], lb: 'out', probe: true, host: { smokePassed: NEW_ID }, forward: `register:register:${ELB},${TG}`, back: `register:rollback-register:${ELB},${TG}` },
  { state: 'old gone, new starting, out', containers: [starting()], lb: 'out', probe: false, forward: 'wait:wait-healthy:healthy', back: 'wait:rollback-wait-healthy:healthy' },
  { state: 'old gone, new failed and registered', containers: [fresh({ running: false, state: 'exited', exitCode: 1 })], lb: 'in-service', host: { registeredAt: iso(ago(3)) }, forward: `deregister:deregister:${ELB},${TG}`, back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'old gone, new failed, out', containers: [fresh({ running: false, state: 'exited', exitCode: 1 })], lb: 'out', forward: /^fail:wait-healthy:container exited with code 1/, back: /^attention:rollback-wait-healthy:the container live before the release \(01d000000000\) is gone, and the new container is not healthy: container exited with code 1/ },

  // The new container.
  // The new container created (not started) while the host still serves, under a name of its own.
  { state: 'new created, old live, in service everywhere', containers: [old(), created()], lb: 'in-service', probe: true, forward: `deregister:deregister:${ELB},${TG}`, back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new created, old live, still in one load balancer', containers: [old(), created()], lb: ['in-service', 'out'], probe: true, host: { deregisteredAt: iso(ago(1)) }, forward: `deregister:deregister:${ELB}`, back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new created, old live, out, a load balancer draining, 1 s after deregistering', containers: [old(), created()], lb: ['out', 'draining'], probe: true, host: { deregisteredAt: iso(ago(1)) }, forward: 'wait:drain:drain', back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new created, old live, out, still draining past the draining timeout', containers: [old(), created()], lb: 'draining', probe: true, host: { deregisteredAt: iso(ago(10)) }, forward: 'stop-old:stop-old:ingest-previous-5e1ea5e0:after the draining timeout', back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new created, old live, out of every load balancer', containers: [old(), created()], lb: 'out', probe: true, host: { deregisteredAt: iso(ago(1)) }, forward: 'stop-old:stop-old:ingest-previous-5e1ea5e0', back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new created, old stopped and set aside', containers: [oldSetAside(), created()], lb: 'out', forward: `start-new:start-new:${NEW_ID}`, back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new created and renamed, never started (killed between rename and start)', containers: [oldSetAside(), created({ name: 'ingest' })], lb: 'out', forward: `start-new:start-new:${NEW_ID}`, back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new created, a stopped stranger holding the name, old set aside', containers: [oldSetAside(), created(), stranger({ name: 'ingest', running: false, state: 'exited', exitCode: 0 })], lb: 'out', forward: 'set-aside:stop-old:ingest-displaced-5a5000000000', back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new created, old live but not answering, registered', containers: [old({ health: 'unhealthy' }), created()], lb: 'in-service', probe: false, forward: `deregister:deregister:${ELB},${TG}`, back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'new created, old gone, out', containers: [created()], lb: 'out', forward: `start-new:start-new:${NEW_ID}`, back: /^attention:rollback-start-previous:the container live before the release \(01d000000000\) is gone, and the release started none that runs/ },
  { state: 'drained on purpose before the release, new created, old live', containers: [old(), created()], lb: 'out', probe: true, host: drainedOnPurpose, forward: 'stop-old:stop-old:ingest-previous-5e1ea5e0', back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'first release, new created', containers: [created()], lb: 'out', host: firstRelease, forward: `start-new:start-new:${NEW_ID}`, back: /^attention:rollback-start-previous:there was no container before the release to go back to, and the release started none that runs/ },
  { state: 'new running, not yet healthy', containers: [oldSetAside(), starting()], lb: 'out', probe: false, forward: 'wait:wait-healthy:healthy', back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new running, not healthy past the timeout', containers: [oldSetAside(), starting({ startedAt: ago(30) })], lb: 'out', probe: false, forward: /^fail:wait-healthy:container did not become healthy within 20 s \(last: image health starting\)/, back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new exited at start', containers: [oldSetAside(), fresh({ running: false, state: 'exited', exitCode: 3 })], lb: 'out', forward: /^fail:wait-healthy:container exited with code 3/, back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new crash-looping (restart policy restarting it)', containers: [oldSetAside(), fresh({ running: false, state: 'restarting', exitCode: 3 })], lb: 'out', forward: /^fail:wait-healthy:container restarting/, back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new running after restarts (a crash loop that reads as running)', containers: [oldSetAside(), fresh({ restartCount: 2 })], lb: 'out', probe: true, forward: /^fail:wait-healthy:container restarted 2 time\(s\)/, back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: "new running, its image's HEALTHCHECK unhealthy", containers: [oldSetAside(), fresh({ health: 'unhealthy' })], lb: 'out', probe: true, forward: /^fail:wait-healthy:the image's HEALTHCHECK reports unhealthy/, back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new healthy, smoke not yet checked', containers: [oldSetAside(), fresh()], lb: 'out', probe: true, forward: `smoke:smoke:${NEW_ID}`, back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new healthy and smoke-checked, not registered', containers: [oldSetAside(), fresh()], lb: 'out', probe: true, host: { smokePassed: NEW_ID }, forward: `register:register:${ELB},${TG}`, back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new healthy, registered in one of two', containers: [oldSetAside(), fresh()], lb: ['in-service', 'out'], probe: true, host: { smokePassed: NEW_ID, registeredAt: iso(ago(1)) }, forward: `register:register:${TG}`, back: `deregister:rollback-deregister:${ELB}` },
  { state: 'new healthy, registered, not yet in service', containers: [oldSetAside(), fresh()], lb: 'pending', probe: true, host: { smokePassed: NEW_ID, registeredAt: iso(ago(2)) }, forward: 'wait:wait-in-service:in-service', back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'new healthy, registered, never in service past the timeout', containers: [oldSetAside(), fresh()], lb: 'pending', probe: true, host: { smokePassed: NEW_ID, registeredAt: iso(ago(60)) }, forward: /^fail:wait-in-service:load balancers did not report the host in service within 20 s \(last: elb\/web pending, tg\/web\/abc pending\)/, back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'new live and in service everywhere', containers: [oldSetAside(), fresh()], lb: 'in-service', probe: true, host: { smokePassed: NEW_ID, registeredAt: iso(ago(5)) }, forward: 'done:done:new', back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'new registered but not healthy any more (restarted by the engine)', containers: [oldSetAside(), starting({ startedAt: ago(1) })], lb: 'in-service', probe: false, host: { registeredAt: iso(ago(5)) }, forward: `deregister:deregister:${ELB},${TG}`, back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'new registered and failed', containers: [oldSetAside(), fresh({ running: false, state: 'exited', exitCode: 137 })], lb: 'in-service', host: { registeredAt: iso(ago(5)) }, forward: `deregister:deregister:${ELB},${TG}`, back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'new failed after registering, already out again', containers: [oldSetAside(), fresh({ running: false, state: 'exited', exitCode: 137 })], lb: 'out', host: { registeredAt: iso(ago(5)), deregisteredAt: iso(ago(1)) }, forward: /^fail:wait-in-service:container exited with code 137/, back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new out, its load balancers draining', containers: [oldSetAside(), fresh()], lb: 'draining', probe: true, host: { smokePassed: NEW_ID, deregisteredAt: iso(ago(1)) }, forward: `register:register:${ELB},${TG}`, back: 'wait:rollback-drain:drain' },
  { state: 'new out, drained', containers: [oldSetAside(), fresh()], lb: 'out', probe: true, host: { smokePassed: NEW_ID, deregisteredAt: iso(ago(10)) }, forward: `register:register:${ELB},${TG}`, back: `remove:rollback-remove-new:${NEW_ID}` },

  // Two live containers, leftovers, strangers.
  { state: 'new healthy and the old one live again beside it', containers: [oldSetAside({ running: true, state: 'running', exitCode: undefined }), fresh()], lb: 'out', probe: true, host: { smokePassed: NEW_ID }, forward: 'stop-old:stop-old:ingest-previous-5e1ea5e0', back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'new healthy and a stranger live beside it', containers: [oldSetAside(), fresh(), stranger()], lb: 'out', probe: true, host: { smokePassed: NEW_ID }, forward: 'set-aside:stop-extra:ingest-displaced-5a5000000000', back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'a stopped stranger holding the name, old set aside', containers: [oldSetAside(), stranger({ name: 'ingest', running: false, state: 'exited', exitCode: 0 })], lb: 'out', forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: 'set-aside:rollback-stop-extra:ingest-displaced-5a5000000000' },
  { state: 'old stopped and set aside, host registered again by someone', containers: [oldSetAside()], lb: 'in-service', forward: `deregister:deregister:${ELB},${TG}`, back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'a stranger holding the name and live, host registered', containers: [oldSetAside(), stranger({ name: 'ingest' })], lb: 'in-service', probe: true, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'old paused by hand', containers: [old({ running: false, state: 'paused' })], lb: 'out', forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: /^attention:rollback-wait-healthy:the previous container is not healthy: container paused/ },
  { state: 'new dead (the engine gave up on it)', containers: [oldSetAside(), fresh({ running: false, state: 'dead' })], lb: 'out', forward: /^fail:wait-healthy:container dead/, back: `remove:rollback-remove-new:${NEW_ID}` },
  { state: 'out, draining started by someone else (never deregistered by the release)', containers: [old()], lb: 'draining', probe: true, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: `register:rollback-register:${ELB},${TG}` },
  { state: 'a start check left running by a killed worker', containers: [old(), leftoverCheck()], lb: 'in-service', probe: true, forward: `remove:remove-leftover:c4e${'0'.repeat(61)}`, back: `remove:rollback-remove-leftover:c4e${'0'.repeat(61)}` },

  // A host drained on purpose before the release: released, never registered by it.
  { state: 'drained on purpose before the release, old live', containers: [old()], lb: 'out', probe: true, host: drainedOnPurpose, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: 'done:done:old' },
  { state: 'drained on purpose before the release, new healthy', containers: [oldSetAside(), fresh()], lb: 'out', probe: true, host: { ...drainedOnPurpose, smokePassed: NEW_ID }, forward: 'done:done:new', back: `remove:rollback-remove-new:${NEW_ID}` },

  // The host's first release: nothing to go back to, so what the release started stays if it is healthy.
  { state: 'first release, nothing runs', containers: [], lb: 'out', host: firstRelease, forward: 'create-new:create-new:ingest-next-5e1ea5e0', back: /^attention:rollback-start-previous:there was no container before the release to go back to, and the release started none that runs/ },
  { state: 'first release, new healthy, out', containers: [fresh()], lb: 'out', probe: true, host: { ...firstRelease, smokePassed: NEW_ID }, forward: `register:register:${ELB},${TG}`, back: `register:rollback-register:${ELB},${TG}` },
  { state: 'first release, new starting', containers: [starting()], lb: 'out', probe: false, host: firstRelease, forward: 'wait:wait-healthy:healthy', back: 'wait:rollback-wait-healthy:healthy' },
  { state: 'first release, new failed and registered', containers: [fresh({ running: false, state: 'exited', exitCode: 1 })], lb: 'in-service', host: { ...firstRelease, registeredAt: iso(ago(3)) }, forward: `deregister:deregister:${ELB},${TG}`, back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'first release, new failed, out', containers: [fresh({ running: false, state: 'exited', exitCode: 1 })], lb: 'out', host: firstRelease, forward: /^fail:wait-healthy:container exited with code 1/, back: /^attention:rollback-wait-healthy:there was no container before the release to go back to, and the new container is not healthy: container exited with code 1/ },
  { state: 'first release, nothing of the release runs, a stranger live that does not serve, registered', containers: [stranger()], lb: 'in-service', probe: false, host: firstRelease, forward: `deregister:deregister:${ELB},${TG}`, back: `deregister:rollback-deregister:${ELB},${TG}` },
  { state: 'first release, new live and in service', containers: [fresh()], lb: 'in-service', probe: true, host: { ...firstRelease, smokePassed: NEW_ID, registeredAt: iso(ago(5)) }, forward: 'done:done:new', back: 'done:done:new' },
];

function summary(action: HostAction): string {
  switch (action.kind) {
    case 'deregister':
      return `${action.kind}:${action.step}:${action.from.join(',')}`;
    case 'register':
      return `${action.kind}:${action.step}:${action.to.join(',')}`;
    case 'stop-old':
      return `${action.kind}:${action.step}:${action.rename}${action.drainTimedOut ? ':after the draining timeout' : ''}`;
    case 'set-aside':
      return `${action.kind}:${action.step}:${action.rename}`;
    case 'start-old':
    case 'remove':
    case 'smoke':
      return `${action.kind}:${action.step}:${action.container}`;
    case 'wait':
      return `${action.kind}:${action.step}:${action.for}`;
    case 'done':
      return `${action.kind}:${action.step}:${action.on}`;
    case 'fail':
    case 'attention':
      return `${action.kind}:${action.step}:${action.reason}`;
    case 'create-new':
      return `${action.kind}:${action.step}:${action.name}`;
    case 'start-new':
      return `${action.kind}:${action.step}:${action.container}`;
  }
}

function observe(row: Row): HostObservation {
  return { at: NOW, containers: row.containers, memberships: lbs(row.lb), ...(row.probe !== undefined ? { probe: row.probe ? { ok: true } : { ok: false, reason: 'http://10.0.0.2:8080/health answered 503, expected 200' } } : {}) };
}

describe('the host decision table', () => {
  for (const row of ROWS) {
    for (const goal of ['new', 'old'] as const) {
      const expected = goal === 'new' ? row.forward : row.back;
      it(`${goal === 'new' ? 'forward' : 'back'} | ${row.state}`, () => {
        const action = decideHostAction({ goal, host: hostRecord(row.host), observed: observe(row), release: { ...terms, ...row.terms } });
        if (typeof expected === 'string') assert.equal(summary(action), expected);
        else assert.match(summary(action), expected);
      });
    }
  }

  it('never leaves a registered host without a healthy live container: in every row where the host is registered and no container is healthy, the answer takes it out or gives up', () => {
    for (const row of ROWS) {
      for (const goal of ['new', 'old'] as const) {
        const observed = observe(row);
        const registered = Object.values(observed.memberships).some((m) => m === 'in-service' || m === 'pending' || m === 'unhealthy');
        // Healthy as the release judges it: the container that should serve (new going forward, the old one going back) running, its HEALTHCHECK passing, the probe answering.
        const firstRelease = hostRecord(row.host).before.live === null;
        // Going back with the kept copy gone, the new container is the one that may serve.
        const oldGone = !row.containers.some((c) => c.id === OLD_ID);
        const serving = goal === 'new' || firstRelease || oldGone ? row.containers.find((c) => c.id === NEW_ID) : row.containers.find((c) => c.id === OLD_ID && c.name === 'ingest');
        const healthy = (c: ContainerInfo | undefined) => c !== undefined && c.state === 'running' && c.health === 'healthy' && c.restartCount === 0 && row.probe === true;
        // Going back with nothing of its own to go back to, a host left for a person may stay registered on a healthy container someone else runs.
        const strangers = row.containers.filter((c) => c.id !== OLD_ID && c.id !== NEW_ID && c.labels['harbormaster.start-check'] !== 'true');
        const anyHealthy = healthy(serving) || (goal === 'old' && strangers.some(healthy));
        if (!registered || anyHealthy) continue;
        const action = decideHostAction({ goal, host: hostRecord(row.host), observed, release: terms });
        // Creating the new container (or removing one only created) changes nothing that serves: allowed while a live container (the old one, or one the release does not know) is healthy.
        const othersHealthy = row.containers.filter((c) => c.id !== NEW_ID && c.labels['harbormaster.start-check'] !== 'true').some(healthy);
        if (othersHealthy && (action.kind === 'create-new' || (action.kind === 'remove' && action.step === 'rollback-remove-new' && row.containers.find((c) => c.id === NEW_ID)?.state === 'created'))) continue;
        // Leftover start checks are removed first; anything else takes the host out.
        assert.ok(action.kind === 'deregister' || (action.kind === 'remove' && action.step.endsWith('remove-leftover')), `${goal} | ${row.state}: ${summary(action)}`);
      }
    }
  });

  it('registers a host only into the load balancers it was in before the release', () => {
    for (const row of ROWS) {
      for (const goal of ['new', 'old'] as const) {
        const host = hostRecord(row.host);
        const action = decideHostAction({ goal, host, observed: observe(row), release: terms });
        if (action.kind === 'register') for (const key of action.to) assert.ok(host.before.registeredIn.includes(key), `${goal} | ${row.state}: ${key}`);
      }
    }
  });

  it('without a smoke check, goes from healthy straight to registering', () => {
    const action = decideHostAction({ goal: 'new', host: hostRecord(), observed: { at: NOW, containers: [oldSetAside(), fresh()], memberships: lbs('out'), probe: { ok: true } }, release: { ...terms, smoke: false } });
    assert.equal(summary(action), `register:register:${ELB},${TG}`);
  });

  it('creates the new container before the host leaves service, and takes a registered host with nothing healthy out first', () => {
    const serving = decideHostAction({ goal: 'new', host: hostRecord(), observed: { at: NOW, containers: [old()], memberships: lbs('in-service'), probe: { ok: true } }, release: terms });
    assert.equal(summary(serving), 'create-new:create-new:ingest-next-5e1ea5e0');
    const failing = decideHostAction({ goal: 'new', host: hostRecord(), observed: { at: NOW, containers: [old()], memberships: lbs('in-service'), probe: { ok: false, reason: 'refused' } }, release: terms });
    assert.equal(summary(failing), `deregister:deregister:${ELB},${TG}`);
  });

  it("waits on the probe alone, without the image's HEALTHCHECK verdict, unless told to wait for Docker", () => {
    const observed = { at: NOW, containers: [oldSetAside(), starting()], memberships: lbs('out'), probe: { ok: true as const } };
    assert.equal(summary(decideHostAction({ goal: 'new', host: hostRecord(), observed, release: { ...terms, waitForDocker: false } })), `smoke:smoke:${NEW_ID}`);
    assert.equal(summary(decideHostAction({ goal: 'new', host: hostRecord(), observed, release: { ...terms, waitForDocker: true } })), 'wait:wait-healthy:healthy');
  });

  it("ignores the image's own health when told to, and then waits on the probe alone", () => {
    const observed = { at: NOW, containers: [oldSetAside(), fresh({ health: 'unhealthy' })], memberships: lbs('out'), probe: { ok: true as const } };
    assert.equal(summary(decideHostAction({ goal: 'new', host: hostRecord({ smokePassed: NEW_ID }), observed, release: { ...terms, waitForDocker: false } })), `register:register:${ELB},${TG}`);
  });
});
