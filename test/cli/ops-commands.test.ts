import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { stringify } from 'yaml';
import { awsEndpoint, clientConfig } from '../../local-fleet/aws-resources.js';
import { historyView } from '../../src/cli/ops/history-view.js';
import { shortId, shortImage } from '../../src/cli/ops/table.js';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import { createReleaseTable, DynamoReleaseStore } from '../../src/state/dynamodb-release-store.js';
import { FileReleaseStore } from '../../src/state/file-release-store.js';
import type { ReleaseStore } from '../../src/state/release-store.js';
import { releaseSummary, type ReleaseHistory } from '../../src/state/target-summary.js';
import { motoForSuite } from '../support/aws.js';
import { CLI, collect, runCli } from '../support/cli.js';
import { simulatedConfigObject, simulatedFleet } from '../support/simulated-release.js';

// The read-only ops commands end to end: the built `harbormaster` executable against records the real
// engine wrote (scheduler, runner, leases) on simulated hosts, once with the file store and once with
// DynamoDB on moto. Staging gets a release that succeeds and one that rolls back, alice's personal
// deployment one that succeeds, integration (no instance) one that is refused.

const env = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, AWS_ACCESS_KEY_ID: 'harbormaster-local', AWS_SECRET_ACCESS_KEY: 'harbormaster-local' });
const moto = motoForSuite();

function writeConfig(object: Record<string, unknown>): string {
  const path = join(mkdtempSync(join(tmpdir(), 'harbormaster-ops-')), 'worker.yml');
  writeFileSync(path, stringify(object));
  return path;
}

interface Setup {
  store: ReleaseStore & ReleaseHistory;
  config: string;
  fleet: ReturnType<typeof simulatedFleet>;
  ids: { good: string; bad: string; alice: string; refused: string };
}

async function released(object: Record<string, any>, store: ReleaseStore & ReleaseHistory): Promise<Setup> {
  const fleet = simulatedFleet(parseWorkerConfig(stringify(object)));
  const good = await fleet.release(store, 'staging', 'v2');
  const bad = await fleet.release(store, 'staging', 'bad');
  const alice = await fleet.release(store, 'personal-alice', 'v2', 'alice');
  const refused = await fleet.release(store, 'integration', 'v2');
  assert.deepEqual([good, bad, alice, refused].map((r) => r.taken.status === 'ended' && r.taken.outcome.status), ['succeeded', 'rolled-back', 'succeeded', 'refused']);
  return { store, config: writeConfig(object), fleet, ids: { good: good.releaseId, bad: bad.releaseId, alice: alice.releaseId, refused: refused.releaseId } };
}

const cli = async (args: string[]) => runCli(args, env(), 60_000);
const json = async (args: string[]) => {
  const result = await cli([...args, '--json']);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
};

