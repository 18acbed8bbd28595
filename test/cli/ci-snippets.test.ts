import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { parse } from 'yaml';
import { MOTO_CREDENTIALS, MOTO_REGION } from '../../local-fleet/moto.js';
import { DEFAULT_WAIT_MINUTES } from '../../src/cli/enqueue-command.js';
import { EXIT_CODE_LINES } from '../../src/cli/exit-codes.js';
import { createReleaseTable } from '../../src/state/dynamodb-release-table.js';
import { createQueues, motoForSuite } from '../support/aws.js';
import { buildBundle, serveFile } from '../support/cli-bundle.js';
import { collect, runCli } from '../support/cli.js';
import { RecordingRollout } from '../support/recording-rollout.js';
import { capturingLogger, enqueueEnvironment, TEST_KEY, withWorker, workerConfig } from '../support/worker-fixtures.js';

// docs/ci.md's snippets, run as each CI would run them: the shell commands are read from the document
// (so the document and the test cannot drift), given that CI's own environment variables, and run
// against a real queue and release table (moto) and a real worker whose rollout only records what it
// is handed. No `harbormaster` is on the PATH: each snippet gets the CLI as it says, the one-file
// bundle (built by scripts/bundle.ts, served over HTTP) or the CLI image (`docker run`, played by
// test/support/docker-run.mjs: this machine has no Docker engine).

const root = fileURLToPath(new URL('../../', import.meta.url));
const doc = readFileSync(join(root, 'docs/ci.md'), 'utf8');

/** The fenced block after `<!-- ci-snippet: NAME -->`. */
function snippet(name: string): string {
  const match = new RegExp(`<!-- ci-snippet: ${name} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\``).exec(doc);
  assert.ok(match, `docs/ci.md has no snippet ${name}`);
  return match[1]!;
}

/** GitHub's `${{ expression }}`, from the values a workflow run would have. */
function githubExpressions(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{\{\s*([a-z_.A-Z0-9]+)\s*\}\}/g, (_all, name: string) => {
    assert.ok(name in values, `the test gives no value for \${{ ${name} }}`);
    return values[name]!;
  });
}

interface GitHubStep {
  readonly name?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly env?: Record<string, string>;
  readonly with?: Record<string, string | number>;
}

/** The GitHub snippet's job: its permissions, and its steps with expressions resolved. */
function githubJob(values: Record<string, string>): { permissions: Record<string, string>; steps: GitHubStep[] } {
  const { jobs } = parse(snippet('github-actions')) as { jobs: Record<string, { permissions: Record<string, string>; steps: GitHubStep[] }> };
  const [job] = Object.values(jobs);
  assert.ok(job);
  const resolve = (record?: Record<string, string>) => record && Object.fromEntries(Object.entries(record).map(([k, v]) => [k, githubExpressions(v, values)]));
  const steps = job.steps.map((step) => ({ ...step, ...(step.env ? { env: resolve(step.env) } : {}), ...(step.run ? { run: githubExpressions(step.run, values) } : {}) }));
  return { permissions: job.permissions, steps };
}

/** TeamCity's script step: `%parameter%` references are replaced before the script runs. */
function teamCityScript(parameters: Record<string, string>): string {
  const match = /scriptContent = """\n([\s\S]*?)\n\s*""".trimIndent\(\)/.exec(snippet('teamcity'));
  assert.ok(match);
  const lines = match[1]!.split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
  // Kotlin writes `$` in a raw string as ${'$'}.
  return lines.map((l) => l.slice(indent)).join('\n').replaceAll("${'$'}", '$').replace(/%([a-zA-Z0-9._]+)%/g, (_all, name: string) => {
    assert.ok(name in parameters, `the test gives no value for %${name}%`);
    return parameters[name]!;
  });
}

/** The Jenkins stage: the names its environment block sets, and the `sh '''...'''` script. */
function jenkinsStage(): { names: string[]; script: string } {
  const text = snippet('jenkins');
  const environment = /environment \{\n([\s\S]*?)\n\s*\}/.exec(text)![1]!;
  const names = [...environment.matchAll(/^\s*([A-Z0-9_]+) = /gm)].map((m) => m[1]!);
  const script = /sh '''\n([\s\S]*?)\n\s*'''/.exec(text)![1]!;
  return { names, script };
}

const REPOSITORY = 'registry.internal:5000/data/ingest';
const SHA = '4f2c9d0b7e1a3c5d7f9b1d3e5a7c9e1b3d5f7a9c';

