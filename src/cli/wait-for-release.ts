import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { clientOptions } from '../aws/clients.js';
import { isTransient } from '../aws/transient.js';
import { printable } from '../request/outside-text.js';
import { isFinal, type ReleaseStatus } from '../state/release-record.js';
import { readOutcome } from '../state/release-outcome.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import type { QueueWatch } from './queue-watch.js';
import { DEFAULT_UNRECORDED_SECONDS } from './wait-defaults.js';

// `enqueue --wait`: CI follows its release in the workers' shared release state (DynamoDB) until it
// ends, and fails the build when it did not succeed. Reads only the release's outcome (one GetItem of
// the `outcome` attribute every few seconds), under the CI policy deploy/cloudformation.yml grants:
// never the record, which holds the worker's configuration (the container spec and its environment).

/** The release state cannot be read for a reason that will not pass by itself: exit 7 (sent, cannot be followed). */
export class WaitFailedError extends Error {
  override name = 'WaitFailedError';
}

export type WaitResult =
  | { readonly status: ReleaseStatus; readonly reason?: string }
  | { readonly status: 'timed-out' }
  /** No worker took anything from the queue within the bound: the request waits there. */
  | { readonly status: 'no-worker' }
  /** The request was taken from the queue, but no worker recorded it in the table within the bound. */
  | { readonly status: 'unrecorded' };

/** The exit code `enqueue --wait` gives each ending (src/cli/exit-codes.ts; the README's table). */
export function exitCodeFor(result: WaitResult): ExitCode {
  switch (result.status) {
    case 'succeeded':
      return EXIT.ok;
    case 'superseded':
      return EXIT.superseded;
    case 'timed-out':
      return EXIT.timedOut;
    case 'no-worker':
      return EXIT.noWorker;
    case 'failed':
      return EXIT.needsPerson;
    case 'unrecorded':
      return EXIT.cannotFollow;
    default:
      return EXIT.notReleased;
  }
}

export interface WaitOptions {
  readonly releaseId: string;
  readonly table: string;
  readonly region: string;
  readonly endpoint?: string;
  readonly timeoutMs: number;
  readonly pollMs?: number;
  /** Told each time where the release stands changes. */
  readonly progress: (line: string) => void;
  /** The DynamoDB client to read with (tests); by default one made from region and endpoint, destroyed at the end. */
  readonly client?: DynamoDBClient;
  /** The queue, looked at while the release state does not know the release yet. */
  readonly queue?: QueueWatch;
  /** How long after sending, with the release still unknown, an idle queue means no worker takes requests. */
  readonly noWorkerMs?: number;
  /**
   * How long after sending, with the release still unknown, a queue with nothing waiting means the
   * worker that took the request does not write this table (a file store, another table).
   */
  readonly unrecordedMs?: number;
}

/** The queue is looked at this often while the release is unknown. */
const QUEUE_LOOK_MS = 10_000;


export async function waitForRelease(options: WaitOptions): Promise<WaitResult> {
  const client = options.client ?? new DynamoDBClient(clientOptions({ region: options.region, ...(options.endpoint ? { endpoint: options.endpoint } : {}) }));
  const startedAt = Date.now();
  const deadline = startedAt + options.timeoutMs;
  let said = '';
  let lastLook = 0;
  /** Consecutive looks that found the queue idle: two in a row, a look apart, say no worker is there. */
  let idleLooks = 0;
  /** Consecutive looks that found nothing waiting: two in a row, with the release unknown, say it was taken unrecorded. */
  let takenLooks = 0;
  try {
    for (;;) {
      // A read that fails for a while (throttling, the network) is tried again at the next poll; one
      // that cannot pass by itself (no such table, access denied, a damaged record) ends the wait at
      // once, rather than look like a release still on its way for an hour.
      const record = await readOutcome(client, options.table, options.releaseId).catch((error: unknown) => {
        if (isTransient(error)) return undefined;
        throw new WaitFailedError(`following release ${options.releaseId} in table ${options.table} failed: ${printable((error as Error).name ?? 'Error', 80)}: ${printable((error as Error).message ?? String(error), 300)}; the request was sent and goes on`, { cause: error });
      });
      const now = record ? record.progress : 'waiting for a worker to take the request';
      if (now !== said) options.progress(`release ${options.releaseId}: ${now}`);
      said = now;
      if (record && isFinal(record.status)) return { status: record.status, ...(record.reason ? { reason: record.reason } : {}) };
      if (!record && options.queue && Date.now() - lastLook >= Math.min(QUEUE_LOOK_MS, options.pollMs ?? QUEUE_LOOK_MS)) {
        lastLook = Date.now();
        const refused = await options.queue.refusal();
        if (refused) return { status: 'refused', reason: `refused before it was recorded (${refused.code}), now on the dead-letter queue: ${refused.reason}` };
        if (Date.now() - startedAt >= (options.noWorkerMs ?? 30_000)) {
          const idle = await options.queue.idle().catch(() => false);
          idleLooks = idle ? idleLooks + 1 : 0;
          if (idleLooks >= 2) return { status: 'no-worker' };
        }
        // A worker that writes this table claims a request within seconds of taking it from the queue.
        if (Date.now() - startedAt >= (options.unrecordedMs ?? DEFAULT_UNRECORDED_SECONDS * 1000)) {
          const taken = await options.queue.allTaken().catch(() => false);
          takenLooks = taken ? takenLooks + 1 : 0;
          if (takenLooks >= 2) return { status: 'unrecorded' };
        }
      }
      if (Date.now() > deadline) return { status: 'timed-out' };
      await sleep(options.pollMs ?? 5_000);
    }
  } finally {
    if (!options.client) client.destroy();
  }
}
