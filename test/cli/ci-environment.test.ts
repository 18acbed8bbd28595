import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { provenanceFromEnvironment } from '../../src/cli/ci-environment.js';
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

  it('refuses a deployment together with a personal branch, and a malformed personal branch', () => {
    assert.throws(() => buildRequest({ stack: 'data', release: 'ingest', deployment: 'staging', image: 'reg.io/a:v1', branch: 'remote-run/alice/x' }, { USER: 'a' }), /cannot be combined/);
    assert.throws(() => buildRequest({ stack: 'data', release: 'ingest', image: 'reg.io/a:v1', branch: 'remote-run/alice' }, { USER: 'a' }), /remote-run\/<user>\/<feature>/);
  });
});
