// What `harbormaster status` costs against the DynamoDB store: a moto_server on a free loopback port,
// TARGETS targets (default 200) with RELEASES finished releases each (default 50) and one release in
// progress on every tenth target, in the items the store itself writes (its own item and summary
// shapes, written in batches: through claim() one by one, seeding takes minutes on moto). Then `status` over every target: the
// DynamoDB calls it makes (by operation; no Scan), the items they return, and the time, in this
// process (the median of RUNS) and as the built executable (Node start-up included).
//   node --import tsx scripts/benchmark-status.ts        (npm run build first for the executable)
//   TARGETS=20 RELEASES=10 node --import tsx scripts/benchmark-status.ts
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { stringify } from 'yaml';
import { awsEndpoint, clientConfig } from '../local-fleet/aws-resources.js';
import { MOTO_REGION, startMoto } from '../local-fleet/moto.js';
import { readStatus } from '../src/cli/ops/status.js';
import { parseWorkerConfig } from '../src/config/worker-config.js';
import { newReleaseRequest } from '../src/request/release-request.js';
import { createReleaseTable, DynamoReleaseStore } from '../src/state/dynamodb-release-store.js';
import { newReleaseRecord, type ReleaseRecord } from '../src/state/release-record.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const TARGETS = Number(process.env.TARGETS ?? 200);
const RELEASES = Number(process.env.RELEASES ?? 50);
const RUNS = Number(process.env.RUNS ?? 5);
const WRITERS = 16;
const root = fileURLToPath(new URL('..', import.meta.url));

const deployments = Array.from({ length: TARGETS }, (_, i) => `d${String(i).padStart(3, '0')}`);
const moto = await startMoto();
const counts = new Map<string, number>();
const spent = new Map<string, number>();
const client = new DynamoDBClient(clientConfig(awsEndpoint(moto.endpoint)));
client.middlewareStack.add((next, context) => async (args) => {
  const name = `${context.commandName!.replace(/Command$/, '')}${(args.input as { IndexName?: string }).IndexName ? ` (${(args.input as { IndexName?: string }).IndexName})` : ''}`;
  counts.set(name, (counts.get(name) ?? 0) + 1);
  const started = performance.now();
  try {
    return await next(args);
  } finally {
    spent.set(name, (spent.get(name) ?? 0) + performance.now() - started);
  }
}, { step: 'initialize', name: 'countCalls' });
const table = `harbormaster-benchmark-${process.pid}`;

function record(deployment: string, index: number, status: ReleaseRecord['status']): ReleaseRecord {
  const built = newReleaseRequest({ target: { stack: 'data', release: 'ingest', deployment }, image: `registry:5000/data/ingest:v${index}`, requestedBy: 'bench', source: { commit: 'abcdef1234' } });
  if (!built.ok) throw new Error(built.reason);
  const created = new Date(Date.now() - (RELEASES - index) * 3_600_000);
  const base = newReleaseRecord({ request: { ...built.value, createdAt: created.toISOString() }, keyId: 'bench', target: `data/ingest/${deployment}`, deployment, now: created, worker: 'bench' });
  return status === 'running' ? { ...base, status } : { ...base, status, startedAt: created.toISOString(), finishedAt: new Date(created.getTime() + 60_000).toISOString(), ...(status === 'succeeded' ? {} : { reason: 'benchmark' }) };
}

