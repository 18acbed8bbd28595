import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { stringify } from 'yaml';
import type { Fleet } from '../../local-fleet/fleet.js';
import { fleetWorkerConfigObject } from '../../local-fleet/worker-config.js';
import { createRollout } from '../../src/rollout/create-rollout.js';
import { silentChat } from '../../src/chat/chat.js';
import { parseWorkerConfig, type WorkerConfig } from '../../src/config/worker-config.js';
import { isFinal } from '../../src/state/release-record.js';
import { openReleaseState } from '../../src/cli/ops/release-state.js';
import { releaseSummary } from '../../src/state/target-summary.js';
import { runCli } from '../support/cli.js';
import { fleetWorkerEnvironment } from '../support/fleet-release.js';
import { fleetForSuite } from '../support/fleet-suite.js';
import type { FleetObserver } from '../support/fleet-observer.js';
import { capturingLogger, enqueueEnvironment, eventually, TEST_KEY, TEST_KEY_ENV, withWorker } from '../support/worker-fixtures.js';

// The ops commands on the local fleet, after a release that succeeds, one that rolls back (an image
// that never gets healthy), one refused at preflight (an image that cannot be pulled) and one to
// alice's personal deployment: status, history and show checked against the records, hosts against
// the engines and load balancers, each as a table and as --json, with the file store and with the
// fleet's DynamoDB table. Four hosts: h1..h3 staging, h4 personal-alice.

