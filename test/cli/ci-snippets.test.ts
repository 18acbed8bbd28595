import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { parse } from 'yaml';
import { MOTO_CREDENTIALS, MOTO_REGION } from '../../local-fleet/moto.js';
import { EXIT_CODE_LINES } from '../../src/cli/exit-codes.js';
import { createReleaseTable } from '../../src/state/dynamodb-release-table.js';
import { createQueues, motoForSuite } from '../support/aws.js';
import { CLI, collect, runCli } from '../support/cli.js';
import { RecordingRollout } from '../support/recording-rollout.js';
import { capturingLogger, enqueueEnvironment, TEST_KEY, withWorker, workerConfig } from '../support/worker-fixtures.js';

// docs/ci.md's snippets, run as each CI would run them: the shell command is read from the document
// (so the document and the test cannot drift), given that CI's own environment variables, and run
// with the built `harbormaster` on the PATH against a real queue and release table (moto) and a real
// worker whose rollout only records what it is handed.

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
  return text.replace(/\$\{\{\s*([a-z_.A-Z]+)\s*\}\}/g, (_all, name: string) => {
    assert.ok(name in values, `the test gives no value for \${{ ${name} }}`);
    return values[name]!;
  });
}

/** The `run:` step of the GitHub snippet, its env and its script, expressions resolved. */
function githubStep(values: Record<string, string>): { env: Record<string, string>; script: string } {
  const steps = parse(snippet('github-actions')) as Array<{ run?: string; env?: Record<string, string> }>;
  const step = steps.find((s) => s.run);
  assert.ok(step?.run);
  const env = Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, githubExpressions(v, values)]));
  return { env, script: githubExpressions(step.run, values) };
}

/** TeamCity's script step: `%parameter%` references are replaced before the script runs. */
function teamCityScript(parameters: Record<string, string>): string {
  const match = /scriptContent = """\n([\s\S]*?)\n\s*""".trimIndent\(\)/.exec(snippet('teamcity'));
  assert.ok(match);
  const lines = match[1]!.split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n').replace(/%([a-zA-Z0-9._]+)%/g, (_all, name: string) => {
    assert.ok(name in parameters, `the test gives no value for %${name}%`);
    return parameters[name]!;
  });
}

/** The Jenkins stage: the names its environment block sets, and the `sh '''...'''` script. */
function jenkinsStage(): { names: string[]; script: string } {
  const text = snippet('jenkins');
  const environment = /environment \{\n([\s\S]*?)\n\s*\}/.exec(text)![1]!;
  const names = [...environment.matchAll(/^\s*([A-Z_]+) = /gm)].map((m) => m[1]!);
  const script = /sh '''\n([\s\S]*?)\n\s*'''/.exec(text)![1]!;
  return { names, script };
}

/** A directory holding a `harbormaster` that runs the built CLI, as an installed package would. */
function harbormasterOnPath(): string {
  const bin = mkdtempSync(join(tmpdir(), 'harbormaster-bin-'));
  writeFileSync(join(bin, 'harbormaster'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  chmodSync(join(bin, 'harbormaster'), 0o755);
  return bin;
}

const REPOSITORY = 'registry.internal:5000/data/ingest';
const SHA = '4f2c9d0b7e1a3c5d7f9b1d3e5a7c9e1b3d5f7a9c';

describe('docs/ci.md snippets, run with each CI\'s environment', () => {
  const suite = motoForSuite();
  const bin = harbormasterOnPath();

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
    // What every CI's job has besides its own variables: AWS credentials and the endpoint (moto).
    const base: NodeJS.ProcessEnv = { ...enqueueEnvironment(suite.moto.endpoint), PATH: `${bin}:${process.env.PATH}` };
    delete base.HARBORMASTER_SIGNING_KEY_ID;
    delete base.HARBORMASTER_SIGNING_KEY;
    const settings = { HARBORMASTER_QUEUE_URL: queues.url, HARBORMASTER_STATE_TABLE: table, HARBORMASTER_SIGNING_KEY_ID: TEST_KEY.id, HARBORMASTER_SIGNING_KEY: TEST_KEY.secret.toString() };
    return { config, base, settings };
  }

  async function runSnippet(config: Awaited<ReturnType<typeof setUp>>['config'], script: string, env: NodeJS.ProcessEnv) {
    const rollout = new RecordingRollout();
    const result = await withWorker(config, { rollout, logger: capturingLogger().logger }, () =>
      collect(spawn('bash', ['-e', '-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] }), 90_000),
    );
    return { result, handed: rollout.releases };
  }

  it('GitHub Actions: a Dependabot pull request, its bot actor kept as the requester', async () => {
    const { config, base, settings } = await setUp();
    const { env, script } = githubStep({
      'vars.HARBORMASTER_QUEUE_URL': settings.HARBORMASTER_QUEUE_URL,
      'vars.HARBORMASTER_STATE_TABLE': settings.HARBORMASTER_STATE_TABLE,
      'vars.HARBORMASTER_SIGNING_KEY_ID': settings.HARBORMASTER_SIGNING_KEY_ID,
      'secrets.HARBORMASTER_SIGNING_KEY': settings.HARBORMASTER_SIGNING_KEY,
      'github.sha': SHA,
    });
    const github = {
      GITHUB_ACTIONS: 'true',
      CI: 'true',
      GITHUB_ACTOR: 'dependabot[bot]',
      GITHUB_TRIGGERING_ACTOR: 'dependabot[bot]',
      GITHUB_HEAD_REF: 'dependabot/npm_and_yarn/yaml-2.9.1',
      GITHUB_REF_NAME: '42/merge',
      GITHUB_SHA: SHA,
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_REPOSITORY: 'acme/ingest',
      GITHUB_RUN_ID: '9912345678',
    };
    const { result, handed } = await runSnippet(config, script, { ...base, ...github, ...env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /release [0-9a-f-]{36} succeeded\n$/);
    assert.equal(handed.length, 1);
    const { request } = handed[0]!;
    assert.equal(request.requestedBy, 'dependabot[bot]');
    assert.equal(request.image, `${REPOSITORY}:${SHA}`);
    assert.deepEqual(request.target, { stack: 'data', release: 'ingest', deployment: 'staging' });
    assert.deepEqual(request.source, { branch: 'dependabot/npm_and_yarn/yaml-2.9.1', commit: SHA, buildUrl: 'https://github.com/acme/ingest/actions/runs/9912345678' });
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
    const { result, handed } = await runSnippet(config, script, { ...base, ...teamcity, ...settings });
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
    assert.deepEqual(names.sort(), Object.keys(settings).sort(), 'the stage sets what the command needs');
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
    const { result, handed } = await runSnippet(config, script, { ...base, ...jenkins, ...settings });
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
