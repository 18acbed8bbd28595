import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import type { Fleet } from '../../local-fleet/fleet.js';
import { fleetWorkerConfigObject } from '../../local-fleet/worker-config.js';
import { runCli } from '../support/cli.js';
import { fleetWorkerEnvironment } from '../support/fleet-release.js';
import { fleetForSuite } from '../support/fleet-suite.js';
import { enqueueEnvironment, eventually, TEST_KEY, TEST_KEY_ENV } from '../support/worker-fixtures.js';
import { WorkerProcess, type LogLine } from '../support/worker-process.js';

// Signals of a real release on the local fleet (11 hosts: h1..h10 staging, h11 alice's): the worker
// chats as a Slack app against the fleet's receiver and serves /metrics. A 10-host release is one
// Slack message edited in place with a thread of host lines; a worker killed mid-release and started
// again edits the same message; the restores-pending gauge is 1 while the killed worker's release is
// still to be carried to its end, and 0 once it is.

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

const sample = (text: string, name: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
};

describe('chat, metrics and the worker on the local fleet', () => {
  const suite = fleetForSuite({ hosts: 11 });
  let fleet: Fleet;
  before(() => ({ fleet } = suite));

  function writeConfig(metricsPort: number): string {
    const directory = mkdtempSync(join(tmpdir(), 'harbormaster-signals-'));
    const object: Record<string, any> = fleetWorkerConfigObject(fleet, {
      signingKey: { id: TEST_KEY.id, env: TEST_KEY_ENV },
      stateDirectory: join(directory, 'state'),
      logLevel: 'debug',
      chat: 'slack-app',
      metricsPort,
    });
    object.queue = { ...object.queue, visibilityTimeoutSeconds: 8, heartbeatSeconds: 2 };
    const path = join(directory, 'worker.yml');
    writeFileSync(path, stringify(object));
    return path;
  }
  /** The same state directory, another metrics port: the worker started again. */
  function withPort(config: string, port: number): string {
    const path = `${config}.${port}.yml`;
    const object = parse(readFileSync(config, 'utf8')) as Record<string, any>;
    writeFileSync(path, stringify({ ...object, metrics: { ...object.metrics, port } }));
    return path;
  }
  async function enqueue(): Promise<string> {
    const result = await runCli(
      ['enqueue', '--queue-url', fleet.aws.queueUrl, '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', `${fleet.registry.address}/data/ingest:v2`, '--requested-by', 'local-ci'],
      enqueueEnvironment(fleet.aws.endpoint),
    );
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  }
  const ended = (releaseId: string) => (line: LogLine) => line.releaseId === releaseId && /^release (succeeded|rolled-back|failed|refused)$/.test(String(line.msg));
  const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const topLevel = () => fleet.chat.slackMessages().filter((m) => m.threadTs === undefined);

  it('a 10-host release is one Slack message updated in place, with a thread of host lines, and its figures in /metrics', async () => {
    await fleet.resetHosts();
    await fleet.resetAws();
    fleet.chat.clear();
    const port = await freePort();
    const worker = new WorkerProcess(writeConfig(port), fleetWorkerEnvironment(fleet));
    try {
      const releaseId = await enqueue();
      const outcome = await worker.waitFor('the release to end', ended(releaseId), 300_000);
      assert.equal(outcome.msg, 'release succeeded');
      await eventually('Slack to hear the end', () => /^:white_check_mark: Released ingest:v2/.test(topLevel()[0]?.text ?? ''), 15_000);
      const [message, ...others] = topLevel();
      assert.equal(others.length, 0, 'one message for the release');
      assert.ok(message!.edits.length >= 10, `edited in place (${message!.edits.length} edits)`);
      const thread = fleet.chat.slackMessages().filter((m) => m.threadTs === message!.ts).map((m) => m.text);
      assert.equal(thread.filter((t) => /^data\/ingest\/staging: host \d+\/10 h\d+ done/.test(t)).length, 10, thread.join('\n'));
      const metrics = await scrape(port);
      assert.equal(sample(metrics, 'harbormaster_releases_total{outcome="succeeded"}'), 1);
      assert.equal(sample(metrics, 'harbormaster_host_out_of_service_seconds_count'), 10);
      // Read from the release state by the worker (when the release ended, and every 30 s), not by the scrape.
      await eventually('restores pending 0 in /metrics', async () => sample(await scrape(port), 'harbormaster_restores_pending') === 0, 40_000);
    } finally {
      await worker.kill('SIGTERM');
    }
  });

  it('a worker killed mid-release and started again edits the same message; restores pending is 1 until the release is carried to its end', async () => {
    await fleet.resetHosts();
    await fleet.resetAws();
    fleet.chat.clear();
    const config = writeConfig(await freePort());
    const env = fleetWorkerEnvironment(fleet);
    const first = new WorkerProcess(config, env, { holdAt: 'h2:stop-old:end' });
    let second: WorkerProcess | undefined;
    let third: WorkerProcess | undefined;
    try {
      const releaseId = await enqueue();
      await first.waitFor('the hold', (l) => l.msg === 'test hold reached', 120_000);
      await eventually('the release message to be posted', () => topLevel().length === 1, 15_000);
      const ts = topLevel()[0]!.ts;
      await first.kill('SIGKILL');

      // Started again, and held again further on: Auto Scaling is still suspended by the release.
      const secondPort = await freePort();
      second = new WorkerProcess(withPort(config, secondPort), env, { holdAt: 'h3:deregister:begin' });
      await second.waitFor('the second hold', (l) => l.msg === 'test hold reached', 120_000);
      // The worker read the state at its start, with the release unfinished and Auto Scaling suspended by it.
      assert.equal(sample(await scrape(secondPort), 'harbormaster_restores_pending'), 1, 'the fleet is not whole');
      await second.kill('SIGKILL');

      const thirdPort = await freePort();
      third = new WorkerProcess(withPort(config, thirdPort), env);
      const outcome = await third.waitFor('the release to end', ended(releaseId), 300_000);
      assert.equal(outcome.msg, 'release succeeded');
      await eventually('restores pending 0 in /metrics: whole again', async () => sample(await scrape(thirdPort), 'harbormaster_restores_pending') === 0, 40_000);
      await eventually('Slack to hear the end', () => /Released ingest:v2/.test(topLevel()[0]?.text ?? ''), 15_000);
      assert.deepEqual(topLevel().map((m) => m.ts), [ts], 'the same message, edited by the workers that took the release up');
      const thread = fleet.chat.slackMessages().filter((m) => m.threadTs === ts).map((m) => m.text);
      assert.ok(thread.some((t) => /^Found the release of ingest:v2 to data\/ingest\/staging unfinished/.test(t)), thread.join('\n'));
    } finally {
      await first.kill('SIGKILL');
      await second?.kill('SIGKILL');
      await third?.kill('SIGTERM');
    }
  });
});
