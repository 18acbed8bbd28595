import type { LoadBalancerRef } from '../loadbalancer/load-balancers.js';
import type { TargetInstance } from '../target/target-instances.js';
import { processesToSuspend } from '../autoscaling/process-suspension.js';
import { describeGate, planSteps, type Gate, type StepSpec } from './steps.js';

// The release as data, computed from facts: which hosts go in which batch, which steps each host
// goes through, exactly which Auto Scaling processes and alarms this release changes. No effects:
// the executor carries it out, and tests compare plans without a network.

export type HostStep = 'deregister' | 'drain' | 'stop-old' | 'start-new' | 'wait-healthy' | 'smoke' | 'register' | 'wait-in-service';

export interface PlanFacts {
  readonly hosts: readonly TargetInstance[];
  readonly loadBalancers: readonly LoadBalancerRef[];
  /** Each group with the processes already suspended before the release. */
  readonly autoScalingGroups: ReadonlyArray<{ readonly name: string; readonly suspended: readonly string[] }>;
  /** Each alarm with whether its actions are enabled before the release. */
  readonly alarms: ReadonlyArray<{ readonly name: string; readonly actionsEnabled: boolean }>;
}

export interface PlanPolicy {
  readonly batchSize: number | string;
  readonly minHealthy?: number | string | undefined;
  readonly suspendProcesses: readonly string[];
  readonly smoke: boolean;
  readonly onFailure: 'host' | 'all';
  /** Canary steps (steps.ts); none: every host in batches. */
  readonly steps?: readonly StepSpec[] | undefined;
}

export interface ReleasePlan {
  readonly batches: ReadonlyArray<readonly TargetInstance[]>;
  /** Bakes and pauses between batches. */
  readonly gates: readonly Gate[];
  readonly batchSize: number;
  readonly minHealthy: number;
  readonly hostSteps: readonly HostStep[];
  readonly loadBalancers: readonly LoadBalancerRef[];
  /** Per group, exactly the processes this release suspends and so must resume. */
  readonly suspend: Readonly<Record<string, readonly string[]>>;
  /** Exactly the alarms whose actions this release disables and so must enable again. */
  readonly muteAlarms: readonly string[];
  readonly onFailure: 'host' | 'all';
}

export type PlanResult = { ok: true; plan: ReleasePlan } | { ok: false; reason: string };

/** A count (2) or a share ("25%") of `total` hosts; shares round up so at least one host is meant. */
export function hostsFor(value: number | string, total: number): number {
  if (typeof value === 'number') return value;
  return Math.ceil((Number(value.slice(0, -1)) / 100) * total);
}

/** Hosts that must stay in service for a target of `total` hosts: the configured count or share, or all but one batch. */
export function minHealthyFor(policy: Pick<PlanPolicy, 'batchSize' | 'minHealthy'>, total: number): number {
  const wanted = Math.max(1, hostsFor(policy.batchSize, total));
  return policy.minHealthy === undefined ? Math.max(0, total - wanted) : hostsFor(policy.minHealthy, total);
}

/** Hosts out of service at once for a target of `total` hosts: the configured batch, cut down to keep minHealthy serving (0 when none may leave). */
export function batchSizeFor(policy: Pick<PlanPolicy, 'batchSize' | 'minHealthy'>, total: number): number {
  return Math.max(0, Math.min(Math.max(1, hostsFor(policy.batchSize, total)), total - minHealthyFor(policy, total)));
}

export function planRelease(facts: PlanFacts, policy: PlanPolicy): PlanResult {
  const total = facts.hosts.length;
  if (total === 0) return { ok: false, reason: 'no running instance carries the target tags' };
  const minHealthy = minHealthyFor(policy, total);
  if (minHealthy >= total) {
    return { ok: false, reason: `minHealthy ${minHealthy} of ${total} host(s) leaves no host to take out of service: lower policy.minHealthy` };
  }
  const batchSize = batchSizeFor(policy, total);
  const { batches, gates } = planSteps(facts.hosts, batchSize, policy.steps);

  const balanced = facts.loadBalancers.length > 0;
  const hostSteps: HostStep[] = [
    ...(balanced ? (['deregister', 'drain'] as const) : []),
    'stop-old',
    'start-new',
    'wait-healthy',
    ...(policy.smoke ? (['smoke'] as const) : []),
    ...(balanced ? (['register', 'wait-in-service'] as const) : []),
  ];

  const suspend: Record<string, readonly string[]> = {};
  for (const group of facts.autoScalingGroups) suspend[group.name] = processesToSuspend(policy.suspendProcesses, group.suspended);

  return {
    ok: true,
    plan: {
      batches,
      gates,
      batchSize,
      minHealthy,
      hostSteps,
      loadBalancers: facts.loadBalancers,
      suspend,
      muteAlarms: facts.alarms.filter((a) => a.actionsEnabled).map((a) => a.name),
      onFailure: policy.onFailure,
    },
  };
}

/** How a plan reads to a person: what `harbormaster plan` prints. */
export function describePlan(plan: ReleasePlan): string[] {
  const lines = [
    `${plan.batches.flat().length} host(s) in ${plan.batches.length} batch(es) of at most ${plan.batchSize}; at least ${plan.minHealthy} stay in service`,
    `load balancers: ${plan.loadBalancers.map((lb) => lb.id).join(', ') || 'none'}`,
    ...Object.entries(plan.suspend).map(([group, processes]) => `auto scaling ${group}: suspend ${processes.join(', ') || 'nothing (already suspended)'}`),
    `alarms muted: ${plan.muteAlarms.join(', ') || 'none'}`,
    `on failure: ${plan.onFailure === 'all' ? 'roll back every host' : 'put the failing host back and stop'}`,
  ];
  plan.batches.forEach((batch, index) => {
    for (const gate of plan.gates.filter((g) => g.afterBatch === index)) lines.push(`then: ${describeGate(gate)}`);
    for (const host of batch) lines.push(`batch ${index + 1}: ${host.instanceId} ${host.address}${host.name ? ` (${host.name})` : ''}: ${plan.hostSteps.join(' -> ')}`);
  });
  for (const gate of plan.gates.filter((g) => g.afterBatch >= plan.batches.length)) lines.push(`then: ${describeGate(gate)}`);
  return lines;
}
