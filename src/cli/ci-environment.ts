import { readFileSync } from 'node:fs';
import { parseJavaProperties } from './java-properties.js';

// Provenance that CI systems already put in the environment, so that `harbormaster enqueue` needs only
// the target and the image. Flags (and HARBORMASTER_REQUESTED_BY) override every value found here.
// Who asked is always found, so that an SCM- or timer-triggered build still enqueues: when the CI
// names no person, the requester is the CI job itself (`jenkins:<job>`, `teamcity:<configuration>`).

export interface Provenance {
  requestedBy?: string;
  branch?: string;
  commit?: string;
  buildUrl?: string;
}

const first = (...values: Array<string | undefined>) => values.find((v) => v !== undefined && v.trim() !== '')?.trim();

/**
 * A requester name found in the environment, made to fit the request's alphabet (letters, digits,
 * spaces, "._@+:/-", and a trailing "[bot]" as GitHub names its apps): anything else becomes "-",
 * so a job name with odd characters still gives a requester rather than a refused request.
 */
export function requesterFromEnvironment(value: string | undefined): string | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const bot = /\[bot\]$/.test(value.trim());
  const base = (bot ? value.trim().slice(0, -'[bot]'.length) : value.trim())
    .replace(/[^A-Za-z0-9 ._@+:/-]/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, bot ? 95 : 100);
  if (base === '') return undefined;
  return bot ? `${base}[bot]` : base;
}

/**
 * TeamCity's build parameters, from the files it names in every build's environment
 * (TEAMCITY_BUILD_PROPERTIES_FILE, and the configuration parameters file that one names), so that
 * who triggered the build, the branch and the build's URL need no `env.*` parameter set by hand.
 */
export function teamCityParameters(env: NodeJS.ProcessEnv): Map<string, string> {
  const read = (file: string | undefined) => {
    if (!file) return new Map<string, string>();
    try {
      return parseJavaProperties(readFileSync(file, 'utf8'));
    } catch {
      return new Map<string, string>();
    }
  };
  const system = read(env.TEAMCITY_BUILD_PROPERTIES_FILE);
  const configuration = read(system.get('teamcity.configuration.properties.file'));
  return new Map([...system, ...configuration]);
}

export function provenanceFromEnvironment(env: NodeJS.ProcessEnv): Provenance & { ci?: string } {
  if (env.GITHUB_ACTIONS === 'true') {
    const runUrl =
      env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID
        ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
        : undefined;
    return compact({
      ci: 'github-actions',
      // Bots (dependabot[bot], github-actions[bot]) keep their name: the request accepts "[bot]".
      requestedBy: requesterFromEnvironment(first(env.GITHUB_TRIGGERING_ACTOR, env.GITHUB_ACTOR, env.GITHUB_REPOSITORY && `github:${env.GITHUB_REPOSITORY}`)),
      branch: first(env.GITHUB_HEAD_REF, env.GITHUB_REF_NAME),
      commit: first(env.GITHUB_SHA),
      buildUrl: runUrl,
    });
  }
  if (env.TEAMCITY_VERSION) {
    const parameters = teamCityParameters(env);
    const parameter = (name: string) => {
      const value = parameters.get(name);
      // TeamCity writes "n/a" where a build has no such value (no user for a VCS-triggered build).
      return value === 'n/a' ? undefined : value;
    };
    const serverUrl = first(parameter('teamcity.serverUrl'))?.replace(/\/+$/, '');
    const buildId = first(parameter('teamcity.build.id'));
    return compact({
      ci: 'teamcity',
      requestedBy: requesterFromEnvironment(
        first(
          env.TEAMCITY_BUILD_TRIGGEREDBY_USERNAME,
          parameter('teamcity.build.triggeredBy.username'),
          env.BUILD_USER,
          env.TEAMCITY_BUILDCONF_NAME && `teamcity:${env.TEAMCITY_BUILDCONF_NAME}`,
          'teamcity',
        ),
      ),
      branch: first(env.TEAMCITY_BUILD_BRANCH, parameter('teamcity.build.branch')),
      commit: first(env.BUILD_VCS_NUMBER, parameter('build.vcs.number')),
      buildUrl: first(env.BUILD_URL, env.TEAMCITY_BUILD_URL, serverUrl && buildId ? `${serverUrl}/viewLog.html?buildId=${buildId}` : undefined),
    });
  }
  if (env.JENKINS_URL || env.JENKINS_HOME) {
    return compact({
      ci: 'jenkins',
      // BUILD_USER_ID exists only with the build-user-vars plugin, and only for a build a person
      // started; CHANGE_AUTHOR on pull request builds. Otherwise the job asked.
      requestedBy: requesterFromEnvironment(first(env.BUILD_USER_ID, env.CHANGE_AUTHOR, env.JOB_NAME && `jenkins:${env.JOB_NAME}`, 'jenkins')),
      branch: first(env.CHANGE_BRANCH, env.BRANCH_NAME, env.GIT_BRANCH?.replace(/^origin\//, '')),
      commit: first(env.GIT_COMMIT),
      buildUrl: first(env.BUILD_URL),
    });
  }
  return compact({ requestedBy: requesterFromEnvironment(first(env.USER, env.LOGNAME)) });
}

function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
