// How fast the CLI answers, as a process (Node's start-up included): `--help`, `enqueue --dry-run`,
// `status` and `show` against a file state directory holding releases the real engine made on
// simulated hosts (test/support/simulated-release.ts). Each command RUNS times (default 7) with the
// bundle (scripts/bundle.ts, built here into a temporary directory) and, when dist/ exists
// (`npm run build`), with the package's bin/harbormaster.js; `node -e 0` is the floor. Prints the
// median and the fastest run in seconds. No AWS and no fleet.
// COMPARE=PATH adds a column for another build's bin/harbormaster.js (an earlier version, say).
//   node --import tsx scripts/benchmark-cli.ts        RUNS=15 node --import tsx scripts/benchmark-cli.ts
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parseWorkerConfig } from '../src/config/worker-config.js';
import { FileReleaseStore } from '../src/state/file-release-store.js';
import { simulatedConfigObject, simulatedFleet } from '../test/support/simulated-release.js';

const RUNS = Number(process.env.RUNS ?? 7);
const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'harbormaster-benchmark-cli-'));

const built = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts/bundle.ts'), work], { cwd: root, encoding: 'utf8' });
if (built.status !== 0) throw new Error(`the bundle did not build: ${built.stderr}`);
const bundle = join(work, 'harbormaster.cjs');

// A file state directory with four releases (staging: one succeeded, one rolled back; alice: one; integration: refused).
const object = simulatedConfigObject('http://127.0.0.1:1', { store: 'file' });
const store = new FileReleaseStore(object.stateDirectory);
const fleet = simulatedFleet(parseWorkerConfig(stringify(object)));
const good = await fleet.release(store, 'staging', 'v2');
await fleet.release(store, 'staging', 'bad');
await fleet.release(store, 'personal-alice', 'v2', 'alice');
await fleet.release(store, 'integration', 'v2');
const config = join(work, 'worker.yml');
writeFileSync(config, stringify(object));

const env = { PATH: process.env.PATH, HOME: process.env.HOME, USER: 'benchmark', NO_COLOR: '1' };
const COMMANDS: Record<string, string[]> = {
  '--help': ['--help'],
  'enqueue --dry-run': ['enqueue', '--dry-run', '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', 'registry.internal:5000/data/ingest:v2'],
  status: ['status', '--config', config],
  show: ['show', good.releaseId, '--config', config],
};

function seconds(args: string[]): number {
  const started = process.hrtime.bigint();
  const run = spawnSync(process.execPath, args, { env, encoding: 'utf8' });
  const spent = Number(process.hrtime.bigint() - started) / 1e9;
  if (run.status !== 0) throw new Error(`${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  return spent;
}

function figures(args: string[]): string {
  const times = Array.from({ length: RUNS }, () => seconds(args)).sort((a, b) => a - b);
  return `${times[Math.floor(times.length / 2)]!.toFixed(2)} (${times[0]!.toFixed(2)})`;
}

const packaged = join(root, 'bin/harbormaster.js');
const withPackage = existsSync(join(root, 'dist/cli/main.js'));
process.stdout.write(`harbormaster CLI as a process: median (fastest) of ${RUNS} runs, seconds; ${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(1)}, Node ${process.version}\n`);
process.stdout.write(`  ${'node -e 0 (the floor)'.padEnd(22)} ${figures(['-e', '0'])}\n`);
const compare = process.env.COMPARE;
process.stdout.write(`  ${'command'.padEnd(22)} ${'bundle'.padEnd(12)} ${(withPackage ? 'package (dist/)' : '(no dist/)').padEnd(16)} ${compare ? `COMPARE (${compare})` : ''}\n`);
for (const [name, args] of Object.entries(COMMANDS)) {
  const bundled = figures([bundle, ...args]);
  const ours = withPackage ? figures([packaged, ...args]) : '';
  process.stdout.write(`  ${name.padEnd(22)} ${bundled.padEnd(12)} ${ours.padEnd(16)} ${compare ? figures([compare, ...args]) : ''}\n`);
}
