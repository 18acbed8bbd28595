import { setTimeout as sleep } from 'node:timers/promises';
import * as say from '../chat/release-messages.js';
import type { ContainerSpec, HostSession } from '../host/host-session.js';
import type { RecordedRelease } from '../state/recorded-release.js';
import type { RolloutEffects } from './release-runner.js';
import type { RolloutContext } from './rollout.js';

// The release task (rollout.releaseTask): a one-off container of the new image, with the release's
// container environment and volumes, run once per release on one host after the pre-pull and before
// any host leaves service (database migrations, Heroku's release phase). Its exit code gates the
// release. It has its own name, no ports, no restart policy, and none of the labels the host
// reconciler looks for, so it is never taken for the live or the new container.

export interface ReleaseTaskSettings {
  readonly command: readonly string[];
  readonly timeoutSeconds: number;
  readonly idempotent: boolean;
}

export interface TaskResult {
  /** undefined: it did not end within its time and was stopped. */
  readonly exitCode: number | undefined;
  /** The last lines it wrote. */
  readonly output: string;
}

/** Lines of the task's output kept for the log and chat. */
export const TASK_OUTPUT_LINES = 20;

export function releaseTaskSpec(spec: ContainerSpec, releaseId: string, task: ReleaseTaskSettings): ContainerSpec {
  return {
    ...spec,
    name: `${spec.name}-release-task-${releaseId.slice(0, 8)}`,
    ports: [],
    restartPolicy: 'no',
    command: [...task.command],
    labels: { 'harbormaster.managed': 'true', 'harbormaster.release-task': releaseId },
  };
}

/** Runs the task to its end (or its timeout), keeps the tail of its output, and removes its container. */
export async function runReleaseTask(session: HostSession, spec: ContainerSpec, timeoutSeconds: number, signal?: AbortSignal, pollMs = 500): Promise<TaskResult> {
  // One left by a worker that died while it ran: its name would block this one.
  await session.remove(spec.name);
  const id = await session.run(spec);
  try {
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
      signal?.throwIfAborted();
      const info = await session.inspect(id);
      if (!info || !info.running) return { exitCode: info?.exitCode ?? -1, output: await session.logs(id, TASK_OUTPUT_LINES) };
      if (Date.now() >= deadline) {
        await session.stop(id, 10);
        return { exitCode: undefined, output: await session.logs(id, TASK_OUTPUT_LINES) };
      }
      await sleep(pollMs, undefined, signal ? { signal } : undefined);
    }
  } finally {
    await session.remove(id).catch(() => undefined);
  }
}

/**
 * The release task on the first host: recorded `started` before its container runs; then
 * `succeeded`, or `failed` and the release turns back (nothing has left service: it ends refused).
 * A task that cannot be carried to its end (the host lost mid-run) stays `started`: a person looks.
 */
export async function runTaskOnce(effects: Pick<RolloutEffects, 'chat' | 'pollMs'>, release: RecordedRelease, sessions: ReadonlyMap<string, HostSession>, context: RolloutContext): Promise<void> {
  const plan = release.record.plan!;
  const task = plan.settings.releaseTask!;
  const id = plan.batches.flat()[0]!;
  const host = release.record.hosts[id]!;
  const label = host.name ?? host.address;
  const { target, request } = release.record;
  await release.update((draft) => {
    draft.releaseTask = { phase: 'started', host: label, startedAt: new Date().toISOString(), attempts: (draft.releaseTask?.attempts ?? 0) + 1 };
  });
  context.logger.info({ host: label, command: task.command }, 'release task started');
  let result: TaskResult;
  try {
    const session = sessions.get(id);
    if (!session) throw new Error('the host cannot be reached');
    result = await runReleaseTask(session, releaseTaskSpec(plan.spec, release.releaseId, task), task.timeoutSeconds, context.leaseLost, effects.pollMs);
  } catch (error) {
    context.leaseLost?.throwIfAborted();
    const reason = `could not be carried to its end on ${label}: ${(error as Error).message}`;
    context.logger.error({ err: error, host: label }, 'release task: could not be carried to its end');
    await release.update((draft) => {
      draft.direction = 'back';
      draft.failure = { step: 'release-task', reason };
    });
    return;
  }
  const ok = result.exitCode === 0;
  const outcome = result.exitCode === undefined ? `did not end within ${task.timeoutSeconds} s and was stopped` : `exited with code ${result.exitCode}`;
  context.logger[ok ? 'info' : 'error']({ host: label, exitCode: result.exitCode, output: result.output }, `release task ${outcome}`);
  await release.update((draft) => {
    Object.assign(draft.releaseTask!, { phase: ok ? 'succeeded' : 'failed', exitCode: result.exitCode ?? null, output: result.output });
    if (!ok) {
      draft.direction = 'back';
      draft.failure = { step: 'release-task', reason: `${task.command.join(' ')} ${outcome} on ${label}` };
    }
  });
  effects.chat.post(say.releaseTaskEnded({ target, image: request.image, host: label, ok, outcome, output: result.output }));
}
