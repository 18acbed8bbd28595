import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Chat, ChatMessage } from '../chat/chat.js';
import { currentRelease, type RunListener } from '../chat/release-scope.js';
import type { Logger } from '../log/logger.js';
import type { ReleaseRecord } from '../state/release-record.js';
import type { ReleaseStore } from '../state/release-store.js';

// The worker's Prometheus metrics. Counts and durations come from the release messages the rollout
// posts (a listener beside chat) and from the queue's receives; what stands now (releases waiting,
// hosts out of service, restores pending) is read from the release state by the worker on its own
// clock (watchState: every 30 s, and when a release here ends), never by a scrape: a scrape serves the
// figures of the last reading, so however often or from wherever /metrics is asked, the state is read
// no more. A worker that starts after another died reports what that one left. With several workers
// sharing a DynamoDB store, each reports the same state figures (take their max, not their sum).

export interface WorkerMetricsOptions {
  readonly logger: Logger;
  /** Read when scraped; undefined until the worker has its store. */
  readonly store?: () => ReleaseStore | undefined;
  /** Process metrics (CPU, memory, event loop) too; default true. */
  readonly processMetrics?: boolean;
}

export interface WorkerMetrics {
  readonly registry: Registry;
  /** Hand it every release message (fan it out beside chat). */
  readonly listener: Chat;
  /** Hand it to scopedRollout: leases held while releases run here. */
  readonly runs: RunListener;
  queueReceived(ok: boolean): void;
  /** Reads the release state once (one reading at a time) and keeps its figures for the scrapes. */
  readState(): Promise<void>;
  /** Reads the release state now and every `everyMs` until the returned stop is called. */
  watchState(everyMs?: number): () => void;
  /** Epoch ms of the last receive that answered, the first receive failure since, if any. */
  readonly lastPoll: () => { readonly okAt?: number; readonly failingSince?: number };
}

/** How often the worker reads the release state for the metrics. */
export const STATE_EVERY_MS = 30_000;

const NOT_RESTORED_GROUP = new Set(['suspending', 'suspended', 'resuming']);
const NOT_RESTORED_ALARMS = new Set(['muting', 'muted', 'unmuting']);

/** Auto Scaling processes or alarm actions this release changed and has not put back yet. */
export function restorePending(record: ReleaseRecord): boolean {
  return (
    (record.pending?.length ?? 0) > 0 ||
    Object.values(record.scaling).some((group) => NOT_RESTORED_GROUP.has(group.phase)) ||
    (record.alarms !== undefined && NOT_RESTORED_ALARMS.has(record.alarms.phase))
  );
}

export function createWorkerMetrics(options: WorkerMetricsOptions): WorkerMetrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'harbormaster_' });
  const log = options.logger.child({ component: 'metrics' });

  const releases = new Counter({ name: 'harbormaster_releases_total', help: 'Releases ended on this worker, by outcome.', labelNames: ['outcome'], registers: [registry] });
  const duration = new Histogram({
    name: 'harbormaster_release_duration_seconds',
    help: 'From a release first changing the fleet to its end, by outcome.',
    labelNames: ['outcome'],
    buckets: [30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
    registers: [registry],
  });
  const outOfService = new Histogram({
    name: 'harbormaster_host_out_of_service_seconds',
    help: 'How long each host released was out of service (out of its load balancers or without a live container).',
    buckets: [5, 10, 20, 30, 60, 120, 300, 600, 1800],
    registers: [registry],
  });
  const leases = new Gauge({ name: 'harbormaster_leases_held', help: 'Target leases this worker holds for releases running here.', registers: [registry] });
  const receiveErrors = new Counter({ name: 'harbormaster_queue_receive_errors_total', help: 'Receives from the request queue that failed.', registers: [registry] });
  const lastPoll = new Gauge({ name: 'harbormaster_queue_last_successful_poll_timestamp_seconds', help: 'When the request queue last answered a receive (Unix time).', registers: [registry] });

  // Each gauge below is set from a reading of the release state, never when scraped.
  const counts: Array<{ gauge: Gauge; count: (records: ReleaseRecord[]) => number }> = [];
  const readOnce = async () => {
    const store = options.store?.();
    if (!store) return;
    try {
      const records = await store.unfinished();
      for (const { gauge, count } of counts) gauge.set(count(records));
    } catch (error) {
      log.warn({ err: error }, 'reading the release state for metrics failed; the figures of the last reading stay');
    }
  };
  // One reading at a time; one asked for during a reading runs once after it (it may see more).
  let reading: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const readState = (): Promise<void> => {
    if (!reading) return (reading = readOnce().finally(() => (reading = undefined)));
    return (next ??= reading.then(() => {
      next = undefined;
      return readState();
    }));
  };
  const fromState = (name: string, help: string, count: (records: ReleaseRecord[]) => number) => {
    counts.push({ gauge: new Gauge({ name, help, registers: [registry] }), count });
  };
  fromState('harbormaster_releases_waiting', 'Releases accepted (or paused at a safe point) and not running yet, in the release state.', (records) =>
    records.filter((r) => r.status === 'accepted' || r.status === 'interrupted').length,
  );
  fromState('harbormaster_hosts_out_of_service', 'Hosts that releases took out of service and have not put back yet, in the release state.', (records) =>
    records.reduce((sum, r) => sum + Object.values(r.hosts).filter((h) => h.outAt !== undefined && h.backAt === undefined && h.progress !== 'gone').length, 0),
  );
  fromState(
    'harbormaster_restores_pending',
    'Releases whose Auto Scaling processes or alarm actions are not back as they were before the release: the fleet is not whole while this is above 0.',
    (records) => records.filter(restorePending).length,
  );

  let okAt: number | undefined;
  let failingSince: number | undefined;
  return {
    registry,
    listener: {
      post(message: ChatMessage) {
        const event = message.event;
        if (event?.kind === 'host-done') outOfService.observe(event.outOfServiceMs / 1000);
        if (event?.kind !== 'ended') return;
        // A release of this worker ended: the state figures are read again now, not at the next tick.
        void readState();
        if (event.outcome === 'interrupted') return;
        releases.inc({ outcome: event.outcome });
        // Only a release that changed the fleet has a duration (a refused or superseded one never started).
        const since = currentRelease()?.record.startedAt;
        const ms = event.durationMs ?? (since ? Date.now() - Date.parse(since) : undefined);
        if (ms !== undefined && ms >= 0) duration.observe({ outcome: event.outcome }, ms / 1000);
      },
      flush: async () => undefined,
    },
    runs: { runStarted: () => leases.inc(), runEnded: () => leases.dec() },
    readState,
    watchState(everyMs = STATE_EVERY_MS) {
      void readState();
      const timer = setInterval(() => void readState(), everyMs);
      timer.unref();
      return () => clearInterval(timer);
    },
    queueReceived(ok: boolean) {
      if (ok) {
        okAt = Date.now();
        failingSince = undefined;
        lastPoll.set(okAt / 1000);
      } else {
        receiveErrors.inc();
        failingSince ??= Date.now();
      }
    },
    lastPoll: () => ({ ...(okAt !== undefined ? { okAt } : {}), ...(failingSince !== undefined ? { failingSince } : {}) }),
  };
}
