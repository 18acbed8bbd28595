import { readSecret } from '../config/secret-source.js';
import type { WorkerConfig } from '../config/worker-config.js';
import { createGitHubDeployments } from '../github/github-deployments.js';
import type { Logger } from '../log/logger.js';
import { startMetricsServer, type MetricsServer } from '../metrics/metrics-server.js';
import { createWorkerMetrics } from '../metrics/worker-metrics.js';
import type { Rollout } from '../rollout/rollout.js';
import type { ReleaseStore } from '../state/release-store.js';
import type { Chat } from './chat.js';
import { chatFromConfig } from './create-chat.js';
import { fanOut, scopedRollout, type RunListener } from './release-scope.js';

// Everything a worker tells the outside, from its configuration: chat, GitHub deployments and
// metrics. The rollout and the worker post to one chat, which hands each message to every one of
// them; the rollout is run in a release scope so each knows which release a message is about.

export interface Signals {
  /** What the rollout and the worker post to. */
  readonly chat: Chat;
  /** The rollout, run in a release scope (and counted by the metrics). */
  rollout(rollout: Rollout): Rollout;
  /** For the worker's queue consumer; undefined without metrics. */
  readonly onQueueReceive: ((ok: boolean) => void) | undefined;
  /** Starts the metrics server when configured; `store` is the worker's release state. */
  start(store: ReleaseStore): Promise<void>;
  /** Waits for queued chat and GitHub calls, at most timeoutMs, then stops the metrics server. */
  close(timeoutMs: number): Promise<void>;
}

export function createSignals(config: WorkerConfig, logger: Logger, env: NodeJS.ProcessEnv = process.env): Signals {
  let store: ReleaseStore | undefined;
  const chats: Chat[] = [chatFromConfig(config, logger, env)];
  const runs: RunListener[] = [];
  if (config.github) {
    chats.push(
      createGitHubDeployments({
        ...(config.github.token ? { token: readSecret(config.github.token, env) } : {}),
        ...(config.github.app
          ? { app: { appId: config.github.app.appId, installationId: config.github.app.installationId, privateKey: readSecret(config.github.app.privateKey, env) } }
          : {}),
        repositories: config.github.repositories,
        apiUrl: config.github.apiUrl,
        logger,
        store: () => store,
      }),
    );
  }
  const metrics = config.metrics ? createWorkerMetrics({ logger, store: () => store }) : undefined;
  if (metrics) {
    chats.push(metrics.listener);
    runs.push(metrics.runs);
  }
  const chat = fanOut(chats);
  let server: MetricsServer | undefined;
  let stopWatchingState: (() => void) | undefined;
  return {
    chat,
    rollout: (rollout) => scopedRollout(rollout, runs),
    onQueueReceive: metrics ? (ok) => metrics.queueReceived(ok) : undefined,
    async start(workerStore) {
      store = workerStore;
      if (metrics && config.metrics) {
        server = await startMetricsServer(metrics, {
          port: config.metrics.port,
          host: config.metrics.host,
          healthyPollMs: config.metrics.healthyPollSeconds * 1000,
          logger: logger.child({ component: 'metrics' }),
        });
        stopWatchingState = metrics.watchState();
      }
    },
    async close(timeoutMs) {
      stopWatchingState?.();
      await chat.flush(timeoutMs);
      await server?.close();
    },
  };
}
