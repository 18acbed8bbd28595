// docs/install.md followed on the local fleet (standing in for AWS), as root: every fenced block
// marked `install-check` runs as written, in order, in one bash; blocks marked
// `install-check-site=NAME` are replaced by the fleet's values (SITE below; the doc's last section
// says what each stands for). Then: the worker runs as `harbormaster`, the release succeeded, every
// steering verb run as root as docs/operations.md says takes effect (install-check-steer.ts), every file
// of the state directory is the worker's, a SIGTERM stops the worker with exit 0. Whatever happens,
// what the check made is removed again.
// Run: node --import tsx scripts/install-check.ts   (uses the local fleet: not beside fleet tests)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { fleetDown, fleetUp } from '../local-fleet/fleet.js';
import { fleetStatus } from '../local-fleet/fleet-status.js';
import { fleetWorkerConfigObject, fleetWorkerEnvironment, FLEET_SECRET_ENV } from '../local-fleet/worker-config.js';
import { steerAsRunbookSays } from './install-check-steer.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const MARKER = '/var/tmp/harbormaster-install-check.owned';
const MADE = ['/opt/harbormaster', '/etc/harbormaster', '/var/lib/harbormaster', '/etc/systemd/system/harbormaster.service', '/usr/local/bin/harbormaster'];
const say = (line: string) => process.stdout.write(`\x1b[1m==> ${line}\x1b[0m\n`);

/** The fenced blocks of the doc: `install-check` ones as written, `install-check-site=NAME` ones by name. */
function installBlocks(markdown: string): Array<{ site?: string; body: string }> {
  const blocks: Array<{ site?: string; body: string }> = [];
  for (const match of markdown.matchAll(/^```sh (install-check(?:-site=([a-z-]+))?)\n([\s\S]*?)^```$/gm)) {
    blocks.push(match[2] ? { site: match[2], body: match[3]! } : { body: match[3]! });
  }
  return blocks;
}

function userExists(name: string): boolean {
  return spawnSync('id', ['-u', name], { stdio: 'ignore' }).status === 0;
}

