import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Fleet } from '../../local-fleet/fleet.js';
import { fleetWorkerConfigObject, fleetWorkerEnvironment as fleetEnvironment } from '../../local-fleet/worker-config.js';
import { parseWorkerConfig, type WorkerConfig } from '../../src/config/worker-config.js';
import { TEST_KEY, TEST_KEY_ENV } from './worker-fixtures.js';

// The fleet's worker configuration, signed with the tests' key, with debug logs for assertions.

const options = (rollout: Record<string, unknown>, policy: Record<string, unknown>) => ({
  signingKey: { id: TEST_KEY.id, env: TEST_KEY_ENV },
  stateDirectory: mkdtempSync(join(tmpdir(), 'harbormaster-state-')),
  rollout,
  policy,
  logLevel: 'debug',
});

export function fleetWorkerConfig(fleet: Fleet, rollout: Record<string, unknown> = {}, policy: Record<string, unknown> = {}): WorkerConfig {
  return parseWorkerConfig(stringify(fleetWorkerConfigObject(fleet, options(rollout, policy))));
}

export function writeFleetWorkerConfig(fleet: Fleet, path: string, rollout: Record<string, unknown> = {}): void {
  writeFileSync(path, stringify(fleetWorkerConfigObject(fleet, options(rollout, {}))));
}

export function fleetWorkerEnvironment(fleet: Fleet): NodeJS.ProcessEnv {
  return fleetEnvironment(fleet, { env: TEST_KEY_ENV, secret: TEST_KEY.secret.toString() });
}
