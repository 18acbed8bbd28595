import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { clientOptions } from '../aws/clients.js';
import { loadWorkerConfig } from '../config/worker-config.js';
import { parseImageReference } from '../request/image-reference.js';
import { resourceName } from '../request/names.js';
import { printable } from '../request/outside-text.js';
import type { ReleaseRequest } from '../request/release-request.js';
import { DynamoReleaseStore } from '../state/dynamodb-release-store.js';
import type { ReleaseSummary, TargetSummary } from '../state/target-summary.js';
import { openReleaseState, type ReleaseState } from './ops/release-state.js';
import { UsageError } from './usage-error.js';

// `enqueue --promote-from staging --deployment production`: the image current on another deployment
// of the same stack and release, as the release state records it (its target summary: the last
// release that succeeded, and the last that failed), enqueued as it was released there.

export interface Promotion {
  readonly image: string;
  readonly promotedFrom: NonNullable<ReleaseRequest['promotedFrom']>;
  /** The source of the promoted release: it describes the image, not the promoting job. */
  readonly source: ReleaseRequest['source'];
  /** The image is named by digest (registry/path@sha256:...), not by a tag that may have moved. */
  readonly byDigest: boolean;
}

const endOf = (summary: ReleaseSummary | undefined) => summary?.finishedAt ?? summary?.createdAt ?? '';

/** What to promote from a target's summary, or why nothing may be (one line). Pure. */
export function promotionFrom(summary: TargetSummary | undefined, target: string, deployment: string): { ok: true; promotion: Promotion } | { ok: false; reason: string } {
  const current = summary?.current;
  if (!current) {
    return { ok: false, reason: `cannot promote from ${target}: it has no succeeded release in the release state; release it there first` };
  }
  const failure = summary.lastFailure;
  if (failure && endOf(failure) > endOf(current)) {
    const why = failure.reason ? ` (${printable(failure.reason, 200)})` : '';
    return {
      ok: false,
      reason: `cannot promote from ${target}: its last release ${failure.releaseId} ${failure.status} at ${endOf(failure)}${why}, after the current one; promote once it has a succeeded release again`,
    };
  }
  // Exactly the image staging runs: by the digest its pull recorded, else the reference it was released as.
  const image = current.imageDigest ?? current.image;
  const parsed = parseImageReference(image);
  const byDigest = parsed.ok && parsed.image.digest !== undefined;
  return {
    ok: true,
    promotion: {
      image,
      promotedFrom: { deployment, releaseId: current.releaseId },
      source: { ...(current.branch ? { branch: current.branch } : {}), ...(current.commit ? { commit: current.commit } : {}), ...(current.buildUrl ? { buildUrl: current.buildUrl } : {}) },
      byDigest,
    },
  };
}

export interface PromotionStoreOptions {
  /** The worker configuration: its store (file or DynamoDB), as the ops commands open it. */
  readonly config?: string;
  /** Or the workers' DynamoDB release table. */
  readonly stateTable?: string;
  readonly region?: string;
  readonly endpoint?: string;
}

async function openStore(options: PromotionStoreOptions, warn: (line: string) => void): Promise<ReleaseState> {
  if (options.config) return openReleaseState(loadWorkerConfig(options.config), warn);
  if (!options.stateTable) throw new UsageError('--promote-from reads the release state: give --config (the worker configuration) or --state-table (the workers\' DynamoDB table)');
  if (!options.region) throw new UsageError('--promote-from with --state-table needs --region (or AWS_REGION)');
  const client = new DynamoDBClient(clientOptions({ region: options.region, ...(options.endpoint ? { endpoint: options.endpoint } : {}) }));
  // Read only: the retention is never used by reads.
  const history = new DynamoReleaseStore({ client, table: options.stateTable });
  return {
    history,
    read: async (what, work) => {
      try {
        return await work(history);
      } catch (error) {
        throw new Error(`cannot read ${what} from the release state (${history.description}): ${(error as Error).name}: ${printable((error as Error).message, 300)}`, { cause: error });
      }
    },
    close: () => client.destroy(),
  };
}

/** Reads what `--promote-from DEPLOYMENT` enqueues for stack/release; a refusal is a UsageError (exit 2, nothing sent). */
export async function readPromotion(stack: string, release: string, from: string, to: string, options: PromotionStoreOptions, warn: (line: string) => void): Promise<Promotion> {
  const named = resourceName('--promote-from').safeParse(from);
  if (!named.success) throw new UsageError(named.error.issues[0]?.message ?? '--promote-from must be a deployment name');
  if (from === to) throw new UsageError(`--promote-from ${from} names the deployment it would release to: promote from another deployment`);
  const target = `${stack}/${release}/${from}`;
  const state = await openStore(options, warn);
  try {
    const summaries = await state.read('the target summaries', (history) => history.targetSummaries());
    const decided = promotionFrom(summaries.find((s) => s.target === target), target, from);
    if (!decided.ok) throw new UsageError(decided.reason);
    return decided.promotion;
  } finally {
    state.close();
  }
}
