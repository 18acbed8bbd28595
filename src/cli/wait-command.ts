import { SQSClient } from '@aws-sdk/client-sqs';
import { clientOptions } from '../aws/clients.js';
import type { Sent } from './enqueue-send.js';
import { EXIT } from './exit-codes.js';
import { watchQueue } from './queue-watch.js';
import { exitCodeFor, WaitFailedError, waitForRelease } from './wait-for-release.js';

// `enqueue --wait`, once the request is sent: follows it in the release table, says how it ended on
// stderr, and gives the exit code.

export interface WaitSettings {
  readonly table: string;
  readonly minutes: number;
  readonly noWorkerSeconds: number;
  readonly unrecordedSeconds: number;
}

export async function waitForSent(sent: Sent, settings: WaitSettings, note: (line: string) => void): Promise<number> {
  const sqs = new SQSClient(clientOptions({ region: sent.region, ...(sent.endpoint ? { endpoint: sent.endpoint } : {}) }));
  try {
    const result = await waitForRelease({
      releaseId: sent.request.releaseId,
      table: settings.table,
      region: sent.region,
      ...(sent.endpoint ? { endpoint: sent.endpoint } : {}),
      timeoutMs: settings.minutes * 60_000,
      progress: note,
      queue: watchQueue(sqs, sent.queueUrl, sent.messageId, note),
      noWorkerMs: settings.noWorkerSeconds * 1000,
      unrecordedMs: settings.unrecordedSeconds * 1000,
    });
    const why = 'reason' in result && result.reason ? `: ${result.reason}` : '';
    const ending =
      result.status === 'timed-out'
        ? `still not ended after ${settings.minutes} min; stopped waiting (it goes on)`
        : result.status === 'no-worker'
          ? `not taken by any worker: messages wait on the queue and none is in flight; stopped waiting (the request stays on the queue)`
          : result.status === 'unrecorded'
            ? `was taken from the queue, but no worker recorded it in table ${settings.table} within ${settings.unrecordedSeconds} s: the workers do not write this table (state.store: file, or another table), so --wait cannot follow it; it goes on (on the bastion: harbormaster show ${sent.request.releaseId})`
            : result.status;
    note(`release ${sent.request.releaseId} ${ending}${why}`);
    return exitCodeFor(result);
  } catch (error) {
    if (!(error instanceof WaitFailedError)) throw error;
    note(error.message);
    return EXIT.cannotFollow;
  } finally {
    sqs.destroy();
  }
}
