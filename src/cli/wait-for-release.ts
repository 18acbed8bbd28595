import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { clientOptions } from '../aws/clients.js';
import { isTransient } from '../aws/transient.js';
import { printable } from '../request/outside-text.js';
import { isFinal, type ReleaseStatus } from '../state/release-record.js';
import { readOutcome } from '../state/release-outcome.js';

// `enqueue --wait`: CI follows its release in the workers' shared release state (DynamoDB) until it
// ends, and fails the build when it did not succeed. Reads only the release's outcome (one GetItem of
// the `outcome` attribute every few seconds), under the CI policy deploy/cloudformation.yml grants:
// never the record, which holds the worker's configuration (the container spec and its environment).

/** The release state cannot be read for a reason that will not pass by itself: exit 1. */
export class WaitFailedError extends Error {
  override name = 'WaitFailedError';
}

export type WaitResult = { readonly status: ReleaseStatus; readonly reason?: string } | { readonly status: 'timed-out' };

/** The exit code `enqueue --wait` gives each ending (see the README's "How CI enqueues"). */
export function exitCodeFor(result: WaitResult): number {
  switch (result.status) {
    case 'succeeded':
      return 0;
    case 'superseded':
      return 4;
    case 'timed-out':
      return 5;
    default:
      return 3;
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
}

export async function waitForRelease(options: WaitOptions): Promise<WaitResult> {
  const client = options.client ?? new DynamoDBClient(clientOptions({ region: options.region, ...(options.endpoint ? { endpoint: options.endpoint } : {}) }));
  const deadline = Date.now() + options.timeoutMs;
  let said = '';
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
      if (Date.now() > deadline) return { status: 'timed-out' };
      await sleep(options.pollMs ?? 5_000);
    }
  } finally {
    if (!options.client) client.destroy();
  }
}
