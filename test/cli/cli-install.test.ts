import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildBundle, ROOT, serveFile } from '../support/cli-bundle.js';
import { collect } from '../support/cli.js';

// The three ways docs/ci.md's "Getting the CLI" installs `harbormaster` on a CI agent, each followed
// as written on a clean directory with nothing of this checkout on the PATH: the one-file bundle
// downloaded and checked, the npm package packed and installed with `npm install -g` into a prefix of
// its own, and the CLI image, whose Dockerfile stage is read (this machine has no Docker engine) and
// whose file is run as the stage places it. Each installed CLI answers `--help` and `enqueue --dry-run`.

const doc = readFileSync(join(ROOT, 'docs/ci.md'), 'utf8');
const snippet = (name: string) => {
  const match = new RegExp(`<!-- ci-snippet: ${name} -->\\n\`\`\`sh\\n([\\s\\S]*?)\\n\`\`\``).exec(doc);
  assert.ok(match, `docs/ci.md has no sh snippet ${name}`);
  return match[1]!;
};

/** A CI agent's shell: Node, curl and the usual tools on the PATH, nothing of this checkout, a home of its own. */
function agentEnvironment(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`, HOME: mkdtempSync(join(tmpdir(), 'agent-home-')), USER: 'ci', ...extra };
}

/** Runs a script in bash; not spawnSync, so this process's HTTP server answers meanwhile. */
async function bash(script: string, env: NodeJS.ProcessEnv, cwd: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const result = await collect(spawn('bash', ['-e', '-c', script], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] }), 240_000);
  return { status: result.code, stdout: result.stdout, stderr: result.stderr };
}

const DRY_RUN = 'harbormaster enqueue --dry-run --stack data --release ingest --deployment staging --image registry.internal:5000/data/ingest:v2';

/** The installed CLI answers --help (listing enqueue) and --dry-run (a request for the target). */
async function assertAnswers(env: NodeJS.ProcessEnv, cwd: string): Promise<void> {
  const help = await bash('harbormaster --help', env, cwd);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^ {2}enqueue /m);
  const dry = await bash(DRY_RUN, env, cwd);
  assert.equal(dry.status, 0, dry.stderr);
  assert.deepEqual(JSON.parse(dry.stdout).target, { stack: 'data', release: 'ingest', deployment: 'staging' });
}

describe('the one-file CLI (npm run bundle)', () => {
  let served: Awaited<ReturnType<typeof serveFile>>;
  before(async () => {
    served = await serveFile(buildBundle().file, 'harbormaster.cjs');
  });
  after(() => served?.close());

  it('downloaded, checked against the pinned digest and installed as docs/ci.md says; it answers', async () => {
    const workspace = mkdtempSync(join(tmpdir(), 'agent-workspace-'));
    const env = agentEnvironment({ HARBORMASTER_CLI_URL: served.url, HARBORMASTER_CLI_SHA256: buildBundle().digest });
    const install = await bash(`${snippet('install-bundle')}\necho "PATH=$PATH"`, env, workspace);
    assert.equal(install.status, 0, install.stderr);
    assert.match(install.stdout, /^0\.1\.0$/m, 'harbormaster --version');
    const path = /^PATH=(.*)$/m.exec(install.stdout)![1]!;
    assert.ok(existsSync(join(env.HOME!, '.local/bin/harbormaster')));
    await assertAnswers({ ...env, PATH: path }, workspace);
  });

  it('a file that is not the one pinned is refused before it is installed', async () => {
    const workspace = mkdtempSync(join(tmpdir(), 'agent-workspace-'));
    const env = agentEnvironment({ HARBORMASTER_CLI_URL: served.url, HARBORMASTER_CLI_SHA256: '0'.repeat(64) });
    const install = await bash(snippet('install-bundle'), env, workspace);
    assert.notEqual(install.status, 0);
    assert.match(install.stderr, /did NOT match/);
    assert.ok(!existsSync(join(env.HOME!, '.local/bin/harbormaster')));
  });

  it('needs nothing beside it: run from an empty directory by a Node alone, outside any package', () => {
    const alone = mkdtempSync(join(tmpdir(), 'alone-'));
    const file = join(alone, 'harbormaster');
    copyFileSync(buildBundle().file, file);
    const run = spawnSync(file, ['--version'], { env: { PATH: dirname(process.execPath) }, cwd: alone, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, '0.1.0\n');
    assert.deepEqual(readdirSync(alone), ['harbormaster'], 'it unpacked nothing');
  });
});

describe('the npm package (npm pack, npm install -g)', () => {
  it('packed with dist/ built, installed into a prefix of its own as docs/ci.md says; it answers', async () => {
    const packDir = mkdtempSync(join(tmpdir(), 'harbormaster-pack-'));
    const pack = spawnSync('npm', ['pack', '--silent', '--pack-destination', packDir], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
    assert.equal(pack.status, 0, pack.stderr);
    const tarball = join(packDir, pack.stdout.trim().split('\n').at(-1)!);
    const listing = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).stdout.split('\n');
    for (const file of ['package/bin/harbormaster.js', 'package/dist/cli/main.js', 'package/dist/cli/commands.js', 'package/deploy/worker.example.yml']) assert.ok(listing.includes(file), `${file} is in the package`);
    assert.deepEqual(listing.filter((file) => /^package\/(src|test|scripts|local-fleet)\//.test(file)), [], 'sources, tests and scripts stay out');

    const prefix = mkdtempSync(join(tmpdir(), 'npm-prefix-'));
    mkdirSync(join(prefix, 'bin'));
    // The agent's npm, with its own global prefix; the dependencies come from the registry (this machine's cache first).
    const env = agentEnvironment({ HARBORMASTER_CLI_TARBALL: tarball, npm_config_prefix: prefix, npm_config_prefer_offline: 'true', npm_config_cache: join(process.env.HOME ?? '/root', '.npm') });
    env.PATH = `${join(prefix, 'bin')}:${env.PATH}`;
    const workspace = mkdtempSync(join(tmpdir(), 'agent-workspace-'));
    const install = await bash(snippet('install-npm'), env, workspace);
    assert.equal(install.status, 0, install.stderr);
    assert.match(install.stdout, /^0\.1\.0$/m, 'harbormaster --version');
    assert.ok(existsSync(join(prefix, 'bin/harbormaster')));
    await assertAnswers(env, workspace);
  });
});

describe('the CLI image (the Dockerfile\'s cli stage)', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const stages = dockerfile.split(/^(?=FROM )/m).slice(1);
  const stage = (name: string) => stages.find((text) => new RegExp(`^FROM \\S+ AS ${name}\\n`).test(text)) ?? '';

  it('the build stage makes the bundle from what it copies in', () => {
    const build = stage('build');
    assert.match(build, /^RUN .*npm run bundle/m);
    const copied = [...build.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '));
    // What scripts/bundle.ts reads, and what `npm run bundle` runs.
    for (const needed of ['package.json', 'package-lock.json', 'src', 'scripts/bundle.ts', 'scripts/bundle-launcher.cjs']) assert.ok(copied.includes(needed), `the build stage copies ${needed}`);
    const bundleScript = readFileSync(join(ROOT, 'scripts/bundle.ts'), 'utf8');
    for (const read of bundleScript.matchAll(/join\(root, '([^']+)'\)/g)) {
      if (read[1] === 'dist-bundle') continue;
      assert.ok(copied.some((path) => read[1] === path || read[1]!.startsWith(`${path}/`)), `scripts/bundle.ts reads ${read[1]}, which the build stage does not copy`);
    }
  });

  it('the cli stage is the bundle as /usr/local/bin/harbormaster, run as node, its entry point; not the default target', () => {
    const cli = stage('cli');
    assert.match(cli, /^COPY --from=build \/app\/dist-bundle\/harbormaster\.cjs \/usr\/local\/bin\/harbormaster$/m);
    assert.match(cli, /^USER node$/m);
    assert.match(cli, /^ENTRYPOINT \["harbormaster"\]$/m);
    assert.ok(!/ AS /.test(stages.at(-1)!.split('\n')[0]!), 'the last stage (what `docker build .` makes) is the worker');
  });

  it('the file runs where the stage puts it: an extensionless executable, with only Node on the PATH', async () => {
    const root = mkdtempSync(join(tmpdir(), 'image-root-'));
    mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
    const file = join(root, 'usr/local/bin/harbormaster');
    copyFileSync(buildBundle().file, file);
    const env = { PATH: `${join(root, 'usr/local/bin')}:${dirname(process.execPath)}`, HOME: mkdtempSync(join(tmpdir(), 'home-node-')), USER: 'node' };
    await assertAnswers(env, env.HOME);
  });
});
