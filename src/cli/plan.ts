import { readFileSync } from 'node:fs';
import { silentChat } from '../chat/chat.js';
import type { WorkerConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import { servedRelease } from '../request/acceptance.js';
import { validateReleaseRequest, type ReleaseRequest } from '../request/release-request.js';
import { createRollout } from '../rollout/create-rollout.js';
import { describePlan } from '../rollout/plan.js';
import { createStepRunner, type StepJournal } from '../rollout/step-runner.js';
import { buildRequest, type EnqueueOptions } from './enqueue.js';
import { UsageError } from './usage-error.js';

// `harbormaster plan`: what a release would do, resolved against the real fleet, with every host's
// preflight (SSH, engine) checked. It pulls nothing, stops nothing, registers nothing.

export function planRequest(options: EnqueueOptions & { request?: string }, env: NodeJS.ProcessEnv): ReleaseRequest {
  if (!options.request) return buildRequest({ requestedBy: 'plan', ...options }, env);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(options.request, 'utf8'));
  } catch (error) {
    throw new UsageError(`cannot read the request ${options.request}: ${(error as Error).message}`);
  }
  const validated = validateReleaseRequest(raw);
  if (!validated.ok) throw new UsageError(`${options.request}: ${validated.reason}`);
  return validated.value;
}

/** Prints the plan; resolves true when every host passed preflight. */
export async function printPlan(config: WorkerConfig, request: ReleaseRequest, logger: Logger, write: (line: string) => void, env = process.env): Promise<boolean> {
  const served = servedRelease(request, config.releases);
  if (!served.ok) throw new UsageError(`refused (${served.code}): ${served.reason}`);
  const settings = served.release.releaseConfig.rollout;
  if (!settings) throw new UsageError(`no rollout is configured for ${request.target.stack}/${request.target.release}`);
  const wiring = createRollout(config, logger, silentChat, env);
  try {
    const resolved = await wiring.runner.resolve(request, served.release.deployment, settings);
    const plan = wiring.runner.plan(resolved, settings);
    write(`release ${request.image} to ${resolved.target}`);
    for (const line of describePlan(plan)) write(`  ${line}`);
    const results: string[] = [];
    const journal: StepJournal = {
      begin() {},
      end: ({ host, step, ok, error }) => void results.push(`  preflight ${host}: ${step} ${ok ? 'ok' : `FAILED: ${error}`}`),
    };
    let passed = true;
    try {
      const sessions = await wiring.runner.preflight(resolved.hosts, { image: request.image, auth: undefined, pull: false, concurrency: settings.policy.pullConcurrency, run: createStepRunner(logger, journal) });
      await Promise.all([...sessions.values()].map((s) => s.close()));
    } catch {
      passed = false;
    }
    results.sort().forEach((line) => write(line));
    write(passed ? 'preflight passed; nothing was changed' : 'preflight FAILED; a release now would be refused; nothing was changed');
    return passed;
  } finally {
    wiring.close();
  }
}
