// A host's floor: what no engine can go below for that host. Its live container stopped, started
// again and probed until the application's first good answer, outside any release.
import { probeHttp } from '../src/health/http-probe.js';
import type { HostConnector } from '../src/host/host-session.js';

/** Stop + start + first good answer of the live container on one host, outside any release (ms). */
export async function floorOf(connector: HostConnector, address: string): Promise<number> {
  const session = await connector.connect(address);
  try {
    const started = performance.now();
    await session.stop('ingest', 5);
    await session.start('ingest');
    const check = { port: 8080, path: '/health', expectStatus: 200 };
    while (!(await probeHttp(address, check, 1_000)).ok) await new Promise((resolve) => setTimeout(resolve, 5));
    return Math.round(performance.now() - started);
  } finally {
    await session.close();
  }
}
