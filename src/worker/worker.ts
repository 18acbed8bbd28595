import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { clientOptions } from '../aws/clients.js';
import { damagedRecord, needsAttention } from '../chat/release-messages.js';
import type { Chat } from '../chat/chat.js';
import { refusalReports } from '../chat/refusal-reports.js';
import { heartbeatSeconds, type WorkerConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import { QueueConsumer } from '../queue/consumer.js';
import { SqsWorkQueue } from '../queue/sqs-queue.js';
import type { Rollout } from '../rollout/rollout.js';
import { WorkerKeyRing } from '../secrets/signing-keys.js';
import { FileReleaseStore } from '../state/file-release-store.js';
import type { DamageReport, ReleaseStore } from '../state/release-store.js';
import { lockStateDirectory, type StateDirectoryLock } from '../state/state-directory-lock.js';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ReleaseHistory } from '../state/target-summary.js';
import { DynamoReleaseStore } from '../state/dynamodb-release-store.js';
import { createRequestHandler, type RefusalNotice } from './handle-request.js';
import { releaseNewHosts, type NewHostsDeps } from './new-hosts.js';
import { ReleaseScheduler } from './release-scheduler.js';
import { repairUnfinished } from './repair.js';
import { takeRollbackRequests } from './rollback-requests.js';
import { vouchFor } from '../request/vouching.js';

/** Sweeps of the release state come at most this often, however many targets free up. */
const MIN_SWEEP_GAP_MS = 1000;

// Assembles a worker from its configuration. Effects (the rollout, chat, the store) are injected so
// the same assembly runs in production, in the local fleet and in tests. A worker starts carrying every
// unfinished release in its store to its end (repair) and takes requests from the queue alongside, several
// at once (one release per target, `parallelReleases` in all), and sweeps the store for unfinished
// releases every lease period (a dead worker's, once its lease has expired).

export interface WorkerParts {
  readonly rollout: Rollout;
  readonly logger: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /** Where release records live; by default files in the configuration's stateDirectory. */
  readonly store?: ReleaseStore;
  /** Told of releases, damaged records and refusals (an authentic request's refusal in a message of its own, the rest summarised). */
  readonly chat?: Chat;
  /** Told of every refusal as well (tests). */
  readonly onRefused?: (notice: RefusalNotice) => Promise<void> | void;
  readonly backoffMinMs?: number;
  /** This worker's name in records and logs; default host name and PID. */
  readonly workerId?: string;
  /** Told after every receive from the queue: whether it answered (metrics). */
  readonly onQueueReceive?: (ok: boolean) => void;
}

export interface Worker {
  readonly consumer: QueueConsumer;
  readonly store: ReleaseStore;
  /** Repairs unfinished releases, then consumes the queue until stopped. */
  run(): Promise<void>;
  /** Stops at the next safe point (also during the repair). */
  stop(): Promise<void>;
  readonly stopping: boolean;
  /** Frees the worker's clients; call after run() has settled. */
  close(): void;
  /** Reads every signing key file again (SIGHUP). */
  reloadKeys(): void;
}

