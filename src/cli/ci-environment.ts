// Provenance that CI systems already put in the environment, so that `harbormaster enqueue` needs only
// the target and the image. Flags override every value found here.

export interface Provenance {
  requestedBy?: string;
  branch?: string;
  commit?: string;
  buildUrl?: string;
}

const first = (...values: Array<string | undefined>) => values.find((v) => v !== undefined && v.trim() !== '')?.trim();

export function provenanceFromEnvironment(env: NodeJS.ProcessEnv): Provenance & { ci?: string } {
  if (env.GITHUB_ACTIONS === 'true') {
    const runUrl =
      env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID
        ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
        : undefined;
    return compact({
      ci: 'github-actions',
      requestedBy: first(env.GITHUB_TRIGGERING_ACTOR, env.GITHUB_ACTOR),
      branch: first(env.GITHUB_HEAD_REF, env.GITHUB_REF_NAME),
      commit: first(env.GITHUB_SHA),
      buildUrl: runUrl,
    });
  }
  if (env.TEAMCITY_VERSION) {
    return compact({
      ci: 'teamcity',
      // TeamCity exposes these as parameters; the README shows how to pass them as env.* parameters.
      requestedBy: first(env.TEAMCITY_BUILD_TRIGGEREDBY_USERNAME, env.BUILD_USER),
      branch: first(env.TEAMCITY_BUILD_BRANCH),
      commit: first(env.BUILD_VCS_NUMBER),
      buildUrl: first(env.BUILD_URL, env.TEAMCITY_BUILD_URL),
    });
  }
  if (env.JENKINS_URL || env.JENKINS_HOME) {
    return compact({
      ci: 'jenkins',
      requestedBy: first(env.BUILD_USER_ID, env.CHANGE_AUTHOR, env.GIT_AUTHOR_EMAIL),
      branch: first(env.CHANGE_BRANCH, env.BRANCH_NAME, env.GIT_BRANCH?.replace(/^origin\//, '')),
      commit: first(env.GIT_COMMIT),
      buildUrl: first(env.BUILD_URL),
    });
  }
  return compact({ requestedBy: first(env.USER, env.LOGNAME) });
}

function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
