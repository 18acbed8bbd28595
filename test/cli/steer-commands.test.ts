import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { stringify } from 'yaml';
import { awsEndpoint, clientConfig } from '../../local-fleet/aws-resources.js';
import { parseWorkerConfig } from '../../src/config/worker-config.js';
import { createReleaseTable, DynamoReleaseStore } from '../../src/state/dynamodb-release-store.js';
import { FileReleaseStore } from '../../src/state/file-release-store.js';
import type { ReleaseStore } from '../../src/state/release-store.js';
import type { ReleaseHistory } from '../../src/state/target-summary.js';
import { osFacts, osIdentity } from '../../src/cli/ops/identity.js';
import { motoForSuite } from '../support/aws.js';
import { CLI, collect, runCli } from '../support/cli.js';
import { assumeRole, credentialsEnv } from '../support/sts.js';
import { simulatedConfigObject, simulatedFleet } from '../support/simulated-release.js';

// The verbs that steer a target, end to end: the built `harbormaster` executable writes the target's
// control (and, for rollback, a new release record) in the store the worker's configuration names,
// and the real engine (scheduler, runner) on simulated hosts carries it out. Once with the file store
// (who ran a verb: the OS user), once with DynamoDB on moto (who ran a verb: the caller's ARN, here a
// person behind a shared role, named by the role session name); --by is a note beside it.

const moto = motoForSuite();
const STAGING = 'data/ingest/staging';
const ALICE = 'data/ingest/personal-alice';
const INTEGRATION = 'data/ingest/integration';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

/** The credentials the verbs run with: the suite's (set up before its tests). */
let credentials: NodeJS.ProcessEnv = { AWS_ACCESS_KEY_ID: 'harbormaster-local', AWS_SECRET_ACCESS_KEY: 'harbormaster-local' };
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, ...credentials, HARBORMASTER_OPS_POLL_MS: '100', ...extra });
const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli(args, env(extra), 60_000);
/** Starts a verb that waits, to carry the release out while it does. */
const started = (args: string[]) => collect(spawn(process.execPath, [CLI, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] }), 60_000);
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function writeConfig(object: Record<string, unknown>): string {
  const path = join(mkdtempSync(join(tmpdir(), 'harbormaster-steer-')), 'worker.yml');
  writeFileSync(path, stringify(object));
  return path;
}

interface Setup {
  store: ReleaseStore & ReleaseHistory;
  config: string;
  fleet: ReturnType<typeof simulatedFleet>;
  /** Who every verb is recorded as, with or without --by. */
  who: string;
  /** Who a verb run with SUDO_USER=mallory is recorded as. */
  underSudo: string;
  /** The credentials the verbs run with. */
  credentials: NodeJS.ProcessEnv;
}

