import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as say from '../../src/chat/release-messages.js';
import { createLogger } from '../../src/log/logger.js';
import { startMetricsServer, type MetricsServer } from '../../src/metrics/metrics-server.js';
import { createWorkerMetrics, type WorkerMetrics } from '../../src/metrics/worker-metrics.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import type { ReleaseRecord } from '../../src/state/release-record.js';
import type { ReleaseStore } from '../../src/state/release-store.js';
import { storedRelease, whileRunning } from '../support/signal-release.js';
import { eventually } from '../support/worker-fixtures.js';

// The worker's metrics as Prometheus scrapes them: over HTTP from the metrics server on loopback,
// in the text exposition format, with /healthz beside them.

const TARGET = 'data/ingest/staging';
const IMAGE = 'registry.example.com:5000/data/ingest:v2';

/** The value of one sample line, e.g. `harbormaster_releases_total{outcome="succeeded"}`. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('worker metrics', () => {
  const store = new MemoryReleaseStore();
  let metrics: WorkerMetrics;
  let server: MetricsServer;
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${server.port}${path}`);
    return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
  };
  const scrape = async () => (await get('/metrics')).text;

  before(async () => {
    const logger = createLogger({ level: 'silent' });
    metrics = createWorkerMetrics({ logger, store: () => store, processMetrics: false });
    // healthyPollMs -1: unhealthy from the first failed receive, so the test needs no clock.
    server = await startMetricsServer(metrics, { port: 0, host: '127.0.0.1', healthyPollMs: -1, logger });
  });
  after(() => server.close());

  it('counts releases by outcome, their duration, each host out of service, and leases held while one runs', async () => {
    const { release } = await storedRelease({}, store);
    let leasesDuring: number | undefined;
    await whileRunning(
      release,
      metrics.listener,
      async (chat) => {
        chat.post(say.hostProgress({ target: TARGET, host: 'h1', index: 1, total: 1, durationMs: 15_000, outOfServiceMs: 12_000 }));
        chat.post(say.releaseSucceeded({ target: TARGET, image: IMAGE, hosts: ['h1'], durationMs: 60_000 }));
        leasesDuring = sample(await scrape(), 'harbormaster_leases_held');
      },
      [metrics.runs],
    );
    const text = await scrape();
    assert.equal(leasesDuring, 1);
    assert.equal(sample(text, 'harbormaster_leases_held'), 0);
    assert.equal(sample(text, 'harbormaster_releases_total{outcome="succeeded"}'), 1);
    assert.equal(sample(text, 'harbormaster_release_duration_seconds_sum{outcome="succeeded"}'), 60);
    assert.equal(sample(text, 'harbormaster_host_out_of_service_seconds_count'), 1);
    assert.equal(sample(text, 'harbormaster_host_out_of_service_seconds_sum'), 12);
    assert.equal(sample(text, 'harbormaster_host_out_of_service_seconds_bucket{le="20"}'), 1);
  });

  it('reads releases waiting, hosts out of service and restores pending from the release state', async () => {
    const { release } = await storedRelease({}, store);
    await storedRelease({}, store);
    await release.update((draft) => {
      draft.status = 'running';
      draft.scaling = { 'ingest-asg': { before: [], suspend: ['Launch'], phase: 'suspended' } };
      draft.hosts = { 'i-1': { instanceId: 'i-1', address: '10.0.0.1', before: { registeredIn: [], live: null }, progress: 'in-progress', outAt: new Date().toISOString() } };
    });
    await metrics.readState();
    let text = await scrape();
    assert.equal(sample(text, 'harbormaster_restores_pending'), 1, 'the fleet is not whole');
    assert.equal(sample(text, 'harbormaster_hosts_out_of_service'), 1);
    // The one accepted in the first test ended there without its record changing: both wait in the state.
    assert.equal(sample(text, 'harbormaster_releases_waiting'), 2);

    await release.update((draft) => {
      draft.scaling['ingest-asg']!.phase = 'resumed';
      draft.hosts['i-1']!.backAt = new Date().toISOString();
      draft.status = 'succeeded';
    });
    assert.equal(sample(await scrape(), 'harbormaster_restores_pending'), 1, 'a scrape serves the last reading');
    await metrics.readState();
    text = await scrape();
    assert.equal(sample(text, 'harbormaster_restores_pending'), 0, 'whole again');
    assert.equal(sample(text, 'harbormaster_hosts_out_of_service'), 0);
  });

  it('a scrape never reads the release state: the worker reads it on its own clock, however often /metrics is asked', async () => {
    let reads = 0;
    const counted = new Proxy(store, { get: (target, key, receiver) => (key === 'unfinished' ? () => (reads++, target.unfinished()) : Reflect.get(target, key, receiver)) });
    const logger = createLogger({ level: 'silent' });
    const watched = createWorkerMetrics({ logger, store: () => counted, processMetrics: false });
    const own = await startMetricsServer(watched, { port: 0, host: '127.0.0.1', healthyPollMs: 60_000, logger });
    let stop = watched.watchState(60_000);
    try {
      await eventually('the first reading, at once', () => reads === 1);
      await Promise.all(Array.from({ length: 50 }, () => fetch(`http://127.0.0.1:${own.port}/metrics`).then((r) => r.text())));
      assert.equal(reads, 1, '50 scrapes, no reading');
      stop();
      stop = watched.watchState(100);
      await eventually('readings on the worker’s clock', () => reads >= 4);
    } finally {
      stop();
      await own.close();
    }
    const stopped = reads;
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(reads, stopped, 'no reading once stopped');
    // A release of this worker ends: read again at once.
    const { release } = await storedRelease({}, store);
    await whileRunning(release, watched.listener, async (chat) => chat.post(say.releaseSucceeded({ target: TARGET, image: IMAGE, hosts: ['h1'], durationMs: 1_000 })));
    await eventually('a reading when a release ended', () => reads === stopped + 1);
  });

  it('reads the state once at a time: a reading asked for during one runs once after it, so it sees what changed meanwhile', async () => {
    let reads = 0;
    let answer: (() => void) | undefined;
    const slow = { unfinished: () => (reads++, new Promise<ReleaseRecord[]>((resolve) => (answer = () => resolve([])))) } as unknown as ReleaseStore;
    const metrics = createWorkerMetrics({ logger: createLogger({ level: 'silent' }), store: () => slow, processMetrics: false });
    const first = metrics.readState();
    const asked = [metrics.readState(), metrics.readState()];
    assert.equal(reads, 1, 'one at a time');
    answer!();
    await first;
    await eventually('the one reading asked for meanwhile', () => reads === 2);
    answer!();
    await Promise.all(asked);
    assert.equal(reads, 2, 'two asked during the first: one more reading');
  });

  it('counts queue receive errors, keeps the last successful poll, and /healthz says whether the queue answers', async () => {
    metrics.queueReceived(false);
    const failing = await get('/healthz');
    assert.equal(failing.status, 503);
    assert.equal((JSON.parse(failing.text) as { status: string }).status, 'queue unreachable');
    metrics.queueReceived(true);
    const healthy = await get('/healthz');
    assert.equal(healthy.status, 200);
    const text = await scrape();
    assert.equal(sample(text, 'harbormaster_queue_receive_errors_total'), 1);
    assert.ok((sample(text, 'harbormaster_queue_last_successful_poll_timestamp_seconds') ?? 0) > 0);
    assert.match((await get('/metrics')).type ?? '', /^text\/plain; version=0\.0\.4/);
    assert.equal((await get('/other')).status, 404);
  });
});