for (const shared of [false, true]) {
  describe(`ops commands on the local fleet (${shared ? 'DynamoDB' : 'file'} store)`, () => {
    const suite = fleetForSuite({ hosts: 4 });
    let fleet: Fleet;
    let observer: FleetObserver;
    let config: WorkerConfig;
    let configPath: string;
    const ids: Record<'good' | 'bad' | 'refused' | 'alice', string> = { good: '', bad: '', refused: '', alice: '' };

    async function release(tag: string, branch?: string): Promise<string> {
      const enqueued = await runCli(
        ['enqueue', '--queue-url', fleet.aws.queueUrl, '--stack', 'data', '--release', 'ingest', ...(branch ? ['--branch', branch] : ['--deployment', 'staging']), '--image', `${fleet.registry.address}/data/ingest:${tag}`, '--requested-by', 'ci-bot'],
        { ...enqueueEnvironment(fleet.aws.endpoint), AWS_ACCESS_KEY_ID: fleet.aws.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: fleet.aws.credentials.secretAccessKey },
      );
      assert.equal(enqueued.code, 0, enqueued.stderr);
      const releaseId = enqueued.stdout.trim();
      const env = fleetWorkerEnvironment(fleet);
      const { logger } = capturingLogger();
      const wiring = createRollout(config, logger, silentChat, env, { pollMs: 100 });
      const state = await openReleaseState(config, () => undefined);
      try {
        await withWorker(config, { rollout: wiring.runner, logger, env }, () =>
          eventually(`release ${releaseId} to end`, async () => {
            const record = await state.history.get(releaseId);
            return record !== undefined && isFinal(record.status);
          }, 120_000),
        );
      } finally {
        wiring.close();
        state.close();
      }
      return releaseId;
    }

    const cli = (args: string[]) => runCli([...args, '--config', configPath], fleetWorkerEnvironment(fleet), 60_000);
    const json = async (args: string[]) => {
      const result = await cli([...args, '--json']);
      assert.equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout);
    };

    before(async () => {
      ({ fleet, observer } = suite);
      await fleet.resetHosts();
      const object = fleetWorkerConfigObject(fleet, { signingKey: { id: TEST_KEY.id, env: TEST_KEY_ENV }, stateDirectory: mkdtempSync(join(tmpdir(), 'harbormaster-state-')), sharedState: shared });
      config = parseWorkerConfig(stringify(object));
      configPath = join(mkdtempSync(join(tmpdir(), 'harbormaster-config-')), 'worker.yml');
      writeFileSync(configPath, stringify(object));
      ids.good = await release('v2');
      ids.bad = await release('broken');
      ids.refused = await release('v404');
      ids.alice = await release('v3', 'remote-run/alice/ops-view');
    });

    it('status: staging runs v2 (the release that succeeded), its last failure is the refusal, alice runs v3', async () => {
      const state = await openReleaseState(config, () => undefined);
      const summary = async (id: string) => releaseSummary((await state.history.get(id))!);
      try {
        const view = await json(['status']);
        const byTarget = Object.fromEntries(view.targets.map((t: { target: string }) => [t.target, t]));
        assert.deepEqual(byTarget['data/ingest/staging'].current, await summary(ids.good));
        assert.deepEqual(byTarget['data/ingest/staging'].lastFailure, await summary(ids.refused));
        assert.deepEqual(byTarget['data/ingest/personal-alice'].current, await summary(ids.alice));
        const table = await cli(['status']);
        assert.match(table.stdout, /\ndata\/ingest\/staging\s+ingest:v2\s+ci-bot\s/);
        assert.match(table.stdout, /\ndata\/ingest\/personal-alice\s+ingest:v3\s/);
      } finally {
        state.close();
      }
    });

    it('history and show: newest first, each outcome as recorded, the rolled-back release host by host', async () => {
      const history = await json(['history', 'data/ingest/staging', '--limit', '3']);
      assert.deepEqual(history.releases.map((r: { releaseId: string; status: string }) => [r.releaseId, r.status]), [[ids.refused, 'refused'], [ids.bad, 'rolled-back'], [ids.good, 'succeeded']]);
      const shown = await json(['show', ids.bad]);
      assert.equal(shown.record.status, 'rolled-back');
      const text = (await cli(['show', ids.bad])).stdout;
      for (const host of Object.values(shown.record.hosts) as Array<{ instanceId: string; progress: string }>) assert.match(text, new RegExp(`\\n  ${host.instanceId}\\s+\\S+\\s+${host.progress}\\s`));
    });

    it('hosts: every staging host in service in both load balancers, running the current release, v1 kept, as the engines say', async () => {
      const view = await json(['hosts', 'data/ingest/staging', '--ssh']);
      assert.equal(view.current.releaseId, ids.good);
      assert.deepEqual(view.hosts.map((h: { instanceId: string }) => h.instanceId).sort(), observer.stagingHosts.map((h) => h.instanceId).sort());
      for (const host of observer.stagingHosts) {
        const seen = view.hosts.find((h: { instanceId: string }) => h.instanceId === host.instanceId);
        const running = await new Docker({ socketPath: host.dockerSocket }).listContainers({ filters: { label: ['harbormaster.target=data/ingest/staging'] } });
        assert.equal(running.length, 1);
        assert.deepEqual([seen.live.id, seen.live.image, seen.live.releaseId, seen.matches], [running[0]!.Id, running[0]!.Image, ids.good, 'current']);
        assert.ok(seen.balancers.length === 2 && seen.balancers.every((b: { membership: string }) => b.membership === 'in-service'), JSON.stringify(seen.balancers));
        assert.ok(seen.kept.some((k: { image: string }) => k.image === fleet.images.v1), 'the v1 container is kept for rollback');
        assert.equal(seen.check.ok, true);
      }
      const table = await cli(['hosts', 'data/ingest/staging', '--ssh']);
      assert.equal(table.code, 0, table.stderr);
      assert.equal(table.stdout.trimEnd().split('\n').filter((l) => /\scurrent$/.test(l)).length, observer.stagingHosts.length);
      // Without --ssh: the load balancers and the HTTP check, no container read.
      const unread = await json(['hosts', 'data/ingest/staging']);
      assert.deepEqual(unread.hosts.map((h: { matches: string; live: unknown }) => [h.matches, h.live]), observer.stagingHosts.map(() => ['not-read', null]));
      assert.ok(unread.hosts.every((h: { balancers: Array<{ membership: string }> }) => h.balancers.length === 2 && h.balancers.every((b) => b.membership === 'in-service')));
    });

    it('hosts: a host whose container someone replaced by hand is marked drifted', async () => {
      const h1 = observer.stagingHosts[0]!;
      const docker = new Docker({ socketPath: h1.dockerSocket });
      const [live] = await docker.listContainers({ filters: { name: ['^/ingest$'] } });
      await docker.getContainer(live!.Id).stop();
      await docker.getContainer(live!.Id).rename({ name: 'ingest-by-hand' });
      // A hotfix image pulled by hand, as a person would.
      const auth = { username: fleet.registry.username, password: fleet.registry.password, serveraddress: fleet.registry.address };
      const stream = await docker.pull(fleet.images.v4, { authconfig: auth });
      await new Promise((resolve, reject) => docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(undefined))));
      const hotfix = await docker.createContainer({ name: 'ingest', Image: fleet.images.v4, HostConfig: { PortBindings: { '8080/tcp': [{ HostPort: '8080' }] } } });
      await hotfix.start();
      const view = await json(['hosts', 'data/ingest/staging', '--ssh']);
      assert.equal(view.hosts.find((h: { instanceId: string }) => h.instanceId === h1.instanceId).matches, 'drifted');
    });
  });
}
