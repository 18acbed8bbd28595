import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerSpec, HostSession } from '../host/host-session.js';

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
