import { Agent, type AgentOptions, type ClientRequestArgs } from 'node:http';
import type { Duplex } from 'node:stream';
import { inspect } from 'node:util';
import type { Client } from 'ssh2';

// An http.Agent whose "sockets" are SSH channels: each HTTP request docker-modem makes gets a fresh
// stream-local forward (direct-streamlocal@openssh.com) to the engine's unix socket, opened on the
// one kept SSH connection. Opening a channel is one round trip on an existing connection, not a new
// TCP connection and key exchange. No keep-alive: the engine closes each channel after its response,
// so nothing idles between calls and close() has nothing to reap but in-flight requests.

/** Raised when the forward cannot be opened (engine socket missing, engine stopped, connection gone). */
export class ForwardOpenError extends Error {
  readonly socketPath: string;
  constructor(socketPath: string, cause: unknown) {
    super(`could not open a forward to ${socketPath}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'ForwardOpenError';
    this.socketPath = socketPath;
  }
}

/** Node's http client calls these on its socket in some paths (request timeouts, agent tuning); a channel has none. */
function withSocketMethods(channel: Duplex): Duplex {
  const socketLike = channel as Duplex & Record<string, unknown>;
  socketLike.setNoDelay ??= () => channel;
  socketLike.setKeepAlive ??= () => channel;
  socketLike.ref ??= () => channel;
  socketLike.unref ??= () => channel;
  return channel;
}

export class StreamLocalAgent extends Agent {
  constructor(
    private readonly client: Client,
    private readonly socketPath: string,
    options: AgentOptions = {},
  ) {
    super({ ...options, keepAlive: false });
  }

  // docker-modem runs util.inspect(requestOptions, { showHidden: true, depth: null }) on every request,
  // debug on or not, and the options hold this agent: without this, it walks the whole ssh2 client and
  // every open channel, which measured 150+ ms of blocked event loop per call once calls overlap.
  [inspect.custom](): string {
    return `StreamLocalAgent(${this.socketPath})`;
  }

  // Node's Agent accepts an asynchronous createConnection: return nothing and call back with the socket.
  override createConnection(_options: ClientRequestArgs, callback?: (error: Error | null, stream: Duplex) => void): undefined {
    if (!callback) throw new Error('StreamLocalAgent opens channels asynchronously: createConnection needs a callback');
    const fail = (error: unknown) => callback(new ForwardOpenError(this.socketPath, error), undefined as unknown as Duplex);
    try {
      this.client.openssh_forwardOutStreamLocal(this.socketPath, (error, channel) => {
        if (error) return fail(error);
        callback(null, withSocketMethods(channel));
      });
    } catch (error) {
      // ssh2 throws synchronously when the connection is already closed.
      fail(error);
    }
    return undefined;
  }
}
