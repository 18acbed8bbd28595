import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, loadWorkerConfig } from '../config/worker-config.js';
import { SecretUnavailableError } from '../config/secret-source.js';
import { createLogger } from '../log/logger.js';
import type { EnqueueOptions } from './enqueue.js';
import { UsageError } from './usage-error.js';

// Each command loads what it needs when it runs (dynamic imports): a worker, which runs for months,
// never holds the modules of the other commands, and the release engine is loaded with the first
// release it carries (lazyRollout).

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function fail(error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`harbormaster: ${message.split('\n')[0]}\n`);
  const usage = error instanceof UsageError || error instanceof ConfigError || error instanceof SecretUnavailableError;
  process.exit(usage ? 2 : 1);
}

const program = new Command()
  .name('harbormaster')
  .description('Queue-driven rolling releases of Docker containers to EC2 fleets.')
  .version(version)
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(`harbormaster: ${text.replace(/^error: /, '').trim()}\n`) });

// `enqueue` and its AWS clients are not loaded for `harbormaster worker`.
if (process.argv[2] !== 'worker') (await import('./enqueue-command.js')).registerEnqueue(program);

program
  .command('worker')
  .description('Consume release requests and roll them out (what runs on the bastion).')
  .addOption(new Option('-c, --config <file>', 'the worker configuration (YAML)').env('HARBORMASTER_CONFIG').makeOptionMandatory())
  .action(async (options: { config: string }) => {
    const config = loadWorkerConfig(options.config);
    const logger = createLogger({ level: config.log.level });
    const [{ createWorker, runUntilSignalled }, { lazyRollout }, { createSignals }, { preloadedStepJournal }, { requestRefused }] = await Promise.all([
      import('../worker/worker.js'),
      import('../worker/lazy-rollout.js'),
      import('../chat/signals.js'),
      import('../worker/preloaded-journal.js'),
      import('../chat/release-messages.js'),
    ]);
    // Chat, GitHub deployments and metrics: the rollout and the worker post to signals.chat.
    const signals = createSignals(config, logger);
    const chat = signals.chat;
    const journal = preloadedStepJournal(logger);
    const rollout = lazyRollout(config, logger, chat, process.env, journal ? { journal } : {});
    const worker = createWorker(config, {
      rollout: signals.rollout(rollout.runner),
      logger,
      chat,
      onRefused: (notice) => chat.post(requestRefused(notice)),
      ...(signals.onQueueReceive ? { onQueueReceive: signals.onQueueReceive } : {}),
    });
    await signals.start(worker.store);
    await runUntilSignalled(worker, logger);
    rollout.close();
    // Messages still queued for chat and GitHub get a last chance, bounded so a dead endpoint cannot hold the exit.
    await signals.close(10_000);
    logger.info('worker stopped');
  });

program
  .command('plan')
  .description('Print what a release would do, host by host, with preflight results; changes nothing.')
  .addOption(new Option('-c, --config <file>', 'the worker configuration (YAML)').env('HARBORMASTER_CONFIG').makeOptionMandatory())
  .option('--request <file>', 'a release request as JSON (as `enqueue --dry-run` prints it)')
  .option('--stack <stack>')
  .option('--release <release>')
  .option('--deployment <deployment>')
  .option('--branch <branch>', 'remote-run/<user>/<feature> for a personal deployment')
  .option('--image <reference>')
  .action(async (options: EnqueueOptions & { config: string; request?: string }) => {
    const config = loadWorkerConfig(options.config);
    const logger = createLogger({ level: 'warn', toStderr: true });
    const { planRequest, printPlan } = await import('./plan.js');
    const passed = await printPlan(config, planRequest(options, process.env), logger, (line) => process.stdout.write(`${line}\n`));
    process.exitCode = passed ? 0 : 1;
  });

// Ops commands, one per file in ./ops; not loaded for `harbormaster worker`. Those that read, then
// the verbs that steer a target: they write its control (and rollback a new release); the worker carries them out.
if (process.argv[2] !== 'worker') {
  const [{ registerStatus }, { registerHistory }, { registerShow }, { registerHosts }] = await Promise.all([import('./ops/status.js'), import('./ops/history.js'), import('./ops/show.js'), import('./ops/hosts.js')]);
  registerStatus(program);
  registerHistory(program);
  registerShow(program);
  registerHosts(program);
  const [{ registerLock }, { registerStop }, { registerRollback }, { registerPromote }] = await Promise.all([import('./ops/lock.js'), import('./ops/stop.js'), import('./ops/rollback.js'), import('./ops/promote.js')]);
  registerLock(program);
  registerStop(program);
  registerRollback(program);
  registerPromote(program);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2);
  fail(error);
}
