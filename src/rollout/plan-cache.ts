import type { ReleaseConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import type { InstanceFinder } from '../target/target-instances.js';
import { containerSpec } from './container-spec.js';
import { batchSizeFor, minHealthyFor } from './plan.js';
import { Refusal } from './prepare.js';

// A release taken up with a plan already recorded: the plan is a cache, and what the configuration
// gives wins over it. How the container runs (image, ports, volumes, environment and its sources,
// labels), the release task, the policy and its minimum healthy are derived again from the
// configuration and the vouched request; each host's address is the one EC2 gives for its instance
// now. A host the record names that is no longer a running instance of the target, and that the
// release has not touched, is dropped. So a record written by anyone but the worker can neither run a
// command, mount a path, read a file into a container nor reach a host the target does not have.

/** Equal as JSON, whatever the order of keys: the recorded plan went through a store, the configuration through its parser. */
function sameJson(a: unknown, b: unknown): boolean {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value) ? value.map(canonical) : value && typeof value === 'object' ? Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, v]) => [k, canonical(v)])) : value;
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

export async function refreshPlan(release: RecordedRelease, releaseConfig: ReleaseConfig, finder: InstanceFinder, log: Logger): Promise<void> {
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
  const { stack, release: name } = record.request.target;
  const running = new Map((await finder.find({ stack, release: name, deployment: record.deployment })).map((i) => [i.instanceId, i]));
  const moved = Object.values(record.hosts).filter((h) => running.has(h.instanceId) && running.get(h.instanceId)!.address !== h.address);
  const gone = Object.values(record.hosts).filter((h) => h.progress === 'pending' && !running.has(h.instanceId));
  const differs = [
    ...(sameJson(settings, plan.settings) ? [] : ['settings']),
    ...(sameJson(spec, plan.spec) ? [] : ['container spec']),
    ...(minHealthy !== plan.minHealthy ? ['minHealthy'] : []),
    ...(batchSize !== plan.batchSize ? ['batchSize'] : []),
    ...(plan.onFailure !== settings.policy.onFailure ? ['onFailure'] : []),
    ...moved.map((h) => `${h.instanceId}'s address`),
    ...gone.map((h) => `${h.instanceId} (no longer an instance of the target)`),
  ];
  if (differs.length === 0) return;
  log.warn({ differs }, 'the recorded plan differs from what the configuration and EC2 give now: carried on with theirs');
  await release.update((draft) => {
    draft.plan = { ...plan, settings, spec, minHealthy, batchSize, onFailure: settings.policy.onFailure };
    for (const host of moved) (draft.hosts[host.instanceId] as { address: string }).address = running.get(host.instanceId)!.address;
    for (const host of gone) draft.hosts[host.instanceId]!.progress = 'gone';
  });
}