function commandsAgainst(kind: string, setUp: () => Promise<Setup>) {
  describe(`ops commands on the ${kind} store`, () => {
    let s: Setup;
    before(async () => {
      s = await setUp();
    });

    it('status --json: every served target with releases, each current release and last failure as the records say', async () => {
      const view = await json(['status', '--config', s.config]);
      assert.equal(view.format, 'harbormaster.status/1');
      assert.deepEqual(view.targets.map((t: { target: string }) => t.target), ['data/ingest/integration', 'data/ingest/staging', 'data/ingest/personal-alice']);
      const byTarget = Object.fromEntries(view.targets.map((t: { target: string }) => [t.target, t]));
      const summary = async (id: string) => releaseSummary((await s.store.get(id))!);
      assert.deepEqual(byTarget['data/ingest/staging'].current, await summary(s.ids.good));
      assert.deepEqual(byTarget['data/ingest/staging'].lastFailure, await summary(s.ids.bad));
      assert.deepEqual(byTarget['data/ingest/personal-alice'].current, await summary(s.ids.alice));
      assert.deepEqual([byTarget['data/ingest/integration'].current, byTarget['data/ingest/integration'].lastFailure], [null, await summary(s.ids.refused)]);
      for (const t of view.targets) assert.deepEqual([t.inProgress, t.waiting, t.restoresPending], [null, [], []]);
    });

    it('status: one aligned line per target, without colour when not on a terminal', async () => {
      const result = await cli(['status', '--config', s.config]);
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trimEnd().split('\n');
      assert.match(lines[0]!, /^TARGET\s+CURRENT\s+BY\s+WHEN\s+COMMIT\s+NOW\s+WAITING\s+RESTORES\s+LAST FAILURE$/);
      assert.equal(lines.length, 4);
      const staging = lines.find((l) => l.startsWith('data/ingest/staging '))!;
      const good = (await s.store.get(s.ids.good))!;
      assert.ok(staging.includes(shortImage(good.request.image)) && staging.includes(`rolled-back ingest:bad [${shortId(s.ids.bad)}]`), staging);
      assert.ok(lines.slice(1).every((l) => l.slice(0, lines[0]!.indexOf('CURRENT')).trimEnd().split(' ').length === 1), 'the second column starts at the same place on every line');
      assert.doesNotMatch(result.stdout, /\x1b\[/);
    });

    it('status TARGET shows that target only; an unknown target is a mistake in the call that names the known ones', async () => {
      const view = await json(['status', 'data/ingest/personal-alice', '--config', s.config]);
      assert.deepEqual(view.targets.map((t: { target: string }) => t.target), ['data/ingest/personal-alice']);
      const unknown = await cli(['status', 'data/ingest/prod', '--config', s.config]);
      assert.equal(unknown.code, 2);
      assert.equal(unknown.stderr, 'harbormaster: unknown target data/ingest/prod; known: data/ingest/integration, data/ingest/staging, data/ingest/personal-alice\n');
    });

    it('history: the target\'s releases newest first, as the records say; --limit bounds them and must be a number', async () => {
      const view = await json(['history', 'data/ingest/staging', '--config', s.config]);
      assert.deepEqual(view.releases.map((r: { releaseId: string }) => r.releaseId), [s.ids.bad, s.ids.good]);
      assert.deepEqual(view, historyView('data/ingest/staging', await s.store.recent('data/ingest/staging', 20), new Date(view.at)));
      assert.deepEqual((await json(['history', 'data/ingest/staging', '--limit', '1', '--config', s.config])).releases.length, 1);
      const table = await cli(['history', 'data/ingest/staging', '--config', s.config]);
      assert.match(table.stdout.split('\n')[1]!, new RegExp(`^${shortId(s.ids.bad)}\\s+ingest:bad\\s+rolled-back\\s+ci-bot`));
      const wrong = await cli(['history', 'data/ingest/staging', '--limit', 'ten', '--config', s.config]);
      assert.deepEqual([wrong.code, wrong.stderr], [2, "harbormaster: --limit must be a whole number from 1 to 1000, not 'ten'\n"]);
    });

    it('show: the whole record as stored, and host by host for people', async () => {
      const view = await json(['show', s.ids.bad, '--config', s.config]);
      const record = (await s.store.get(s.ids.bad))!;
      assert.deepEqual(view.record, record);
      assert.equal(view.ended, true);
      const text = (await cli(['show', s.ids.bad, '--config', s.config])).stdout;
      assert.match(text, new RegExp(`^release ${s.ids.bad}  rolled-back\\n`));
      for (const host of Object.values(record.hosts)) assert.match(text, new RegExp(`\\n  ${host.instanceId}\\s+${host.name}\\s+${host.progress}\\s`));
      assert.ok(text.includes(`reason       ${record.reason}`));
    });

    it('show: a malformed id is a mistake in the call (exit 2); an unknown one is not in the state (exit 1)', async () => {
      const malformed = await cli(['show', 'nope', '--config', s.config]);
      assert.deepEqual([malformed.code, malformed.stderr], [2, "harbormaster: not a release id: 'nope' (the UUID enqueue printed, or its first 8 or more characters as the tables show them)\n"]);
      const unknown = await cli(['show', '00000000-0000-4000-8000-000000000000', '--config', s.config]);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /^harbormaster: no release 00000000-0000-4000-8000-000000000000 in the release state \((files in|DynamoDB table) .*\): never accepted here, or past its retention\n$/);
    });

    it('show: the first 8 characters, as the tables show them, name the release; a prefix nothing starts with is exit 1', async () => {
      const whole = await json(['show', s.ids.bad, '--config', s.config]);
      const short = await json(['show', shortId(s.ids.bad), '--config', s.config]);
      assert.equal(short.record.releaseId, s.ids.bad);
      assert.deepEqual(short.record, whole.record);
      const none = await cli(['show', s.ids.bad.startsWith('f') ? '00000000' : 'ffffffff', '--config', s.config]);
      assert.equal(none.code, 1);
      assert.match(none.stderr, /^harbormaster: no release whose id starts with [0f]{8} among the current, unfinished and 40 newest releases of each target \(.*\); give the whole id\n$/);
    });

    it('status --watch refreshes until the waiting release has ended, and then shows it current', async () => {
      const releaseId = await s.fleet.claim(s.store, 'personal-alice', 'v3', 'alice');
      const child = spawn(process.execPath, [CLI, 'status', 'data/ingest/personal-alice', '--watch', '--interval', '0.2', '--json', '--config', s.config], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let seen = '';
      child.stdout!.on('data', (chunk: Buffer) => (seen += chunk.toString()));
      const ended = collect(child, 60_000);
      while (!seen.includes('\n')) await new Promise((resolve) => setTimeout(resolve, 50));
      const taken = await s.fleet.take(s.store, releaseId);
      assert.equal(taken.status === 'ended' && taken.outcome.status, 'succeeded');
      const result = await ended;
      assert.equal(result.code, 0, result.stderr);
      const frames = seen.trimEnd().split('\n').map((line) => JSON.parse(line).targets[0]);
      assert.ok(frames.length >= 2, 'more than one frame');
      assert.deepEqual(frames[0].waiting.map((w: { releaseId: string }) => w.releaseId), [releaseId]);
      assert.deepEqual([frames.at(-1).waiting, frames.at(-1).inProgress, frames.at(-1).current.releaseId], [[], null, releaseId]);
    });
  });
}

commandsAgainst('file', async () => {
  const object = simulatedConfigObject('http://127.0.0.1:1', { store: 'file' });
  return released(object, new FileReleaseStore(object.stateDirectory));
});

let dynamo: DynamoDBClient | undefined;
after(() => dynamo?.destroy());
commandsAgainst('DynamoDB (moto)', async () => {
  dynamo = new DynamoDBClient(clientConfig(awsEndpoint(moto.moto.endpoint)));
  const table = `harbormaster-ops-${process.pid}`;
  await createReleaseTable(dynamo, table);
  return released(simulatedConfigObject(moto.moto.endpoint, { store: 'dynamodb', table }), new DynamoReleaseStore({ client: dynamo, table }));
});

describe('a release state that cannot be read', () => {
  it('files: says which store and why, exit 1', async () => {
    const object = simulatedConfigObject('http://127.0.0.1:1', { store: 'file' });
    writeFileSync(join(object.stateDirectory, 'releases'), 'not a directory');
    mkdirSync(join(object.stateDirectory, 'targets'));
    const result = await cli(['status', '--config', writeConfig(object)]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`^harbormaster: cannot read the unfinished releases from the release state \\(files in ${object.stateDirectory}/releases\\): Error: ENOTDIR: .*\\n$`));
  });

  it('DynamoDB: says which table and why, exit 1', async () => {
    const result = await cli(['status', '--config', writeConfig(simulatedConfigObject(moto.moto.endpoint, { store: 'dynamodb', table: 'no-such-table' }))]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^harbormaster: cannot read the (targets|unfinished releases) from the release state \(DynamoDB table no-such-table\): ResourceNotFoundException: .*\n$/);
  });
});