function cleanUp(work: string | undefined, workerPid: number | undefined): void {
  if (workerPid !== undefined) {
    try {
      process.kill(workerPid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const path of MADE) {
    if (path === '/usr/local/bin/harbormaster' && existsSync(path) && !lstatSync(path).isSymbolicLink()) continue;
    rmSync(path, { recursive: true, force: true });
  }
  if (userExists('harbormaster')) execFileSync('userdel', ['harbormaster'], { stdio: 'inherit' });
  if (work) rmSync(work, { recursive: true, force: true });
  for (const name of execFileSync('ls', [root], { encoding: 'utf8' }).split('\n')) if (/^harbormaster-.*\.tar\.gz$/.test(name)) rmSync(join(root, name));
  rmSync(MARKER, { force: true });
}

if (process.getuid?.() !== 0) throw new Error('install-check: run as root (it creates a system user and installs under /opt and /etc)');
const present = [...MADE.filter((path) => existsSync(path)), ...(userExists('harbormaster') ? ['user harbormaster'] : [])];
if (present.length > 0) {
  if (!existsSync(MARKER)) throw new Error(`install-check: ${present.join(', ')} already exist and were not made by this check: remove them, or run it elsewhere`);
  say(`removing what an earlier check left: ${present.join(', ')}`);
  cleanUp(undefined, undefined);
}

const blocks = installBlocks(readFileSync(join(root, 'docs/install.md'), 'utf8'));
const fleetWasUp = (await fleetStatus()).up;
const fleet = await fleetUp({ hosts: Number(process.env.HOSTS ?? 3), log: (line) => process.stdout.write(`    ${line}\n`) });
const work = mkdtempSync(join(tmpdir(), 'harbormaster-install-check-'));
let workerPid: number | undefined;
let failed = true;
try {
  writeFileSync(MARKER, `${work}\n`);
  const signingKey = { id: 'install-check', env: 'HARBORMASTER_KEY_INSTALL_CHECK' };
  const secret = `install-check-${Date.now()}-0123456789abcdef0123456789`;
  const fleetEnv = fleetWorkerEnvironment(fleet, { env: signingKey.env, secret });
  const config = fleetWorkerConfigObject(fleet, { signingKey, stateDirectory: '/var/lib/harbormaster' });
  // The worker runs as its own user: it reads the key and known hosts where the guide installs them, not the fleet's root-only files.
  config.ssh = { ...config.ssh, privateKey: { file: '/etc/harbormaster/ssh/id_ed25519' }, knownHostsFile: '/etc/harbormaster/ssh/known_hosts' };
  const secrets = [signingKey.env, FLEET_SECRET_ENV.chatWebhook, FLEET_SECRET_ENV.slackToken, FLEET_SECRET_ENV.registryPassword, 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']
    .map((name) => `${name}=${fleetEnv[name]}`)
    .concat(['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true'])
    .join('\n');
  writeFileSync(join(work, 'fleet-worker.yml'), stringify(config), { mode: 0o600 });
  writeFileSync(join(work, 'fleet-secrets.env'), `${secrets}\n`, { mode: 0o600 });
  writeFileSync(join(work, 'ci-key'), secret, { mode: 0o600 });
  const q = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;
  const SITE: Record<string, string> = {
    copy: `mv ${q(root)}/harbormaster-*.tar.gz ${q(work)}/ && cd ${q(work)}`,
    package: `PACKAGE="$(ls harbormaster-*.tar.gz)"`,
    'ssh-key': `install -m 0600 ${q(fleet.ssh.privateKeyPath)} id_ed25519 && ssh-keygen -y -f id_ed25519 > id_ed25519.pub`,
    'known-hosts': `install -o root -g harbormaster -m 0644 ${q(fleet.ssh.knownHostsPath)} /etc/harbormaster/ssh/known_hosts`,
    config: `cp fleet-worker.yml worker.yml`,
    secrets: `umask 077\ncp fleet-secrets.env secrets.env`,
    // No systemd in this container: the unit's ExecStart as its User=, with its EnvironmentFile=.
    start: [
      `unit=/etc/systemd/system/harbormaster.service`,
      `exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"; unit_user="$(sed -n 's/^User=//p' "$unit")"; env_file="$(sed -n 's/^EnvironmentFile=//p' "$unit")"`,
      `(set -a; . "$env_file"; set +a; cd /; exec setpriv --reuid "$unit_user" --regid "$unit_user" --init-groups $exec_start) > ${q(work)}/worker.log 2>&1 &`,
      `echo $! > ${q(work)}/worker.pid`,
    ].join('\n'),
    ci: [
      `export HARBORMASTER_QUEUE_URL=${q(fleet.aws.queueUrl)} AWS_REGION=${q(fleet.aws.region)} HARBORMASTER_AWS_ENDPOINT=${q(fleet.aws.endpoint)}`,
      `export AWS_ACCESS_KEY_ID=${q(fleet.aws.credentials.accessKeyId)} AWS_SECRET_ACCESS_KEY=${q(fleet.aws.credentials.secretAccessKey)}`,
      `export HARBORMASTER_SIGNING_KEY_ID=${q(signingKey.id)} HARBORMASTER_SIGNING_KEY_FILE=${q(join(work, 'ci-key'))}`,
      `IMAGE=${q(`${fleet.registry.address}/data/ingest:v2`)}`,
    ].join('\n'),
  };
  const named = blocks.flatMap((block) => (block.site ? [block.site] : []));
  const unknown = named.filter((name) => !(name in SITE));
  const unused = Object.keys(SITE).filter((name) => !named.includes(name));
  if (unknown.length + unused.length > 0) throw new Error(`install-check: the doc's site blocks and the check's differ: unknown ${unknown.join(', ') || '-'}; not in the doc ${unused.join(', ') || '-'}`);
  const script = [`cd ${q(root)}`, ...blocks.map((block) => (block.site ? `# site: ${block.site}\n${SITE[block.site]}` : block.body)), `echo "$RELEASE_ID" > ${q(join(work, 'release-id'))}`].join('\n');
  writeFileSync(join(work, 'install.sh'), script);
  say(`running docs/install.md's blocks (${blocks.length}) as ${join(work, 'install.sh')}`);
  const run = spawnSync('bash', ['-euo', 'pipefail', join(work, 'install.sh')], { stdio: 'inherit', env: { ...process.env, EDITOR: 'true' } });
  if (existsSync(join(work, 'worker.pid'))) workerPid = Number(readFileSync(join(work, 'worker.pid'), 'utf8'));
  if (run.status !== 0) throw new Error(`the install steps failed (exit ${run.status}); the worker's log: ${join(work, 'worker.log')}`);

  // The worker: still running, as harbormaster (setpriv execs in place, so the PID is the worker's).
  const uid = execFileSync('id', ['-u', 'harbormaster'], { encoding: 'utf8' }).trim();
  const status = readFileSync(`/proc/${workerPid}/status`, 'utf8');
  const realUid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
  if (realUid !== uid) throw new Error(`the worker runs as uid ${realUid}, not harbormaster's ${uid}`);
  say(`the worker (pid ${workerPid}) runs as harbormaster (uid ${uid})`);

  const releaseId = readFileSync(join(work, 'release-id'), 'utf8').trim();
  const shown = JSON.parse(execFileSync('/usr/local/bin/harbormaster', ['show', releaseId, '--json', '--config', '/etc/harbormaster/worker.yml'], { encoding: 'utf8' })) as { record: { status: string } };
  if (shown.record.status !== 'succeeded') throw new Error(`release ${releaseId} ended ${shown.record.status}, not succeeded`);
  say(`release ${releaseId} succeeded`);
  const ciEnv = {
    ...process.env,
    HARBORMASTER_QUEUE_URL: fleet.aws.queueUrl,
    AWS_REGION: fleet.aws.region,
    HARBORMASTER_AWS_ENDPOINT: fleet.aws.endpoint,
    AWS_ACCESS_KEY_ID: fleet.aws.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: fleet.aws.credentials.secretAccessKey,
    HARBORMASTER_SIGNING_KEY_ID: signingKey.id,
    HARBORMASTER_SIGNING_KEY_FILE: join(work, 'ci-key'),
  };
  await steerAsRunbookSays({ ciEnv, image: `${fleet.registry.address}/data/ingest:v3`, say });
  const owners = execFileSync('find', ['/var/lib/harbormaster', '!', '-user', 'harbormaster'], { encoding: 'utf8' }).trim();
  if (owners) throw new Error(`files in the state directory not owned by harbormaster: ${owners}`);

  // Not this process's child (bash started it), so its exit code cannot be read here: it must go, having logged the signal.
  process.kill(workerPid!, 'SIGTERM');
  for (let waited = 0; existsSync(`/proc/${workerPid}`); waited += 200) {
    if (waited > 60_000) throw new Error('the worker did not stop within 60 s of SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  workerPid = undefined;
  const log = readFileSync(join(work, 'worker.log'), 'utf8');
  if (!/"msg":"signal received/.test(log)) throw new Error(`the worker did not log the signal; its log: ${join(work, 'worker.log')}`);
  say('the worker stopped on SIGTERM');
  failed = false;
} catch (error) {
  say(`install check failed: ${(error as Error).message}`);
  const log = join(work, 'worker.log');
  if (existsSync(log)) process.stdout.write(readFileSync(log, 'utf8').split('\n').slice(-30).join('\n'));
} finally {
  say('removing what the check made');
  cleanUp(work, workerPid);
  fleet.chat.stop();
  if (!fleetWasUp) await fleetDown();
}
process.exitCode = failed ? 1 : 0;
