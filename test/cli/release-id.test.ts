import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReleaseNotFoundError, resolveReleaseId } from '../../src/cli/ops/release-id.js';
import type { ReleaseRecord } from '../../src/state/release-record.js';
import type { ReleaseHistory, TargetSummary } from '../../src/state/target-summary.js';

// resolveReleaseId: a whole id, or a prefix of 8 or more characters unique among the releases the
// tables show (current, last failure, unfinished, each target's newest).

const A = 'a1b2c3d4-0000-4000-8000-000000000001';
const B = 'a1b2c3d4-1111-4000-8000-000000000002';
const C = 'c0ffee00-0000-4000-8000-000000000003';
const OLD = 'd00d0000-0000-4000-8000-000000000004';

const release = (releaseId: string, target: string, status: ReleaseRecord['status']) => ({ releaseId, target, status }) as ReleaseRecord;

function history(): ReleaseHistory {
  const summaries = [{ target: 'data/ingest/staging', current: { releaseId: A, status: 'succeeded' } }] as unknown as TargetSummary[];
  return {
    description: 'test history',
    targetSummaries: async () => summaries,
    openReleases: async () => [release(C, 'data/ingest/production', 'running')],
    recent: async (target) => (target === 'data/ingest/staging' ? [release(B, target, 'rolled-back'), release(A, target, 'succeeded')] : []),
    get: async () => undefined,
  };
}

describe('resolveReleaseId', () => {
  it('a whole id is returned as it is, without reading (even one no table shows)', async () => {
    assert.equal(await resolveReleaseId(history(), OLD), OLD);
    assert.equal(await resolveReleaseId(history(), OLD.toUpperCase()), OLD);
  });

  it('a unique prefix of 8 or more characters names its release, wherever the tables show it', async () => {
    assert.equal(await resolveReleaseId(history(), 'c0ffee00'), C);
    assert.equal(await resolveReleaseId(history(), 'a1b2c3d4-1'), B);
    assert.equal(await resolveReleaseId(history(), 'a1b2c3d4-0000'), A);
  });

  it('an ambiguous prefix is a mistake in the call that names every candidate', async () => {
    await assert.rejects(resolveReleaseId(history(), 'a1b2c3d4'), (error: Error) => {
      assert.equal(error.name, 'UsageError');
      assert.equal(
        error.message,
        `release id a1b2c3d4 is ambiguous: 2 releases start with it: ${A} (data/ingest/staging, succeeded), ${B} (data/ingest/staging, rolled-back); give more characters`,
      );
      return true;
    });
  });

  it('fewer than 8 characters, or not hexadecimal, is refused before any read', async () => {
    for (const given of ['a1b2c3d', 'zzzzzzzz', 'a1b2c3d4 ; rm']) {
      await assert.rejects(resolveReleaseId(history(), given), (error: Error) => error.name === 'UsageError' && /^not a release id: /.test(error.message), given);
    }
  });

  it('a prefix nothing the tables show starts with says so, and to give the whole id', async () => {
    await assert.rejects(resolveReleaseId(history(), 'd00d0000'), (error: Error) => error instanceof ReleaseNotFoundError && /give the whole id$/.test(error.message));
  });
});
