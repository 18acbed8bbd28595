// A real release on a local fleet, start to end: brings the fleet up, starts `harbormaster worker`
// (the built executable) against it, enqueues v2 with `harbormaster enqueue` as CI would, shows the
// rollout as it happens, checks every host, prints `harbormaster status` and `harbormaster hosts` for
// the target, and tears the fleet down.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { fleetDown, fleetUp } from '../local-fleet/fleet.js';
import { fleetWorkerConfigObject, fleetWorkerEnvironment } from '../local-fleet/worker-config.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'bin/harbormaster.js');
const stagingHosts = Number(process.env.HOSTS ?? 3);
const signingKey = `local-release-key-${Date.now()}-0123456789abcdef`;
const keepUp = process.argv.includes('--keep');

const say = (line: string) => process.stdout.write(`\x1b[1m==> ${line}\x1b[0m\n`);

function pretty(line: string): string {
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    const where = [entry.host, entry.step].filter(Boolean).join(' ');
    const extra = entry.durationMs !== undefined ? ` (${entry.durationMs} ms)` : '';
    const error = entry.err ? `: ${(entry.err as { message?: string }).message}` : entry.reason ? `: ${String(entry.reason)}` : '';
    return `${String(entry.time).slice(11, 23)} ${String(entry.level).padEnd(5)} ${where ? `[${where}] ` : ''}${entry.msg}${extra}${error}`;
  } catch {
    return line;
  }
}

async function versions(hosts: Array<{ name: string; address: string; deployment: string }>) {
  const rows = await Promise.all(
    hosts.map(async (h) => {
      const version = await fetch(`http://${h.address}:8080/version`, { signal: AbortSignal.timeout(2000) })
        .then((r) => r.text())
        .catch((e: Error) => `unreachable: ${e.message}`);
      return `${h.name} ${h.address} ${h.deployment.padEnd(15)} ${version.trim()}`;
    }),
  );
  rows.forEach((row) => process.stdout.write(`    ${row}\n`));
}

let failed = false;
say(`bringing up a local fleet: ${stagingHosts} staging hosts and alice's personal host`);
const fleet = await fleetUp({ hosts: stagingHosts + 1, log: (line) => process.stdout.write(`    ${line}\n`) });
try {
  say(`fleet up in ${(fleet.bringUpMs / 1000).toFixed(1)} s; every host runs v1:`);
  await versions(fleet.hosts);

  const directory = mkdtempSync(join(tmpdir(), 'harbormaster-local-'));
  const configPath = join(directory, 'worker.yml');
  writeFileSync(
    configPath,
    stringify(
      fleetWorkerConfigObject(fleet, {
        signingKey: { id: 'local-ci', env: 'HARBORMASTER_KEY_LOCAL' },
        stateDirectory: join(directory, 'state'),
        rollout: { smoke: { port: 8080, path: '/version', expectBodyContains: 'v2' } },
        chat: 'slack-app',
      }),
    ),
  );
  const env = fleetWorkerEnvironment(fleet, { env: 'HARBORMASTER_KEY_LOCAL', secret: signingKey });

  say(`starting the worker: harbormaster worker --config ${configPath}`);
  const worker = spawn(process.execPath, [cli, 'worker', '--config', configPath], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const finished = new Promise<Record<string, unknown>>((resolve, reject) => {
    worker.once('exit', (code) => reject(new Error(`the worker exited early (${code})`)));
    createInterface({ input: worker.stdout }).on('line', (line) => {
      process.stdout.write(`    ${pretty(line)}\n`);
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (typeof entry.msg === 'string' && /^release (succeeded|rolled-back|failed|refused|superseded)$/.test(entry.msg)) resolve(entry);
      } catch {
        /* not JSON */
      }
    });
  });

  const image = `${fleet.registry.address}/data/ingest:v2`;
  say(`enqueueing ${image} as CI would: harbormaster enqueue --stack data --release ingest --deployment staging --image ${image}`);
  const enqueue = spawn(process.execPath, [cli, 'enqueue', '--queue-url', fleet.aws.queueUrl, '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', image, '--requested-by', 'local-ci'], {
    env: { ...env, HARBORMASTER_AWS_ENDPOINT: fleet.aws.endpoint, AWS_REGION: fleet.aws.region, HARBORMASTER_SIGNING_KEY_ID: 'local-ci', HARBORMASTER_SIGNING_KEY: signingKey },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let releaseId = '';
  enqueue.stdout.on('data', (chunk: Buffer) => (releaseId += chunk.toString()));
  const enqueued = await new Promise<number | null>((resolve) => enqueue.once('exit', resolve));
  if (enqueued !== 0) throw new Error('enqueue failed');
  say(`release id ${releaseId.trim()}; the worker takes it:`);

  const result = await finished;
  worker.kill('SIGTERM');
  await new Promise((resolve) => worker.once('exit', resolve));
  failed = result.msg !== 'release succeeded';
  say(`${String(result.msg)} in ${(Number(result.durationMs) / 1000).toFixed(1)} s; every host now answers:`);
  await versions(fleet.hosts);
  for (const args of [['status'], ['hosts', 'data/ingest/staging']]) {
    say(`harbormaster ${args.join(' ')} --config ${configPath}`);
    const shown = spawn(process.execPath, [cli, ...args, '--config', configPath], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    const code = await new Promise<number | null>((resolve) => shown.once('exit', resolve));
    if (code !== 0) failed = true;
  }
  say('Slack received (the message of the release as it ended, how often it was edited, and its thread):');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const slack = fleet.chat.slackMessages();
  for (const message of slack.filter((m) => m.threadTs === undefined)) {
    process.stdout.write(`    ${message.text} (edited ${message.edits.length} times)\n`);
    for (const reply of slack.filter((m) => m.threadTs === message.ts)) process.stdout.write(`      ↳ ${reply.text}\n`);
  }
  for (const message of fleet.chat.messages()) process.stdout.write(`    ${message.text}\n`);
} catch (error) {
  failed = true;
  say(`local release failed: ${(error as Error).message}`);
} finally {
  if (keepUp) {
    say('leaving the fleet up (--keep); `node --import tsx local-fleet/cli.ts down` takes it down');
  } else {
    say('tearing the fleet down');
    fleet.chat.stop();
    await fleetDown();
  }
}
process.exitCode = failed ? 1 : 0;