try {
  await createReleaseTable(client, table);
  const store = new DynamoReleaseStore({ client, table });
  // The store's own shapes: the release item claim() puts, and the summary update a final save makes.
  const shapes = store as unknown as { toItem(record: ReleaseRecord, writeId: string, now: number): Record<string, unknown>; summaryUpdates(record: ReleaseRecord, now: number): Array<ConstructorParameters<typeof UpdateCommand>[0]> };
  const doc = DynamoDBDocumentClient.from(client);
  const items: Record<string, unknown>[] = [];
  const summaries: ReleaseRecord[] = [];
  deployments.forEach((deployment, t) => {
    const records = Array.from({ length: RELEASES }, (_, i) => record(deployment, i, i % 7 === 6 ? 'rolled-back' : 'succeeded'));
    if (t % 10 === 0) records.push(record(deployment, RELEASES, 'running'));
    for (const r of records) items.push(shapes.toItem({ ...r, revision: 1 }, randomUUID(), Date.now()));
    summaries.push(records.filter((r) => r.status === 'succeeded').at(-1)!, records.filter((r) => r.status === 'rolled-back').at(-1)!, ...records.filter((r) => r.status === 'running'));
  });
  const seeding = Date.now();
  const work: Array<() => Promise<unknown>> = [];
  for (let i = 0; i < items.length; i += 25) {
    const batch = items.slice(i, i + 25);
    work.push(async () => {
      let pending = batch.map((Item) => ({ PutRequest: { Item } }));
      while (pending.length > 0) pending = ((await doc.send(new BatchWriteCommand({ RequestItems: { [table]: pending } }))).UnprocessedItems?.[table] ?? []) as typeof pending;
    });
  }
  for (const r of summaries) for (const update of shapes.summaryUpdates(r, Date.now())) work.push(() => doc.send(new UpdateCommand(update)));
  let next = 0;
  // moto answers 500 now and then under load: a seeding write is tried again, a few times.
  const retried = async (write: () => Promise<unknown>) => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await write();
      } catch (error) {
        if (attempt >= 5) throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, async () => {
    while (next < work.length) await retried(work[next++]!);
  }));
  console.log(`seeded ${items.length} releases over ${TARGETS} targets in ${((Date.now() - seeding) / 1000).toFixed(1)} s`);

  const config = parseWorkerConfig(
    stringify({
      aws: { region: MOTO_REGION, endpoint: moto.endpoint },
      queue: { url: `${moto.endpoint}/q`, deadLetterUrl: `${moto.endpoint}/d` },
      signing: { keys: [{ id: 'bench', env: 'UNUSED' }] },
      state: { store: 'dynamodb', table },
      releases: [{ stack: 'data', release: 'ingest', deployments, images: { allowedRepositories: ['registry:5000/data/ingest'] } }],
    }),
  );
  const state = { history: store, read: <T>(_what: string, work: (h: typeof store) => Promise<T>) => work(store), close: () => undefined };
  const times: number[] = [];
  const calls: string[] = [];
  let shown = 0;
  for (let run = 0; run < RUNS; run += 1) {
    counts.clear();
    spent.clear();
    const started = performance.now();
    const view = await readStatus({ config, state }, []);
    times.push(performance.now() - started);
    shown = view.targets.length;
    calls.push([...counts].map(([name, n]) => `${name} ${n}`).join(', '));
  }
  times.sort((a, b) => a - b);
  console.log(`status over ${shown} targets (${TARGETS * RELEASES + Math.ceil(TARGETS / 10)} releases in the table), in this process:`);
  console.log(`  DynamoDB calls per status: ${[...new Set(calls)].join(' | ')} (a Scan: ${counts.has('ScanCommand') ? 'yes' : 'none'})`);
  console.log(`  time in each operation, last run: ${[...spent].map(([name, ms]) => `${name} ${ms.toFixed(0)} ms`).join(', ')}`);
  console.log(`  time: median ${times[Math.floor(times.length / 2)]!.toFixed(0)} ms, fastest ${times[0]!.toFixed(0)} ms, slowest ${times.at(-1)!.toFixed(0)} ms over ${RUNS} runs`);

  const executable = join(root, 'bin/harbormaster.js');
  if (existsSync(join(root, 'dist/cli/main.js'))) {
    const path = join(mkdtempSync(join(tmpdir(), 'harbormaster-bench-')), 'worker.yml');
    writeFileSync(path, stringify({ ...JSON.parse(JSON.stringify(config)), stateDirectory: tmpdir() }));
    const started = performance.now();
    const result = spawnSync(process.execPath, [executable, 'status', '--json', '--config', path], { env: { ...process.env, AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench' }, encoding: 'utf8' });
    const elapsed = performance.now() - started;
    if (result.status !== 0) throw new Error(`harbormaster status failed: ${result.stderr}`);
    console.log(`  the executable: harbormaster status --json answered in ${elapsed.toFixed(0)} ms, Node start-up included (${(JSON.parse(result.stdout) as { targets: unknown[] }).targets.length} targets)`);
  } else {
    console.log('  (no dist/: npm run build, then run again, to time the executable too)');
  }
} finally {
  client.destroy();
  await moto.stop();
}