export function createWorker(config: WorkerConfig, parts: WorkerParts): Worker {
  const log = parts.logger;
  // Keys are read before anything starts, so a missing key stops the worker at start, not at the first
  // request; a key file is read again when it changes (a rotation), or on SIGHUP.
  const keyRing = new WorkerKeyRing(config.signing.keys, log.child({ component: 'keys' }), parts.env);
  const scopes = new Map(config.signing.keys.flatMap((k) => (k.scope ? [[k.id, k.scope] as const] : [])));
  // Unique per process even where host names and PIDs repeat (containers on one host all run as PID 1).
  const workerId = parts.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const onDamage = (report: DamageReport) => {
    log.error({ releaseId: report.releaseId, file: report.where, problem: report.problem, recovered: report.recovered }, 'release record damaged');
    parts.chat?.post(damagedRecord(report));
  };
  const usesFiles = parts.store === undefined && config.state.store === 'file';
  let dynamo: DynamoDBClient | undefined;
  let store: ReleaseStore;
  if (parts.store) store = parts.store;
  else if (config.state.store === 'dynamodb') {
    dynamo = new DynamoDBClient(clientOptions(config.aws));
    store = new DynamoReleaseStore({ client: dynamo, table: config.state.table, retentionDays: config.state.retentionDays, logger: log.child({ component: 'state' }) });
  } else store = new FileReleaseStore(config.stateDirectory, { onDamage });
  const sqs = new SQSClient(clientOptions(config.aws, config.queue.waitSeconds));
  // A refused message the dead-letter queue cannot take is kept here (and acknowledged), never looped.
  const queue = new SqsWorkQueue(sqs, { queue: config.queue.url, deadLetter: config.queue.deadLetterUrl }, log, { undeliverableDirectory: join(config.stateDirectory, 'undeliverable') });
  const stopController = new AbortController();
  /** Aborted when the state directory lock is taken over: this worker's leases are lost at once. */
  const storeLost = new AbortController();
  const scheduler = new ReleaseScheduler({
    store,
    rollout: parts.rollout,
    vouch: (record) => vouchFor(record, { keys: () => keyRing.current(), releases: config.releases, scopes, get: (id) => store.get(id) }),
    logger: log,
    workerId,
    leaseMs: config.leaseSeconds * 1000,
    parallel: config.parallelReleases,
    stopRequested: stopController.signal,
    storeLost: storeLost.signal,
    ...(parts.chat ? { chat: parts.chat } : {}),
    onTargetFree: () => sweepSoon(),
  });
  // Refusals in chat: an authentic request's refusal in a message of its own, the rest counted and
  // summarised at most once a minute, so that a flood of forgeries is one message, not one each.
  const refusals = parts.chat ? refusalReports(parts.chat) : undefined;
  const handler = createRequestHandler({
    queue,
    policy: { keys: keyRing.current(), scopes, releases: config.releases, maxAgeSeconds: config.signing.maxAgeSeconds },
    currentKeys: () => keyRing.current(),
    scheduler,
    store,
    logger: log,
    workerId,
    unservedDeliveries: config.queue.unservedDeliveries,
    onRefused: (notice) => {
      refusals?.told(notice);
      return parts.onRefused?.(notice);
    },
    onUnreadable: (error) => parts.chat?.post(needsAttention({ what: `release ${error.releaseId}`, reason: `its record cannot be read (${error.problem}); nothing was done to its target` })),
  });
  const consumer = new QueueConsumer(
    queue,
    handler.handle,
    {
      waitSeconds: config.queue.waitSeconds,
      visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
      heartbeatSeconds: heartbeatSeconds(config.queue),
      // Room beyond the release slots, so refusals, duplicates and busy targets never wait behind releases.
      maxInFlight: config.parallelReleases + 2,
      ...(parts.backoffMinMs !== undefined ? { backoffMinMs: parts.backoffMinMs } : {}),
      ...(parts.onQueueReceive ? { onReceive: parts.onQueueReceive } : {}),
    },
    log,
    handler.admit,
  );
  let lock: StateDirectoryLock | undefined;
  const repair = { logger: log, store, scheduler, started: new Set<Promise<void>>() };
  // One sweep at a time, at most one a second: a sweep asked for while one runs (or too soon after
  // the last) runs once when it may.
  let sweeping: Promise<void> | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;
  let again = false;
  let lastSweepAt = 0;
  const sweepSoon = () => {
    if (stopController.signal.aborted) return;
    if (sweeping || sweepTimer) {
      again = true;
      return;
    }
    const wait = lastSweepAt + MIN_SWEEP_GAP_MS - Date.now();
    if (wait > 0) {
      sweepTimer = setTimeout(() => {
        sweepTimer = undefined;
        sweepSoon();
      }, wait);
      return;
    }
    again = false;
    lastSweepAt = Date.now();
    sweeping = rollbackRequests()
      .then(() => repairUnfinished(repair, 'sweep'))
      .catch((error: unknown) => log.error({ err: error }, 'sweeping for unfinished releases failed'))
      .finally(() => {
        sweeping = undefined;
        if (again) sweepSoon();
      });
  };
  // Operators' rollback requests become releases here, under this worker's configuration and history.
  const rollbackRequests = async () => {
    if (!('recent' in store)) return;
    const deps = { store: store as ReleaseStore & Pick<ReleaseHistory, 'recent'>, releases: config.releases, logger: log.child({ component: 'rollback-requests' }), workerId, ...(parts.chat ? { chat: parts.chat } : {}) };
    await takeRollbackRequests(deps);
  };
  // rollout.newHosts: every period, hosts that joined a served target since its release get its image.
  const watchNewHosts = () => {
    const periods = config.releases.flatMap((r) => (r.rollout?.newHosts ? [r.rollout.newHosts.periodSeconds] : []));
    if (periods.length === 0 || !('recent' in store)) return { stop: async () => undefined };
    // EC2 is loaded at the first look, so an idle worker without new hosts to watch stays small.
    let ec2: { destroy(): void } | undefined;
    const deps = async (): Promise<NewHostsDeps> => {
      const [{ EC2Client }, { Ec2InstanceFinder }] = await Promise.all([import('@aws-sdk/client-ec2'), import('../target/target-instances.js')]);
      const client = new EC2Client(clientOptions(config.aws));
      ec2 = client;
      return { store: store as ReleaseStore & Pick<ReleaseHistory, 'recent'>, finder: new Ec2InstanceFinder(client, log), releases: config.releases, logger: log.child({ component: 'new-hosts' }), workerId, onClaimed: () => sweepSoon() };
    };
    let wired: Promise<NewHostsDeps> | undefined;
    let looking: Promise<unknown> | undefined;
    const look = () => (looking ??= (wired ??= deps()).then((d) => releaseNewHosts(d)).catch((error: unknown) => log.warn({ err: error }, 'looking for new hosts failed')).finally(() => (looking = undefined)));
    const timer = setInterval(look, Math.min(...periods) * 1000);
    return {
      stop: async () => {
        clearInterval(timer);
        await looking;
        ec2?.destroy();
      },
    };
  };

  return {
    consumer,
    store,
    async run() {
      if (usesFiles) {
        lock = await lockStateDirectory(config.stateDirectory, {
          onLost: (reason) => {
            // Another worker took the directory over (this one was frozen past the lock's staleness):
            // two writers on one file store must not go on. The store writes nothing more, every
            // lease is lost at once (releases in hand stop acting, their AWS calls aborted), and no
            // request is taken.
            log.error({ reason, stateDirectory: config.stateDirectory }, 'the state directory lock was taken over by another worker: stopping at once');
            storeLost.abort(new Error(`the state directory lock was taken over: ${reason}`));
            stopController.abort();
            void consumer.stop();
          },
        });
        if (store instanceof FileReleaseStore) store.guardWith(lock);
      }
      const sweeper = setInterval(sweepSoon, config.leaseSeconds * 1000);
      const newHosts = watchNewHosts();
      try {
        log.info({ worker: workerId, store: store.description, parallelReleases: config.parallelReleases }, 'worker starting');
        await rollbackRequests().catch((error: unknown) => log.error({ err: error }, 'taking rollback requests failed'));
        await repairUnfinished(repair, 'start');
        if (!stopController.signal.aborted) await consumer.run();
      } finally {
        clearInterval(sweeper);
        await newHosts.stop();
        clearTimeout(sweepTimer);
        while (sweeping) await sweeping;
        while (repair.started.size > 0) await Promise.all(repair.started);
        refusals?.close();
        await lock?.release();
      }
    },
    async stop() {
      stopController.abort();
      await consumer.stop();
    },
    get stopping() {
      return stopController.signal.aborted;
    },
    reloadKeys: () => keyRing.reload(),
    close: () => {
      sqs.destroy();
      dynamo?.destroy();
    },
  };
}

/**
 * Runs a worker until SIGTERM or SIGINT: the first stops receiving and lets the release in hand reach
 * a safe point, then resolves; a second exits at once, leaving the release's record for the next start.
 */
export async function runUntilSignalled(worker: Worker, logger: Logger, exit: (code: number) => never = process.exit): Promise<void> {
  const onSignal = (signal: NodeJS.Signals) => {
    if (!worker.stopping) {
      logger.info({ signal }, 'signal received: finishing the release in hand to a safe point, then exiting (signal again to stop at once)');
      void worker.stop();
      return;
    }
    logger.warn({ signal }, 'second signal: stopping at once; the release record stays for the next start');
    exit(130);
  };
  // SIGHUP (systemd's ExecReload) reads the signing key files again instead of ending the process.
  const onHangUp = () => {
    logger.info({ signal: 'SIGHUP' }, 'signal received: reading the signing key files again');
    worker.reloadKeys();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onHangUp);
  try {
    await worker.run();
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('SIGHUP', onHangUp);
    worker.close();
  }
}