function verbsAgainst(kind: string, setUp: () => Promise<Setup>) {
  describe(`steering verbs on the ${kind} store`, () => {
    let s: Setup;
    before(async () => {
      s = await setUp();
      credentials = s.credentials;
    });

    it('lock records who, why and until (4 hours by default); status shows it; unlock lifts it and records who did', async () => {
      const locked = await cli(['lock', STAGING, '--reason', 'incident 42', '--config', s.config, '--json']);
      assert.equal(locked.code, 0, locked.stderr);
      const control = await s.store.control(STAGING);
      assert.equal(control.lock?.reason, 'incident 42');
      assert.deepEqual([control.lock!.by, control.lock!.note], [s.who, undefined]);
      assert.ok(Math.abs(Date.parse(control.lock!.until) - Date.parse(control.lock!.at) - 4 * 3_600_000) < 1_000, 'four hours');
      assert.deepEqual(JSON.parse(locked.stdout).lock, control.lock);

      const status = await cli(['status', STAGING, '--config', s.config, '--json']);
      assert.deepEqual(JSON.parse(status.stdout).targets[0].lock, control.lock);
      assert.match((await cli(['status', STAGING, '--config', s.config])).stdout, /data\/ingest\/staging: locked by .* until .*: incident 42/);

      const unlocked = await cli(['unlock', STAGING, '--by', 'bob', '--config', s.config]);
      assert.equal(unlocked.code, 0, unlocked.stderr);
      assert.match(unlocked.stdout, new RegExp(`^data/ingest/staging unlocked \\(it was locked by .*: incident 42\\); unlocked by ${escape(s.who)} \\(note: bob\\)\n$`));
      const after = await s.store.control(STAGING);
      assert.deepEqual([after.lock, after.unlocked?.by, after.unlocked?.note, after.unlocked?.lock.reason, after.revision], [undefined, s.who, 'bob', 'incident 42', control.revision + 1]);
      assert.match((await cli(['unlock', STAGING, '--config', s.config])).stdout, /was not locked; nothing changed/);
    });

    it('records who ran it, not who the environment or --by says: SUDO_USER is named beside the user, --by is a note', async () => {
      const locked = await cli(['lock', INTEGRATION, '--reason', 'r', '--by', 'root', '--config', s.config], { SUDO_USER: 'mallory' });
      assert.equal(locked.code, 0, locked.stderr);
      const { lock } = await s.store.control(INTEGRATION);
      assert.deepEqual([lock?.by, lock?.note], [s.underSudo, 'root']);
      assert.equal(locked.stdout, `${INTEGRATION} locked by ${s.underSudo} (note: root) until ${lock!.until}: r\n`);
      assert.equal((await cli(['unlock', INTEGRATION, '--config', s.config])).code, 0);
    });

    it('refuses what it cannot record, writing nothing: control characters, a reason too long, a duration out of bounds, an unknown target', async () => {
      const before = await s.store.control(ALICE);
      const cases: Array<[string[], RegExp]> = [
        [['lock', ALICE, '--reason', 'line\nbreak'], /^harbormaster: --reason must be one line of printable text \(no control characters or line breaks\)\n$/],
        [['lock', ALICE, '--reason', 'x'.repeat(301)], /^harbormaster: --reason is 301 characters; at most 300\n$/],
        [['lock', ALICE, '--reason', 'r', '--for', '5y'], /^harbormaster: --for must be a duration like 30m, 4h, 1h30m or 2d \(s, m, h, d\), from 1m to 30d, not '5y'\n$/],
        [['lock', ALICE, '--reason', 'r', '--for', '31d'], /--for must be a duration .* not '31d'/],
        [['lock', ALICE, '--reason', 'r', '--by', 'eve\u001b[31m'], /^harbormaster: --by must be one line of printable text/],
        [['lock', 'data/ingest/prod', '--reason', 'r'], /^harbormaster: unknown target data\/ingest\/prod; known: /],
        [['rollback', ALICE, '--to', 'nope'], /^harbormaster: --to must be a release id \(the UUID enqueue printed, or its first 8 or more characters as the tables show them\), not 'nope'\n$/],
      ];
      for (const [args, stderr] of cases) {
        const result = await cli([...args, '--config', s.config]);
        assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
        assert.match(result.stderr, stderr);
      }
      // How often a verb reads the release while it waits: a whole number of milliseconds, 100 to 60000.
      for (const value of ['0', 'fast', '1e3', '99', '60001']) {
        const result = await cli(['stop', ALICE, '--config', s.config], { HARBORMASTER_OPS_POLL_MS: value });
        assert.equal(result.code, 2, `HARBORMASTER_OPS_POLL_MS=${value}: ${result.stderr}`);
        assert.equal(
          result.stderr,
          `harbormaster: HARBORMASTER_OPS_POLL_MS must be a whole number of milliseconds from 100 to 60000 (how often the command reads the release state while it waits), not '${value}': correct it, or unset it for every 2000 ms\n`,
        );
      }
      assert.deepEqual(await s.store.control(ALICE), before);
    });

    it('stop and promote with no release in progress: one line, exit 1, nothing written', async () => {
      for (const verb of ['stop', 'promote']) {
        const result = await cli([verb, ALICE, '--config', s.config]);
        assert.equal(result.code, 1);
        assert.equal(result.stderr, `harbormaster: no release of ${ALICE} is in progress: nothing to ${verb} (see \`harbormaster status ${ALICE}\`)\n`);
      }
      assert.equal((await s.store.control(ALICE)).revision, 0);
    });

    it('promote records a promotion of the release in progress, the newest replacing the one before, and says when the release waits at no pause', async () => {
      const releaseId = await s.fleet.claim(s.store, 'personal-alice', 'v5', 'alice');
      const first = await cli(['promote', ALICE, '--by', 'carol', '--config', s.config]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, new RegExp(`^recorded: promotion of release ${releaseId} \\(.*:v5, accepted\\), by ${escape(s.who)} \\(note: carol\\)\\n$`));
      assert.match(first.stderr, /is not waiting at a pause now \(accepted\): a promotion counts only for a pause the release already waits at/);
      const again = await cli(['promote', ALICE, '--by', 'dave', '--config', s.config]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual((await s.store.control(ALICE)).promotions?.map((p) => [p.releaseId, p.by, p.note]), [[releaseId, s.who, 'dave']]);
      assert.equal((await s.fleet.take(s.store, releaseId)).status, 'ended');
    });

    it('stop records a stop of the release in progress, waits until it has ended, and exits 0 when it stopped', async () => {
      const releaseId = await s.fleet.claim(s.store, 'staging', 'v3');
      const stopping = started(['stop', STAGING, '--by', 'erin', '--config', s.config]);
      for (let i = 0; i < 1200 && !(await s.store.control(STAGING)).stops?.some((stop) => stop.releaseId === releaseId); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      const stop = (await s.store.control(STAGING)).stops?.find((request) => request.releaseId === releaseId);
      assert.deepEqual([stop?.by, stop?.note], [s.who, 'erin']);
      const taken = await s.fleet.take(s.store, releaseId);
      assert.equal(taken.status === 'ended' && taken.outcome.status, 'stopped');
      const result = await stopping;
      assert.equal(result.code, 0, result.stderr);
      const by = `${escape(s.who)} \\(note: erin\\)`;
      assert.match(result.stdout, new RegExp(`^recorded: stop of release ${releaseId} .*, by ${by}\\nrelease ${releaseId} stopped: stopped by ${by} before it began`));
      const history = JSON.parse((await cli(['history', STAGING, '--config', s.config, '--json'])).stdout);
      const recorded = history.releases.find((r: { releaseId: string }) => r.releaseId === releaseId).stop;
      assert.deepEqual([recorded.by, recorded.note], [s.who, 'erin']);
    });

    it('rollback refuses when there is no other succeeded image, and a --to that did not succeed, naming it; nothing written', async () => {
      const before = (await s.store.recent(ALICE, 100)).length;
      const none = await cli(['rollback', 'data/ingest/integration', '--config', s.config]);
      assert.equal(none.code, 1);
      assert.equal(none.stderr, 'harbormaster: cannot roll data/ingest/integration back: no succeeded release of data/ingest/integration with an image other than the current one (none known) among its last 0 release(s); name one with --to RELEASE_ID\n');
      const bad = (await s.fleet.release(s.store, 'personal-alice', 'bad', 'alice')).releaseId;
      const notSucceeded = await cli(['rollback', ALICE, '--to', bad, '--config', s.config]);
      assert.equal(notSucceeded.code, 1);
      assert.equal(notSucceeded.stderr, `harbormaster: cannot roll ${ALICE} back: --to ${bad} ended rolled-back: only a release that succeeded can be gone back to\n`);
      const byPrefix = await cli(['rollback', ALICE, '--to', bad.slice(0, 8), '--config', s.config]);
      assert.equal(byPrefix.stderr, `harbormaster: cannot roll ${ALICE} back: --to ${bad} ended rolled-back: only a release that succeeded can be gone back to\n`, 'a prefix of 8 characters names the same release');
      const unknown = await cli(['rollback', ALICE, '--to', '00000000-0000-4000-8000-000000000000', '--config', s.config]);
      assert.match(unknown.stderr, /--to 00000000-0000-4000-8000-000000000000: no such release in the release state/);
      assert.equal((await s.store.recent(ALICE, 100)).length, before + 1, 'only the bad release was added');
    });

    it('rollback writes a request; the worker turns it into a release of the previous image by its digest, once, marked as a rollback by who asked; the target locked admitting it', async () => {
      const v2 = (await s.store.recent(STAGING, 100)).find((r) => r.status === 'succeeded')!;
      const v4 = await s.fleet.release(s.store, 'staging', 'v4');
      assert.equal(v4.taken.status === 'ended' && v4.taken.outcome.status, 'succeeded');
      const rolling = started(['rollback', STAGING, '--reason', 'v4 breaks checkout', '--config', s.config]);
      let asked: string | undefined;
      for (let i = 0; i < 1200 && !asked; i++) {
        asked = (await s.store.control(STAGING)).rollback?.releaseId;
        if (!asked) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(asked, 'the rollback request was written within a minute');
      assert.equal(await s.store.get(asked), undefined, 'the command writes no release');
      const lock = (await s.store.control(STAGING)).lock!;
      assert.equal(lock.admits, asked, 'the lock is written with the request, admitting its release');
      assert.equal(lock.reason, `rolled back by ${s.who}: v4 breaks checkout`);

      const [claimed, ...more] = await s.fleet.takeRollbacks(s.store);
      assert.equal(more.length, 0);
      assert.equal(claimed?.releaseId, asked, 'the release gets the id the request carries');
      assert.deepEqual(await s.fleet.takeRollbacks(s.store), [], 'a request is turned into a release once');
      assert.equal((await s.store.control(STAGING)).rollback, undefined, 'the request is done');
      const record = (await s.store.get(asked))!;
      assert.equal(record.request.image, v2.imageDigest ?? v2.request.image, 'by the digest the pull of v2 recorded, when it did');
      assert.equal(record.vouchedBy, v2.releaseId, 'resting on the signed release it repeats');
      assert.equal(record.envelope, undefined);
      assert.ok(record.request.createdAt > (await s.store.get(v4.releaseId))!.request.createdAt, 'the newest request of the target');
      assert.deepEqual({ ...record.origin, at: undefined, by: undefined }, { kind: 'rollback', of: v4.releaseId, to: v2.releaseId, reason: 'v4 breaks checkout', at: undefined, by: undefined });
      assert.equal(record.origin!.by, s.who);
      assert.equal(record.request.requestedBy, record.origin!.by, 'chat names who rolled back, not the original requester');

      // Another request for the locked target waits; the rollback goes through.
      const waiting = await s.fleet.claim(s.store, 'staging', 'v6');
      assert.equal((await s.fleet.take(s.store, waiting)).status, 'busy');
      const taken = await s.fleet.take(s.store, asked);
      assert.equal(taken.status === 'ended' && taken.outcome.status, 'succeeded');
      const result = await rolling;
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^recorded: a rollback request of ${STAGING} to .*:v2 \\(the image of release ${v2.releaseId}\\), by .*; the worker releases it as ${asked}\\nrecorded: ${STAGING} locked by .* until .*\\nrelease ${asked} succeeded`));

      const show = (await cli(['show', asked, '--config', s.config])).stdout;
      assert.match(show, new RegExp(`\\n  rollback     to the image of ${v2.releaseId}, undoing ${v4.releaseId}, by .* at .*: v4 breaks checkout\\n`));
      const history = (await cli(['history', STAGING, '--config', s.config])).stdout;
      assert.match(history, new RegExp(`rollback of ${v4.releaseId.slice(0, 8)} by `));
      const status = JSON.parse((await cli(['status', STAGING, '--config', s.config, '--json'])).stdout).targets[0];
      assert.deepEqual(status.waiting.map((w: { releaseId: string; why: string }) => [w.releaseId, w.why.startsWith('target locked by ')]), [[waiting, true]]);

      assert.equal((await cli(['unlock', STAGING, '--config', s.config])).code, 0);
      const after = await s.fleet.take(s.store, waiting);
      assert.equal(after.status === 'ended' && after.outcome.status, 'succeeded');
      assert.equal((await s.store.get(waiting))!.held, undefined);
    });

    it('a rollback request the worker cannot meet (written straight into the control) is refused there with its reason, and releases nothing', async () => {
      const notSucceeded = await s.fleet.claim(s.store, 'staging', 'v5');
      const releaseId = '00000000-0000-4000-8000-000000000001';
      await s.store.updateControl(STAGING, (current) => ({ ...current, rollback: { releaseId, to: notSucceeded, by: 'mallory', at: new Date().toISOString() } }));
      assert.deepEqual(await s.fleet.takeRollbacks(s.store), []);
      assert.equal(await s.store.get(releaseId), undefined, 'no release was made');
      const control = await s.store.control(STAGING);
      assert.equal(control.rollback, undefined);
      assert.equal(control.refusedRollback?.releaseId, releaseId);
      assert.match(control.refusedRollback!.reason, /has not ended: only a release that succeeded can be gone back to/);
      assert.equal((await s.fleet.take(s.store, notSucceeded)).status, 'ended', 'the claimed release ends (superseded or run)');
    });

    it('a second rollback while one waits for the worker is refused, naming the first; nothing written', async () => {
      const first = await cli(['rollback', STAGING, '--no-lock', '--no-wait', '--json', '--config', s.config]);
      assert.equal(first.code, 0, first.stderr);
      const { releaseId } = JSON.parse(first.stdout) as { releaseId: string };
      const before = await s.store.control(STAGING);
      const second = await cli(['rollback', STAGING, '--no-lock', '--no-wait', '--config', s.config]);
      assert.equal(second.code, 1);
      assert.match(second.stderr, new RegExp(`a rollback of ${STAGING} asked by .* waits for the worker's next sweep \\(it becomes release ${releaseId}\\)`));
      assert.equal((await s.store.control(STAGING)).revision, before.revision, 'nothing written');
      // The worker takes the first; it ends as any release.
      assert.deepEqual((await s.fleet.takeRollbacks(s.store)).map((r) => r.releaseId), [releaseId]);
      assert.equal((await s.fleet.take(s.store, releaseId)).status, 'ended');
    });

    it('a rollback command waiting for its release exits 3 with the reason when the worker refuses its request', async () => {
      const rolling = started(['rollback', STAGING, '--no-lock', '--config', s.config]);
      let asked: string | undefined;
      for (let i = 0; i < 1200 && !asked; i++) {
        asked = (await s.store.control(STAGING)).rollback?.releaseId;
        if (!asked) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(asked);
      // As the worker records a refusal (rollback-requests.ts).
      await s.store.updateControl(STAGING, ({ rollback: _taken, ...current }) => ({ ...current, refusedRollback: { releaseId: asked!, reason: 'the history changed meanwhile', at: new Date().toISOString() } }));
      const result = await rolling;
      assert.equal(result.code, 3, result.stderr);
      assert.match(result.stdout, new RegExp(`release ${asked} refused by the worker, nothing changed: the history changed meanwhile`));
      assert.equal(await s.store.get(asked), undefined);
    });

    it('rollback --no-lock --no-wait with a release in progress records a stop with rollback for it and no lock', async () => {
      const running = await s.fleet.claim(s.store, 'staging', 'v7');
      const result = await cli(['rollback', STAGING, '--no-lock', '--no-wait', '--by', 'frank', '--config', s.config, '--json']);
      assert.equal(result.code, 0, result.stderr);
      const out = JSON.parse(result.stdout);
      assert.match(out.releaseId, UUID);
      assert.deepEqual([out.lock, out.stop.releaseId, out.stop.rollback, out.stop.by, out.stop.note], [null, running, true, s.who, 'frank']);
      const control = await s.store.control(STAGING);
      assert.equal(control.lock, undefined);
      assert.deepEqual(control.stops?.find((stop) => stop.releaseId === running)?.rollback, true);
      // The stopped release ends, then the rollback (the newest) runs, once the worker has taken the request.
      assert.equal((await s.fleet.take(s.store, running)).status, 'ended');
      assert.deepEqual((await s.fleet.takeRollbacks(s.store)).map((r) => r.releaseId), [out.releaseId]);
      const taken = await s.fleet.take(s.store, out.releaseId);
      assert.equal(taken.status === 'ended' && taken.outcome.status, 'succeeded');
    });
  });
}

verbsAgainst('file', async () => {
  const object = simulatedConfigObject('http://127.0.0.1:1', { store: 'file' });
  const store = new FileReleaseStore(object.stateDirectory);
  const fleet = simulatedFleet(parseWorkerConfig(stringify(object)));
  for (const [deployment, tag, by] of [['staging', 'v2', 'ci-bot'], ['personal-alice', 'v2', 'alice']] as const) await fleet.release(store, deployment, tag, by);
  return { store, config: writeConfig(object), fleet, who: osIdentity(osFacts({})), underSudo: osIdentity(osFacts({ SUDO_USER: 'mallory' })), credentials: { AWS_ACCESS_KEY_ID: 'harbormaster-local', AWS_SECRET_ACCESS_KEY: 'harbormaster-local' } };
});

let dynamo: DynamoDBClient | undefined;
after(() => dynamo?.destroy());
verbsAgainst('DynamoDB (moto)', async () => {
  dynamo = new DynamoDBClient(clientConfig(awsEndpoint(moto.moto.endpoint)));
  const table = `harbormaster-steer-${process.pid}`;
  await createReleaseTable(dynamo, table);
  const object = simulatedConfigObject(moto.moto.endpoint, { store: 'dynamodb', table });
  const store = new DynamoReleaseStore({ client: dynamo, table });
  const fleet = simulatedFleet(parseWorkerConfig(stringify(object)));
  for (const [deployment, tag, by] of [['staging', 'v2', 'ci-bot'], ['personal-alice', 'v2', 'alice']] as const) await fleet.release(store, deployment, tag, by);
  const alice = await assumeRole(moto.moto.endpoint, 'arn:aws:iam::123456789012:role/HarbormasterOps', 'alice');
  return { store, config: writeConfig(object), fleet, who: 'arn:aws:sts::123456789012:assumed-role/HarbormasterOps/alice', underSudo: 'arn:aws:sts::123456789012:assumed-role/HarbormasterOps/alice', credentials: credentialsEnv(alice) };
});
