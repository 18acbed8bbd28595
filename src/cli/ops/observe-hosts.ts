import type { RolloutSettings } from '../../config/worker-config.js';
import type { HttpCheck, ProbeResult } from '../../health/http-probe.js';
import type { ContainerInfo, HostConnector, HostSession } from '../../host/host-session.js';
import { describeLoadBalancer, type LoadBalancerRef, type LoadBalancers } from '../../loadbalancer/load-balancers.js';
import type { TargetInstance } from '../../target/target-instances.js';
import type { ContainerFacts, HostFacts } from './hosts-view.js';

// What each of a target's instances is now, read and never changed: every load balancer's view of it,
// the bastion's HTTP check, and when asked, over SSH its containers for the target (the live one under
// the configured name, the kept copies). A host that cannot be read is reported as such, never waited for.

export interface HostsEffects {
  readonly loadBalancers: LoadBalancers;
  readonly connector: HostConnector;
  readonly probe: (address: string, check: HttpCheck) => Promise<ProbeResult>;
}

const TARGET_LABEL = 'harbormaster.target';
const RELEASE_ID_LABEL = 'harbormaster.release-id';
/** Hosts read at once. */
const CONCURRENCY = 8;

const message = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 200);

function factsOf(c: ContainerInfo): ContainerFacts {
  return { id: c.id, name: c.name, image: c.image, state: c.state, health: c.health, releaseId: c.labels[RELEASE_ID_LABEL] ?? null };
}

async function containersOf(session: HostSession, target: string, name: string): Promise<{ live: ContainerFacts | null; kept: ContainerFacts[] }> {
  const [live, labelled] = await Promise.all([session.inspect(name), session.list({ [TARGET_LABEL]: target })]);
  // Start checks are the release's own short-lived containers, not copies kept for rollback.
  const kept = labelled.filter((c) => c.id !== live?.id && c.labels['harbormaster.start-check'] !== 'true').map(factsOf);
  return { live: live ? factsOf(live) : null, kept };
}

async function observeHost(effects: HostsEffects, host: TargetInstance, input: ObserveInput): Promise<HostFacts> {
  const balancers = await Promise.all(
    input.loadBalancers.map(async (lb) => {
      const loadBalancer = describeLoadBalancer(lb);
      try {
        return { loadBalancer, membership: await effects.loadBalancers.membership(lb, host.instanceId) };
      } catch (error) {
        return { loadBalancer, membership: 'unknown' as const, error: message(error) };
      }
    }),
  );
  const base = { instanceId: host.instanceId, address: host.address, name: host.name ?? null, zone: host.zone ?? null, balancers };
  const check = await effects.probe(host.address, input.settings.health).catch((error: unknown) => ({ ok: false as const, reason: message(error) }));
  if (!input.containers) return { ...base, unreachable: null, containersRead: false, live: null, kept: [], check: check.ok ? { ok: true } : { ok: false, reason: check.reason } };
  let session: HostSession | undefined;
  try {
    session = await effects.connector.connect(host.address, AbortSignal.timeout(input.connectTimeoutMs));
    const { live, kept } = await containersOf(session, input.target, input.settings.container.name);
    return { ...base, unreachable: null, live, kept, check: check.ok ? { ok: true } : { ok: false, reason: check.reason } };
  } catch (error) {
    return { ...base, unreachable: message(error), live: null, kept: [], check: check.ok ? { ok: true } : { ok: false, reason: check.reason } };
  } finally {
    await session?.close().catch(() => undefined);
  }
}

export interface ObserveInput {
  readonly target: string;
  readonly hosts: readonly TargetInstance[];
  readonly loadBalancers: readonly LoadBalancerRef[];
  readonly settings: RolloutSettings;
  readonly connectTimeoutMs: number;
  /** Read each host's containers over SSH (hosts --ssh). */
  readonly containers: boolean;
}

/** Every host's facts, in the order of `hosts`, at most CONCURRENCY read at once. */
export async function observeHosts(effects: HostsEffects, input: ObserveInput): Promise<HostFacts[]> {
  const results: HostFacts[] = new Array(input.hosts.length);
  let next = 0;
  const worker = async () => {
    while (next < input.hosts.length) {
      const index = next++;
      results[index] = await observeHost(effects, input.hosts[index]!, input);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, input.hosts.length) }, worker));
  return results;
}