/** The CI role's longest session, as deploy/cloudformation.yml gives it. */
function ciRoleMaxSession(): number {
  const stack = readFileSync(join(root, 'deploy/cloudformation.yml'), 'utf8');
  const role = stack.slice(stack.indexOf('\n  CiRole:'));
  return Number(/MaxSessionDuration: (\d+)/.exec(role)?.[1]);
}

const DOCKER_SHIM = fileURLToPath(new URL('../support/docker-run.mjs', import.meta.url));
const CLI_IMAGE = 'registry.internal:5000/harbormaster-cli:0.1.0';

describe('docs/ci.md snippets, run with each CI\'s environment', () => {
  const suite = motoForSuite();
  let served: { url: string; digest: string; close(): Promise<void> };
  before(async () => {
    const bundle = buildBundle();
    served = { ...(await serveFile(bundle.file, 'harbormaster.cjs')), digest: bundle.digest };
  });
  after(() => served?.close());

  async function setUp() {
    const queues = await createQueues(suite.sqs);
    const table = `releases-${Math.random().toString(36).slice(2, 10)}`;
    const dynamo = new DynamoDBClient({ endpoint: suite.moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, maxAttempts: 1 });
    await createReleaseTable(dynamo, table);
    dynamo.destroy();
    const config = workerConfig(suite.moto.endpoint, queues, {
      state: { store: 'dynamodb', table },
      releases: [
        {
          stack: 'data',
          release: 'ingest',
          deployments: ['integration', 'staging'],
          personal: { users: ['alice'], deployment: 'personal-{user}' },
          images: { allowedRepositories: [REPOSITORY] },
        },
      ],
    });
    // What every CI's job has besides its own variables: AWS credentials and the endpoint (moto), a
    // PATH with Node (and curl, sha256sum) but no harbormaster, and a home of its own.
    const base: NodeJS.ProcessEnv = {
      ...enqueueEnvironment(suite.moto.endpoint),
      PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
      HOME: mkdtempSync(join(tmpdir(), 'ci-home-')),
    };
    delete base.HARBORMASTER_SIGNING_KEY_ID;
    delete base.HARBORMASTER_SIGNING_KEY;
    const settings = { HARBORMASTER_QUEUE_URL: queues.url, HARBORMASTER_STATE_TABLE: table, HARBORMASTER_SIGNING_KEY_ID: TEST_KEY.id, HARBORMASTER_SIGNING_KEY: TEST_KEY.secret.toString() };
    return { config, base, settings };
  }

  /** Runs the scripts in order, each in its own bash, in one working directory, while a worker serves the queue. */
  async function runSnippet(config: Awaited<ReturnType<typeof setUp>>['config'], steps: ReadonlyArray<{ script: string; env: () => NodeJS.ProcessEnv }>) {
    const rollout = new RecordingRollout();
    const cwd = mkdtempSync(join(tmpdir(), 'ci-workspace-'));
    const result = await withWorker(config, { rollout, logger: capturingLogger().logger }, async () => {
      let last: Awaited<ReturnType<typeof collect>> | undefined;
      for (const step of steps) {
        last = await collect(spawn('bash', ['-e', '-c', step.script], { env: step.env(), cwd, stdio: ['ignore', 'pipe', 'pipe'] }), 90_000);
        if (last.code !== 0) break;
      }
      return last!;
    });
    return { result, handed: rollout.releases };
  }

  it('GitHub Actions: a Renovate push to its branch installs the CLI, takes a 3-hour session with the id token, and releases; the bot keeps its name', async () => {
    const { config, base, settings } = await setUp();
    const { permissions, steps } = githubJob({
      'vars.HARBORMASTER_CLI_URL': served.url,
      'vars.HARBORMASTER_CLI_SHA256': served.digest,
      'vars.HARBORMASTER_CI_ROLE': 'arn:aws:iam::123456789012:role/harbormaster-ci',
      'vars.HARBORMASTER_QUEUE_URL': settings.HARBORMASTER_QUEUE_URL,
      'vars.HARBORMASTER_STATE_TABLE': settings.HARBORMASTER_STATE_TABLE,
      'vars.HARBORMASTER_SIGNING_KEY_ID': settings.HARBORMASTER_SIGNING_KEY_ID,
      'secrets.HARBORMASTER_SIGNING_KEY': settings.HARBORMASTER_SIGNING_KEY,
      'github.sha': SHA,
    });
    assert.equal(permissions['id-token'], 'write', 'configure-aws-credentials needs the OIDC token');
    const credentials = steps.find((step) => step.uses?.startsWith('aws-actions/configure-aws-credentials@'));
    const session = Number(credentials?.with?.['role-duration-seconds']);
    assert.ok(session >= DEFAULT_WAIT_MINUTES * 60 + 15 * 60, `a ${session} s session ends before --wait's ${DEFAULT_WAIT_MINUTES} minutes (and the job before it)`);
    assert.ok(session <= ciRoleMaxSession(), `the stack's CI role allows at most ${ciRoleMaxSession()} s`);
    const runner = mkdtempSync(join(tmpdir(), 'runner-'));
    const githubPath = join(runner, 'github-path');
    writeFileSync(githubPath, '');
    const github = {
      GITHUB_ACTIONS: 'true',
      CI: 'true',
      GITHUB_ACTOR: 'renovate[bot]',
      GITHUB_TRIGGERING_ACTOR: 'renovate[bot]',
      GITHUB_REF_NAME: 'renovate/yaml-2.x',
      GITHUB_SHA: SHA,
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_REPOSITORY: 'acme/ingest',
      GITHUB_RUN_ID: '9912345678',
      RUNNER_TEMP: runner,
      GITHUB_PATH: githubPath,
    };
    // As the runner: each step's env, and the directories earlier steps added to GITHUB_PATH first on the PATH.
    const withPath = (env: NodeJS.ProcessEnv) => {
      const added = readFileSync(githubPath, 'utf8').split('\n').filter(Boolean).reverse();
      return { ...env, PATH: [...added, env.PATH].join(':') };
    };
    const runs = steps.filter((step) => step.run).map((step) => ({ script: step.run!, env: () => withPath({ ...base, ...github, ...step.env }) }));
    assert.equal(runs.length, 2, 'an install step and a release step');
    const { result, handed } = await runSnippet(config, runs);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /release [0-9a-f-]{36} succeeded\n$/);
    assert.equal(handed.length, 1);
    const { request } = handed[0]!;
    assert.equal(request.requestedBy, 'renovate[bot]');
    assert.equal(request.image, `${REPOSITORY}:${SHA}`);
    assert.deepEqual(request.target, { stack: 'data', release: 'ingest', deployment: 'staging' });
    assert.deepEqual(request.source, { branch: 'renovate/yaml-2.x', commit: SHA, buildUrl: 'https://github.com/acme/ingest/actions/runs/9912345678' });
  });

  it('TeamCity: a VCS-triggered build of a personal branch, with nothing set by hand: the job is the requester, the personal branch wins over --deployment with a note', async () => {
    const { config, base, settings } = await setUp();
    const dir = mkdtempSync(join(tmpdir(), 'teamcity-'));
    const configuration = join(dir, 'config.properties');
    // As TeamCity writes them: Java properties, with escaped colons; "n/a" where no user triggered it.
    writeFileSync(
      configuration,
      [
        '#TeamCity build configuration parameters',
        'teamcity.build.branch=remote-run/alice/faster-parse',
        'teamcity.build.id=8899',
        'teamcity.build.triggeredBy=Git',
        'teamcity.build.triggeredBy.username=n/a',
        'teamcity.serverUrl=https\\://teamcity.example.com',
        `build.vcs.number=${SHA}`,
        '',
      ].join('\n'),
    );
    const buildProperties = join(dir, 'build.properties');
    writeFileSync(buildProperties, `teamcity.configuration.properties.file=${configuration.replaceAll(':', '\\:')}\nteamcity.version=2024.12\n`);
    const teamcity = {
      TEAMCITY_VERSION: '2024.12 (build 174331)',
      TEAMCITY_BUILDCONF_NAME: 'Build & Release',
      TEAMCITY_PROJECT_NAME: 'Ingest',
      BUILD_NUMBER: '57',
      BUILD_VCS_NUMBER: SHA,
      TEAMCITY_BUILD_PROPERTIES_FILE: buildProperties,
    };
    const script = teamCityScript({ 'build.vcs.number': SHA });
    // The agent has Docker and the CLI image; its instance profile (moto's credentials here) reaches a container on the host's network.
    const agentBin = mkdtempSync(join(tmpdir(), 'agent-bin-'));
    symlinkSync(DOCKER_SHIM, join(agentBin, 'docker'));
    const dockerLog = join(agentBin, 'docker-run.json');
    const agent = {
      PATH: `${agentBin}:${base.PATH}`,
      HARBORMASTER_TEST_IMAGE: CLI_IMAGE,
      HARBORMASTER_TEST_BUNDLE: buildBundle().file,
      HARBORMASTER_TEST_DOCKER_LOG: dockerLog,
      HARBORMASTER_TEST_HOST_AWS: JSON.stringify({ AWS_ACCESS_KEY_ID: base.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: base.AWS_SECRET_ACCESS_KEY, HARBORMASTER_AWS_ENDPOINT: base.HARBORMASTER_AWS_ENDPOINT }),
    };
    const instanceProfileOnly = { ...base, AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, HARBORMASTER_AWS_ENDPOINT: undefined };
    const { result, handed } = await runSnippet(config, [{ script, env: () => ({ ...instanceProfileOnly, ...agent, ...teamcity, ...settings }) }]);
    const run = JSON.parse(readFileSync(dockerLog, 'utf8')) as { rm: boolean; network: string; mounts: Array<{ path: string; readOnly: boolean }> };
    assert.deepEqual([run.rm, run.network], [true, 'host']);
    assert.deepEqual(run.mounts, [{ path: dir, readOnly: true }], 'the directory of both properties files, read-only, at the same path');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /^harbormaster: branch 'remote-run\/alice\/faster-parse' is a personal branch: releasing to alice's personal deployment, not --deployment staging\n/);
    assert.equal(handed.length, 1);
    const { request, deployment } = handed[0]!;
    assert.equal(request.requestedBy, 'teamcity:Build - Release');
    assert.equal(deployment, 'personal-alice');
    assert.deepEqual(request.target, { stack: 'data', release: 'ingest', personal: { user: 'alice', feature: 'faster-parse' } });
    assert.deepEqual(request.source, { branch: 'remote-run/alice/faster-parse', commit: SHA, buildUrl: 'https://teamcity.example.com/viewLog.html?buildId=8899' });
  });

  it('Jenkins: an SCM-triggered build without the build-user plugin: the job is the requester', async () => {
    const { config, base, settings } = await setUp();
    const { names, script } = jenkinsStage();
    const cli = { HARBORMASTER_CLI_URL: served.url, HARBORMASTER_CLI_SHA256: served.digest };
    assert.deepEqual(names.sort(), Object.keys({ ...settings, ...cli }).sort(), 'the stage sets what the command needs');
    const jenkins = {
      JENKINS_URL: 'https://jenkins.example.com/',
      JENKINS_HOME: '/var/jenkins_home',
      JOB_NAME: 'data-ingest/main',
      BUILD_NUMBER: '311',
      BUILD_URL: 'https://jenkins.example.com/job/data-ingest/job/main/311/',
      GIT_COMMIT: SHA,
      GIT_BRANCH: 'origin/main',
      BRANCH_NAME: 'main',
    };
    const { result, handed } = await runSnippet(config, [{ script, env: () => ({ ...base, ...jenkins, ...settings, ...cli }) }]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(handed.length, 1);
    const { request } = handed[0]!;
    assert.equal(request.requestedBy, 'jenkins:data-ingest/main');
    assert.equal(request.image, `${REPOSITORY}:${SHA}`);
    assert.deepEqual(request.source, { branch: 'main', commit: SHA, buildUrl: 'https://jenkins.example.com/job/data-ingest/job/main/311/' });
  });
});

