import type { WorkerConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import type { Rollout } from './rollout.js';

/** The rollout the worker runs for its configuration. */
export function createRollout(_config: WorkerConfig, _logger: Logger): Rollout {
  return {
    async run() {
      return { status: 'refused', reason: 'the rolling release engine is not part of this build yet' };
    },
  };
}
