#!/usr/bin/env node
// `docker run` as the CLI image (the Dockerfile's `cli` stage) would run, for tests on a machine
// without a Docker engine: the image's entry point is the bundled CLI (HARBORMASTER_TEST_BUNDLE), and
// it sees only what the command line gives a container: the `-e` variables, PATH and HOME of the
// image, and, with `--network host`, the host's AWS endpoint and credentials (standing in for the
// instance profile: HARBORMASTER_TEST_HOST_AWS, JSON). A mount must name the same path on both sides
// (what the snippets do), and every option it does not know is refused. What it was given is written
// as JSON to HARBORMASTER_TEST_DOCKER_LOG.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const fail = (line) => {
  process.stderr.write(`docker (test stand-in): ${line}\n`);
  process.exit(125);
};
const args = process.argv.slice(2);
if (args.shift() !== 'run') fail('only `docker run` is known here');
const seen = { rm: false, network: undefined, env: [], mounts: [] };
const env = { PATH: dirname(process.execPath), HOME: mkdtempSync(join(tmpdir(), 'container-home-')) };
while (args[0]?.startsWith('-')) {
  const option = args.shift();
  if (option === '--rm') seen.rm = true;
  else if (option === '--network') seen.network = args.shift();
  else if (option === '-e') {
    const [name, ...value] = args.shift().split('=');
    seen.env.push(name);
    if (value.length > 0) env[name] = value.join('=');
    else if (process.env[name] !== undefined) env[name] = process.env[name];
  } else if (option === '-v') {
    const [source, target, mode] = args.shift().split(':');
    if (source !== target) fail(`-v ${source}:${target}: the stand-in mounts a path only at the same path`);
    seen.mounts.push({ path: source, readOnly: mode === 'ro' });
  } else fail(`unknown option ${option}`);
}
const image = args.shift();
if (image !== process.env.HARBORMASTER_TEST_IMAGE) fail(`no image ${image} here (only ${process.env.HARBORMASTER_TEST_IMAGE})`);
if (seen.network === 'host') Object.assign(env, JSON.parse(process.env.HARBORMASTER_TEST_HOST_AWS ?? '{}'));
if (process.env.HARBORMASTER_TEST_DOCKER_LOG) writeFileSync(process.env.HARBORMASTER_TEST_DOCKER_LOG, JSON.stringify({ ...seen, image, args }));
const run = spawnSync(process.execPath, [process.env.HARBORMASTER_TEST_BUNDLE, ...args], { env, stdio: 'inherit', cwd: env.HOME });
process.exit(run.status ?? 1);