describe('the exit code table', () => {
  const rows = EXIT_CODE_LINES.map(([code, meaning]) => `| ${code} | ${meaning} |`);
  it('enqueue --help lists the signing variables and every exit code', async () => {
    const help = await runCli(['enqueue', '--help'], { PATH: process.env.PATH });
    assert.equal(help.code, 0, help.stderr);
    for (const variable of ['HARBORMASTER_SIGNING_KEY_ID', 'HARBORMASTER_SIGNING_KEY ', 'HARBORMASTER_SIGNING_KEY_FILE']) assert.ok(help.stdout.includes(variable), variable);
    for (const [code, meaning] of EXIT_CODE_LINES) assert.ok(help.stdout.includes(`  ${code}  ${meaning}\n`), `exit ${code}`);
  });

  for (const file of ['README.md', 'docs/ci.md']) {
    it(`${file} lists every exit code of enqueue as the CLI gives them`, () => {
      const text = readFileSync(join(root, file), 'utf8');
      const table = /<!-- exit-codes -->\n\| Exit \| Meaning \|\n\| --- \| --- \|\n((?:\|.*\|\n)+)/.exec(text);
      assert.ok(table, `${file} has no exit code table`);
      assert.deepEqual(table[1]!.trimEnd().split('\n'), rows);
    });
  }
});
