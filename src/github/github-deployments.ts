import type { Chat, ChatMessage } from '../chat/chat.js';
import { callJson, type CallOutcome } from '../chat/json-call.js';
import { createOrderedSender } from '../chat/ordered-sender.js';
import type { ReleaseOutcomeKind } from '../chat/release-events.js';
import { currentRelease } from '../chat/release-scope.js';
import type { Logger } from '../log/logger.js';
import { isPersonal } from '../request/release-request.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import type { ReleaseRecord } from '../state/release-record.js';
import type { ReleaseStore } from '../state/release-store.js';
import { installationTokens, type GitHubAppCredentials, type TokenSource } from './github-app-token.js';

// GitHub deployments for releases, from the release messages the rollout posts (a listener beside
// chat). A release whose stack/release maps to a repository gets a deployment of its request's
// commit to its deployment's environment (a personal deployment as a transient environment), made
// when it starts (or is taken up with none recorded, or ends without one), recorded with the release,
// and statuses: in_progress, then success, failure, queued (paused at a safe point) or inactive
// (superseded). Each status carries the build as log_url and the release id in its description.
// Calls go out in order in the background; GitHub's rate limits are waited out; a release never waits.

export interface GitHubDeploymentsOptions {
  /** A token, or a GitHub App's installation (its installation tokens are bought as needed). */
  readonly token?: string;
  readonly app?: GitHubAppCredentials;
  /** "stack/release" to "owner/repository". */
  readonly repositories: Readonly<Record<string, string>>;
  /** Default https://api.github.com. */
  readonly apiUrl?: string;
  readonly logger: Logger;
  /** Where a release is read from when its message comes from outside its rollout (superseded). */
  readonly store?: () => ReleaseStore | undefined;
  readonly retryWindowMs?: number;
  readonly fetchImpl?: typeof fetch;
  readonly timeoutMs?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

type State = 'in_progress' | 'success' | 'failure' | 'queued' | 'inactive';

const STATE_OF: Readonly<Record<ReleaseOutcomeKind, State>> = {
  succeeded: 'success',
  'rolled-back': 'failure',
  failed: 'failure',
  refused: 'failure',
  superseded: 'inactive',
  interrupted: 'queued',
  // Stopped part-way by an operator: never a success.
  stopped: 'failure',
};

interface Deployment {
  readonly repository: string;
  id?: number;
  /** A deployment could not be made: no status is sent for it. */
  failed?: boolean;
}

export function createGitHubDeployments(options: GitHubDeploymentsOptions): Chat {
  const apiUrl = (options.apiUrl ?? 'https://api.github.com').replace(/\/+$/, '');
  const log = options.logger.child({ component: 'github' });
  const sender = createOrderedSender({
    logger: log,
    retryWindowMs: options.retryWindowMs ?? 10 * 60_000,
    ...(options.minBackoffMs !== undefined ? { minBackoffMs: options.minBackoffMs } : {}),
    ...(options.maxBackoffMs !== undefined ? { maxBackoffMs: options.maxBackoffMs } : {}),
  });
  const deployments = new Map<string, Deployment>();

  const fetchImpl = options.fetchImpl ?? fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const staticToken = options.token;
  const tokens: TokenSource =
    staticToken !== undefined
      ? async () => ({ ok: true, token: staticToken })
      : options.app
        ? installationTokens(options.app, { apiUrl, fetchImpl, timeoutMs })
        : async () => ({ ok: false, reason: 'no token and no app configured', retry: false });

  const call = async (path: string, body: unknown): Promise<CallOutcome> => {
    const token = await tokens();
    if (!token.ok) return token.retry ? { kind: 'retry', reason: token.reason, ...(token.retryAfterMs !== undefined ? { retryAfterMs: token.retryAfterMs } : {}) } : { kind: 'drop', reason: token.reason };
    return callJson(
      {
        method: 'POST',
        url: `${apiUrl}${path}`,
        headers: {
          authorization: `Bearer ${token.token}`,
          accept: 'application/vnd.github+json',
          'x-github-api-version': '2022-11-28',
          'user-agent': 'harbormaster',
        },
        body,
      },
      { fetchImpl, timeoutMs, secrets: [token.token] },
    );
  };

  function deploymentOf(record: Readonly<ReleaseRecord>, release: RecordedRelease | undefined): Deployment | undefined {
    const known = deployments.get(record.releaseId);
    if (known) return known;
    const repository = options.repositories[`${record.request.target.stack}/${record.request.target.release}`];
    const ref = record.request.source?.commit ?? record.request.source?.branch;
    if (!repository || !ref) return undefined;
    const recorded = record.githubDeployment?.repository === repository ? record.githubDeployment.id : undefined;
    const deployment: Deployment = { repository, ...(recorded !== undefined ? { id: recorded } : {}) };
    deployments.set(record.releaseId, deployment);
    if (deployments.size > 500) deployments.delete(deployments.keys().next().value!);
    if (recorded === undefined) {
      const target = record.request.target;
      sender.push({
        summary: `deployment of release ${record.releaseId}`,
        attempt: () =>
          call(`/repos/${repository}/deployments`, {
            ref,
            environment: record.deployment,
            description: `Harbormaster release ${record.releaseId}`.slice(0, 140),
            auto_merge: false,
            required_contexts: [],
            transient_environment: isPersonal(target),
            production_environment: record.deployment === 'production',
            payload: { releaseId: record.releaseId, image: record.request.image, target: record.target, requestedBy: record.request.requestedBy },
          }),
        done: async (body) => {
          const id = (body as { id?: unknown } | undefined)?.id;
          if (typeof id !== 'number') {
            deployment.failed = true;
            return void log.warn({ releaseId: record.releaseId, repository }, 'GitHub made no deployment (no id in its answer)');
          }
          deployment.id = id;
          await release?.update((draft) => void (draft.githubDeployment = { repository, id })).catch((error: unknown) => {
            log.info({ releaseId: record.releaseId, reason: (error as Error).message }, 'the GitHub deployment id could not be recorded with the release');
          });
        },
        dropped: () => void (deployment.failed = true),
      });
    }
    return deployment;
  }

  function status(record: Readonly<ReleaseRecord>, deployment: Deployment, state: State, what: string): void {
    const buildUrl = record.request.source?.buildUrl;
    sender.push({
      summary: `${state} status of release ${record.releaseId}`,
      attempt: async () => {
        if (deployment.id === undefined) return { kind: 'drop', reason: 'no deployment was made' };
        return call(`/repos/${deployment.repository}/deployments/${deployment.id}/statuses`, {
          state,
          ...(buildUrl ? { log_url: buildUrl } : {}),
          description: `release ${record.releaseId}: ${what}`.slice(0, 140),
          environment: record.deployment,
        });
      },
    });
  }

  function handle(message: ChatMessage, record: Readonly<ReleaseRecord>, release: RecordedRelease | undefined): void {
    const event = message.event!;
    const deployment = deploymentOf(record, release);
    if (!deployment || deployment.failed) return;
    if (event.kind === 'started' || event.kind === 'resumed') status(record, deployment, 'in_progress', event.kind === 'started' ? 'rolling out' : 'resumed');
    else if (event.kind === 'ended') status(record, deployment, STATE_OF[event.outcome], event.outcome);
  }

  return {
    post(message: ChatMessage): void {
      const event = message.event;
      if (!event || (event.kind !== 'started' && event.kind !== 'resumed' && event.kind !== 'ended')) return;
      const release = currentRelease();
      if (release) return handle(message, release.record, release);
      const releaseId = 'releaseId' in event ? event.releaseId : undefined;
      const store = options.store?.();
      if (!releaseId || !store) return;
      store.get(releaseId).then(
        (record) => record && handle(message, record, undefined),
        (error: unknown) => log.warn({ err: error, releaseId }, 'reading the release for its GitHub deployment failed'),
      );
    },
    flush: (timeoutMs?: number) => sender.flush(timeoutMs),
  };
}
