import type { ReleaseConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import type { RolloutSettings } from '../config/worker-config.js';
import { loadBalancerKey } from '../state/release-record.js';
import type { ResolvedTarget } from './release-runner.js';
import { containerSpec } from './container-spec.js';
import { batchSizeFor, minHealthyFor } from './plan.js';
import { Refusal } from './prepare.js';

// A release taken up with a plan already recorded: the plan is a cache, and what the configuration
// gives wins over it. How the container runs (image, ports, volumes, environment and its sources,
// labels), the release task, the policy and its minimum healthy are derived again from the
// configuration and the vouched request. The target is resolved again as a new release resolves it:
// each host's address is the one EC2 gives for its instance now, and a host the record names that is
// not a running instance of the target is dropped (`gone`) whatever its progress, never connected to;
// the load balancers are those the configuration and discovery give, and a host is put back only into
// those; Auto Scaling groups and alarms the release has not touched yet are the configuration's alone
// (one already suspended or muted stays, so that it is put back). So a record written by anyone but
// the worker can neither run a command, mount a path, read a file into a container, reach a host the
// target does not have, nor register a host into a load balancer the target does not use.

/** Equal as JSON, whatever the order of keys: the recorded plan went through a store, the configuration through its parser. */
function sameJson(a: unknown, b: unknown): boolean {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value) ? value.map(canonical) : value && typeof value === 'object' ? Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, v]) => [k, canonical(v)])) : value;
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

export async function refreshPlan(release: RecordedRelease, releaseConfig: ReleaseConfig, resolve: (settings: RolloutSettings) => Promise<ResolvedTarget>, log: Logger): Promise<void> {
  const { record } = release;
  const plan = record.plan!;
  const configured = releaseConfig.rollout;
  if (!configured) throw new Refusal(`no rollout is configured for ${record.request.target.stack}/${record.request.target.release} any more: the release cannot go on`);
  // A release for hosts that joined later has no canary steps (prepare.ts).
  const settings = record.newHosts ? { ...configured, policy: { ...configured.policy, steps: undefined } } : configured;
  const spec = containerSpec(settings, { image: record.request.image, target: record.target, releaseId: record.releaseId, requestedBy: record.request.requestedBy });
  const total = Object.keys(record.hosts).length;
  const minHealthy = Math.max(plan.minHealthy, minHealthyFor(settings.policy, total));
  const batchSize = Math.min(plan.batchSize, Math.max(1, batchSizeFor(settings.policy, total)));
  const resolved = await resolve(settings);
  const running = new Map(resolved.hosts.map((i) => [i.instanceId, i]));
  const hosts = Object.values(record.hosts).filter((h) => h.progress !== 'gone');
  const moved = hosts.filter((h) => running.has(h.instanceId) && running.get(h.instanceId)!.address !== h.address);
  // Whatever the record says of it, a host that is not an instance of the target now is never connected to.
  const strangers = hosts.filter((h) => !running.has(h.instanceId));
  const balancers = new Set(resolved.loadBalancers.map(loadBalancerKey));
  const loadBalancers = plan.loadBalancers.filter((lb) => balancers.has(loadBalancerKey(lb)));
  const registeredElsewhere = hosts.filter((h) => h.before.registeredIn.some((key) => !balancers.has(key)));
  // Groups and alarms the release has not touched yet are the configuration's alone; one it already
  // suspended or muted stays, so that it is put back.
  const groups = new Set(resolved.groups.map((g) => g.name));
  const strayGroups = Object.entries(record.scaling).filter(([name, group]) => !groups.has(name) && group.phase === 'planned').map(([name]) => name);
  const alarms = new Set(resolved.alarms.map((a) => a.name));
  const strayAlarms = record.alarms?.phase === 'planned' ? record.alarms.names.filter((name) => !alarms.has(name)) : [];
  const differs = [
    ...(sameJson(settings, plan.settings) ? [] : ['settings']),
    ...(sameJson(spec, plan.spec) ? [] : ['container spec']),
    ...(minHealthy !== plan.minHealthy ? ['minHealthy'] : []),
    ...(batchSize !== plan.batchSize ? ['batchSize'] : []),
    ...(plan.onFailure !== settings.policy.onFailure ? ['onFailure'] : []),
    ...moved.map((h) => `${h.instanceId}'s address`),
    ...strangers.map((h) => `${h.instanceId} (not an instance of the target)`),
    ...(loadBalancers.length !== plan.loadBalancers.length ? ['load balancers'] : []),
    ...registeredElsewhere.map((h) => `${h.instanceId}'s load balancers before`),
    ...strayGroups.map((name) => `Auto Scaling group ${name}`),
    ...strayAlarms.map((name) => `alarm ${name}`),
  ];
  if (differs.length === 0) return;
  log.warn({ differs }, 'the recorded plan differs from what the configuration, EC2 and the target give now: carried on with theirs');
  await release.update((draft) => {
    draft.plan = { ...plan, settings, spec, minHealthy, batchSize, onFailure: settings.policy.onFailure, loadBalancers };
    for (const host of moved) (draft.hosts[host.instanceId] as { address: string }).address = running.get(host.instanceId)!.address;
    for (const host of strangers) {
      const drafted = draft.hosts[host.instanceId]!;
      if (drafted.progress !== 'pending') drafted.attention = `not an instance of ${record.target} when the release was taken up: not touched`;
      drafted.progress = 'gone';
    }
    for (const host of registeredElsewhere) (draft.hosts[host.instanceId]!.before as { registeredIn: string[] }).registeredIn = host.before.registeredIn.filter((key) => balancers.has(key));
    for (const name of strayGroups) delete draft.scaling[name];
    if (draft.alarms && strayAlarms.length > 0) {
      const keep = (name: string) => alarms.has(name);
      draft.alarms = { ...draft.alarms, names: draft.alarms.names.filter(keep), disable: draft.alarms.disable.filter(keep) };
    }
  });
}
