import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log/logger.js';
import type { WorkerMetrics } from './worker-metrics.js';

// GET /metrics (Prometheus text format) and GET /healthz (for the systemd unit and the container's
// health check): 200 while the worker can reach its queue, 503 once receives have failed for longer
// than `healthyPollMs` in a row. Anything else is 404.

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(metrics: WorkerMetrics, options: { port: number; host: string; healthyPollMs: number; logger: Logger }): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (error: unknown) => {
          options.logger.warn({ err: error }, 'collecting metrics failed');
          response.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n');
        },
      );
      return;
    }
    if (path === '/healthz') {
      const { okAt, failingSince } = metrics.lastPoll();
      const failingForMs = failingSince === undefined ? 0 : Date.now() - failingSince;
      const healthy = failingSince === undefined || failingForMs <= options.healthyPollMs;
      const body = { status: healthy ? 'ok' : 'queue unreachable', lastSuccessfulPoll: okAt !== undefined ? new Date(okAt).toISOString() : null, failingForSeconds: Math.round(failingForMs / 1000) };
      response.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
      return;
    }
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  server.unref();
  const { port } = server.address() as AddressInfo;
  options.logger.info({ port, host: options.host }, 'metrics and /healthz listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
