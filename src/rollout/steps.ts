// Canary steps as data: which hosts go in which batch, and the gates between batches (a bake: wait
// and watch, nothing changes; a pause: wait for `harbormaster promote`). Pure; planned once and
// recorded with the release, so a restarted or taking-over worker resumes the same step.
//
// `policy.steps` reads in order: `{hosts: N}` exposes N more hosts; `{percent: P}` exposes hosts up
// to P% of the target in all (rounded up, never fewer than already exposed); `{bakeSeconds: S}` and
// `{pause: true}` are gates after the hosts exposed so far. Each step's hosts go in batches of
// policy.batchSize. Hosts the steps leave out go last, in batches, after the last step. Without
// steps: every host in batches, no gate (the behaviour before steps existed).

export type StepSpec = { readonly hosts: number } | { readonly percent: number } | { readonly bakeSeconds: number } | { readonly pause: true };

export type Gate = { readonly afterBatch: number; readonly kind: 'bake'; readonly seconds: number } | { readonly afterBatch: number; readonly kind: 'pause' };

export interface Steps<T> {
  readonly batches: T[][];
  readonly gates: Gate[];
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += Math.max(1, size)) chunks.push(items.slice(i, i + Math.max(1, size)));
  return chunks;
}

export function planSteps<T>(hosts: readonly T[], batchSize: number, steps: readonly StepSpec[] = []): Steps<T> {
  const total = hosts.length;
  const batches: T[][] = [];
  const gates: Gate[] = [];
  let exposed = 0;
  const exposeUpTo = (count: number) => {
    const next = Math.min(total, Math.max(exposed, count));
    batches.push(...chunk(hosts.slice(exposed, next), batchSize));
    exposed = next;
  };
  for (const step of steps) {
    if ('hosts' in step) exposeUpTo(exposed + step.hosts);
    else if ('percent' in step) exposeUpTo(Math.ceil((step.percent / 100) * total));
    else if ('bakeSeconds' in step) gates.push({ afterBatch: batches.length, kind: 'bake', seconds: step.bakeSeconds });
    else gates.push({ afterBatch: batches.length, kind: 'pause' });
  }
  exposeUpTo(total);
  return { batches, gates };
}

/** How a gate reads to a person. */
export function describeGate(gate: Gate): string {
  return gate.kind === 'bake' ? `bake ${gate.seconds} s (alarms and health watched, nothing changes)` : 'pause until `harbormaster promote`';
}
