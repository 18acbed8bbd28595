import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { createLogger, type Logger } from '../../src/log/logger.js';
import { MOTO_REGION } from '../../local-fleet/moto.js';
import type { SigningKey } from '../../src/request/signed-envelope.js';
import { parseWorkerConfig, type WorkerConfig } from '../../src/config/worker-config.js';
import { createWorker, type Worker, type WorkerParts } from '../../src/worker/worker.js';
import type { TestQueues } from './aws.js';

// The worker reads AWS credentials from the SDK's default chain, as on a bastion; moto accepts any.
process.env.AWS_ACCESS_KEY_ID ??= 'harbormaster-local';
process.env.AWS_SECRET_ACCESS_KEY ??= 'harbormaster-local';

export const TEST_KEY: SigningKey = { id: 'ci-test', secret: Buffer.from('test-signing-key-0123456789abcdef-0123456789') };
export const OTHER_KEY: SigningKey = { id: 'ci-test', secret: Buffer.from('another-key-entirely-0123456789abcdef-012345') };
export const TEST_KEY_ENV = 'HARBORMASTER_TEST_KEY';
export const REGISTRY = '127.0.0.1:5000';

/** The environment the CLI's `enqueue` needs to sign with TEST_KEY against moto. */
export function enqueueEnvironment(endpoint: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AWS_REGION: MOTO_REGION,
    AWS_ACCESS_KEY_ID: 'harbormaster-local',
    AWS_SECRET_ACCESS_KEY: 'harbormaster-local',
    HARBORMASTER_AWS_ENDPOINT: endpoint,
    HARBORMASTER_SIGNING_KEY_ID: TEST_KEY.id,
    HARBORMASTER_SIGNING_KEY: TEST_KEY.secret.toString(),
  };
}

export function workerConfigObject(endpoint: string, queues: TestQueues, overrides: Record<string, unknown> = {}) {
  return {
    aws: { region: MOTO_REGION, endpoint },
    queue: { url: queues.url, deadLetterUrl: queues.deadLetterUrl, waitSeconds: 1, visibilityTimeoutSeconds: 30 },
    signing: { keys: [{ id: TEST_KEY.id, env: TEST_KEY_ENV }], maxAgeSeconds: 300 },
    stateDirectory: mkdtempSync(join(tmpdir(), 'harbormaster-state-')),
    releases: [
      {
        stack: 'data',
        release: 'ingest',
        deployments: ['integration', 'staging'],
        personal: { users: ['alice'], deployment: 'personal-{user}' },
        images: { allowedRepositories: [`${REGISTRY}/data/ingest`] },
      },
    ],
    ...overrides,
  };
}

export function workerConfig(endpoint: string, queues: TestQueues, overrides: Record<string, unknown> = {}): WorkerConfig {
  return parseWorkerConfig(stringify(workerConfigObject(endpoint, queues, overrides)));
}

export function writeWorkerConfig(endpoint: string, queues: TestQueues, overrides: Record<string, unknown> = {}): string {
  const path = join(mkdtempSync(join(tmpdir(), 'harbormaster-config-')), 'worker.yml');
  writeFileSync(path, stringify(workerConfigObject(endpoint, queues, overrides)));
  return path;
}

export const workerEnvironment = (): NodeJS.ProcessEnv => ({ ...process.env, [TEST_KEY_ENV]: TEST_KEY.secret.toString() });

/** Runs a worker for the length of `body`, and always stops it, also when an assertion fails. */
export async function withWorker<T>(config: WorkerConfig, parts: WorkerParts, body: (worker: Worker) => Promise<T>): Promise<T> {
  const worker = createWorker(config, { env: workerEnvironment(), ...parts });
  const running = worker.run();
  try {
    return await body(worker);
  } finally {
    await worker.stop();
    await running;
    worker.close();
    // Stopping aborts the long poll on our side only: the server finishes it and may hand the next
    // test's message to that orphaned poll, hiding it for a visibility timeout. Outwait it.
    await new Promise((resolve) => setTimeout(resolve, config.queue.waitSeconds * 1000 + 300));
  }
}

/** Waits until a condition holds, or fails saying what was awaited. */
export async function eventually(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A logger whose JSON lines are kept for assertions. */
export function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: 'debug' }, sink), lines };
}
