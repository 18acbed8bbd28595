import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

// An HTTP proxy on 127.0.0.1 in front of an AWS-compatible server (moto), that records how each call
// ended: answered by the server, or cut by the client before the answer was complete (an aborted
// call, such as a long poll a stopping worker gives up).

export interface WatchedCall {
  /** The X-Amz-Target header (JSON protocols: 'AmazonSQS.ReceiveMessage'), or the path. */
  readonly operation: string;
  outcome: 'pending' | 'answered' | 'cut';
}

export interface WatchingProxy {
  readonly endpoint: string;
  readonly calls: WatchedCall[];
  stop(): Promise<void>;
}

const operationOf = (headers: IncomingHttpHeaders, path: string) => String(headers['x-amz-target'] ?? path);

export async function startWatchingProxy(upstream: string): Promise<WatchingProxy> {
  const target = new URL(upstream);
  const calls: WatchedCall[] = [];
  const server = createServer((req, res) => {
    const call: WatchedCall = { operation: operationOf(req.headers, req.url ?? '/'), outcome: 'pending' };
    calls.push(call);
    const forward = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    res.on('close', () => {
      if (res.writableFinished) {
        call.outcome = 'answered';
      } else {
        call.outcome = 'cut';
        forward.destroy();
      }
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
