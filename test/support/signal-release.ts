import type { Chat } from '../../src/chat/chat.js';
import { scopedRollout, type RunListener } from '../../src/chat/release-scope.js';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import type { RolloutContext } from '../../src/rollout/rollout.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { RecordedRelease } from '../../src/state/recorded-release.js';
import { newReleaseRecord } from '../../src/state/release-record.js';
import { createLogger } from '../../src/log/logger.js';
import { validRequest } from './requests.js';

// A release in a memory store, and a way to post chat messages "while it runs" (inside the release
// scope), for the tests of chat, GitHub and metrics listeners. No AWS, no hosts.

export async function storedRelease(overrides: Record<string, unknown> = {}, store = new MemoryReleaseStore()) {
  const request = validRequest(overrides) as unknown as ReleaseRequest;
  const target = `${request.target.stack}/${request.target.release}/${'deployment' in request.target ? request.target.deployment : `personal-${request.target.personal.user}`}`;
  const deployment = target.split('/')[2]!;
  const { record } = await store.claim(newReleaseRecord({ request, keyId: 'test', target, deployment, now: new Date(), worker: 'test' }));
  return { store, request, release: new RecordedRelease(store, record) };
}

/** Runs `body` as a rollout of `release` would run: what it posts to `chat` belongs to the release. */
export async function whileRunning(release: RecordedRelease, chat: Chat, body: (chat: Chat) => void | Promise<void>, listeners: RunListener[] = []): Promise<void> {
  const rollout = scopedRollout(
    {
      async run() {
        await body(chat);
        return { status: 'succeeded', hosts: 0 };
      },
    },
    listeners,
  );
  const context: RolloutContext = { logger: createLogger({ level: 'silent' }), stopRequested: new AbortController().signal, releaseConfig: { stack: 'data', release: 'ingest', deployments: ['staging'], images: { allowedRepositories: [] } }, occasion: 'new' };
  await rollout.run(release, context);
}

/** Reads the release again from its store (what a worker taking it over would start from). */
export async function reread(store: MemoryReleaseStore, release: RecordedRelease): Promise<RecordedRelease> {
  return new RecordedRelease(store, (await store.get(release.releaseId))!);
}
