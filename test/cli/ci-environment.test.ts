import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { provenanceFromEnvironment, requesterFromEnvironment } from '../../src/cli/ci-environment.js';
import { parseJavaProperties } from '../../src/cli/java-properties.js';
import { buildRequest } from '../../src/cli/enqueue.js';

describe('provenance from the CI environment', () => {
  it('reads GitHub Actions', () => {
    const found = provenanceFromEnvironment({
      GITHUB_ACTIONS: 'true',
      GITHUB_ACTOR: 'octocat',
      GITHUB_REF_NAME: 'main',
      GITHUB_SHA: 'abcdef1234567',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_REPOSITORY: 'acme/ingest',
      GITHUB_RUN_ID: '99',
    });
    assert.deepEqual(found, { ci: 'github-actions', requestedBy: 'octocat', branch: 'main', commit: 'abcdef1234567', buildUrl: 'https://github.com/acme/ingest/actions/runs/99' });
  });

  it('reads Jenkins, without the origin/ of GIT_BRANCH', () => {
    const found = provenanceFromEnvironment({ JENKINS_URL: 'https://jenkins', BUILD_URL: 'https://jenkins/job/1/', GIT_COMMIT: 'abc1234', GIT_BRANCH: 'origin/remote-run/alice/x', BUILD_USER_ID: 'alice' });
    assert.deepEqual(found, { ci: 'jenkins', requestedBy: 'alice', branch: 'remote-run/alice/x', commit: 'abc1234', buildUrl: 'https://jenkins/job/1/' });
  });

  it('reads TeamCity', () => {
    const found = provenanceFromEnvironment({ TEAMCITY_VERSION: '2024.1', BUILD_VCS_NUMBER: 'fedcba987654', TEAMCITY_BUILD_BRANCH: 'main', BUILD_URL: 'https://tc/build/5' });
    assert.equal(found.ci, 'teamcity');
    assert.equal(found.commit, 'fedcba987654');
    assert.equal(found.branch, 'main');
  });

  it('lets flags override the environment', () => {
    const request = buildRequest(
      { stack: 'data', release: 'ingest', deployment: 'staging', image: 'reg.io/data/ingest:v2', requestedBy: 'release-bot', commit: 'ABCDEF1' },
      { GITHUB_ACTIONS: 'true', GITHUB_ACTOR: 'octocat', GITHUB_SHA: '1111111', GITHUB_REF_NAME: 'main' },
    );
    assert.equal(request.requestedBy, 'release-bot');
    assert.equal(request.source.commit, 'abcdef1');
    assert.equal(request.source.branch, 'main');
  });

  it('turns a remote-run branch into a personal target', () => {
    const request = buildRequest({ stack: 'data', release: 'ingest', image: 'reg.io/data/ingest:v2', branch: 'remote-run/alice/faster-parse' }, { USER: 'alice' });
    assert.deepEqual(request.target, { stack: 'data', release: 'ingest', personal: { user: 'alice', feature: 'faster-parse' } });
  });

  it('takes a personal branch over --deployment, with a note; still refuses a malformed personal branch', () => {
    const notes: string[] = [];
    const request = buildRequest({ stack: 'data', release: 'ingest', deployment: 'staging', image: 'reg.io/a:v1', branch: 'remote-run/alice/x' }, { USER: 'a' }, (line) => notes.push(line));
    assert.deepEqual(request.target, { stack: 'data', release: 'ingest', personal: { user: 'alice', feature: 'x' } });
    assert.deepEqual(notes, ["branch 'remote-run/alice/x' is a personal branch: releasing to alice's personal deployment, not --deployment staging"]);
    assert.throws(() => buildRequest({ stack: 'data', release: 'ingest', image: 'reg.io/a:v1', branch: 'remote-run/alice' }, { USER: 'a' }), /remote-run\/<user>\/<feature>/);
    assert.throws(() => buildRequest({ stack: 'data', release: 'ingest', deployment: 'staging', image: 'reg.io/a:v1' }, { GITHUB_ACTIONS: 'true', GITHUB_ACTOR: 'x', GITHUB_REF_NAME: 'remote-run/alice/a+b' }), /source.branch must be/);
  });

  it('falls back to the Jenkins job when no person is named (no build-user plugin, SCM or timer trigger)', () => {
    assert.equal(provenanceFromEnvironment({ JENKINS_URL: 'https://j', JOB_NAME: 'data/ingest%2Fmain' }).requestedBy, 'jenkins:data/ingest-2Fmain');
    assert.equal(provenanceFromEnvironment({ JENKINS_URL: 'https://j', JOB_NAME: 'x', CHANGE_AUTHOR: 'bob' }).requestedBy, 'bob');
    assert.equal(provenanceFromEnvironment({ JENKINS_HOME: '/var/jenkins_home' }).requestedBy, 'jenkins');
  });

  it('reads who triggered a TeamCity build from its parameter files, and falls back to the configuration', () => {
    const dir = mkdtempSync(join(tmpdir(), 'teamcity-'));
    const configuration = join(dir, 'config.properties');
    writeFileSync(configuration, 'teamcity.build.triggeredBy.username=carol\nteamcity.build.branch=main\nteamcity.serverUrl=https\\://tc.example\nteamcity.build.id=12\n');
    writeFileSync(join(dir, 'build.properties'), `teamcity.configuration.properties.file=${configuration}\n`);
    const env = { TEAMCITY_VERSION: '2024.12', TEAMCITY_BUILD_PROPERTIES_FILE: join(dir, 'build.properties'), TEAMCITY_BUILDCONF_NAME: 'Release' };
    assert.deepEqual(provenanceFromEnvironment(env), { ci: 'teamcity', requestedBy: 'carol', branch: 'main', buildUrl: 'https://tc.example/viewLog.html?buildId=12' });
    writeFileSync(configuration, 'teamcity.build.triggeredBy.username=n/a\n');
    assert.equal(provenanceFromEnvironment(env).requestedBy, 'teamcity:Release');
    assert.equal(provenanceFromEnvironment({ TEAMCITY_VERSION: '2024.12', TEAMCITY_BUILD_PROPERTIES_FILE: join(dir, 'missing') }).requestedBy, 'teamcity');
  });

  it('keeps GitHub bot actors, and makes any name found in the environment fit the request', () => {
    const request = buildRequest({ stack: 'data', release: 'ingest', deployment: 'staging', image: 'reg.io/a:v1' }, { GITHUB_ACTIONS: 'true', GITHUB_ACTOR: 'dependabot[bot]' });
    assert.equal(request.requestedBy, 'dependabot[bot]');
    assert.equal(requesterFromEnvironment('evil\u001b[2J<@here>[bot]'), 'evil--2J-@here-[bot]');
    assert.equal(requesterFromEnvironment('[bot]'), undefined);
    assert.equal(requesterFromEnvironment('a[bot]b'), 'a-bot-b');
    // Given as a flag, a name is checked, not changed.
    assert.throws(() => buildRequest({ stack: 'data', release: 'ingest', deployment: 'staging', image: 'reg.io/a:v1', requestedBy: 'a[b]' }, {}), /requestedBy must be/);
  });

  it('leaves out a CI branch the request cannot carry, with a note, rather than fail the build', () => {
    const notes: string[] = [];
    const request = buildRequest({ stack: 'data', release: 'ingest', deployment: 'staging', image: 'reg.io/a:v1' }, { GITHUB_ACTIONS: 'true', GITHUB_ACTOR: 'x', GITHUB_REF_NAME: 'feature/ü+1' }, (line) => notes.push(line));
    assert.equal(request.source.branch, undefined);
    assert.match(notes[0] ?? '', /^the CI's branch 'feature\/ü\+1' is left out of the request: branch must be letters, digits and "_.\/-"/);
  });

  it('reads Java properties as TeamCity writes them', () => {
    const parsed = parseJavaProperties('# comment\n! also\na=1\nb : two words\nc\\:d=e\\\\f\nlong=one \\\n    two\nu=\\u00e9\n');
    assert.deepEqual(Object.fromEntries(parsed), { a: '1', b: 'two words', 'c:d': 'e\\f', long: 'one two', u: 'é' });
  });
});
