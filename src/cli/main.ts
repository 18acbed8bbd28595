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

program
  .command('enqueue')
  .description('Put a signed release request on the queue and print its release id (what CI runs).')
  .addOption(new Option('--queue-url <url>', 'the request queue').env('HARBORMASTER_QUEUE_URL'))
  .addOption(new Option('--region <region>', 'AWS region (default: AWS_REGION or the queue URL)'))
  .addOption(new Option('--endpoint <url>', 'AWS-compatible endpoint, for moto or LocalStack').env('HARBORMASTER_AWS_ENDPOINT'))
  .requiredOption('--stack <stack>', 'the stack tag of the target')
  .requiredOption('--release <release>', 'the release tag of the target')
  .option('--deployment <deployment>', 'the deployment tag (integration, staging, production, ...)')
  .option('--branch <branch>', 'the source branch; remote-run/<user>/<feature> targets that user\'s personal deployment')
  .requiredOption('--image <reference>', 'the image to release: registry/path:tag or registry/path@sha256:...')
  .option('--requested-by <who>', 'who asked (default: the CI user)')
  .option('--commit <sha>', 'the source commit (default: from the CI environment)')
  .option('--build-url <url>', 'the build that made the image (default: from the CI environment)')
  .option('--dry-run', 'print the request that would be sent, unsigned, and send nothing')
  .option('--wait', 'wait for the release to end (in the workers\' DynamoDB release state) and exit with its outcome')
  .addOption(new Option('--state-table <table>', 'the workers\' DynamoDB release table, for --wait').env('HARBORMASTER_STATE_TABLE'))
  .option('--wait-minutes <minutes>', 'how long --wait waits at most', '60')
  .action(async (options: EnqueueOptions & { dryRun?: boolean; wait?: boolean; stateTable?: string; waitMinutes: string }) => {
    const [{ enqueue, buildRequest }, { exitCodeFor, waitForRelease }] = await Promise.all([import('./enqueue.js'), import('./wait-for-release.js')]);
    if (options.dryRun) {
      process.stdout.write(`${JSON.stringify(buildRequest(options, process.env), null, 2)}\n`);
      return;
    }
    const minutes = Number(options.waitMinutes);
    if (options.wait && !options.stateTable) throw new UsageError('--wait needs --state-table (or HARBORMASTER_STATE_TABLE): the workers\' DynamoDB release table');
    if (options.wait && !(minutes > 0)) throw new UsageError(`--wait-minutes must be a number of minutes above 0, not '${options.waitMinutes}'`);
    const sent = await enqueue(options, process.env);
    process.stdout.write(`${sent.request.releaseId}\n`);
    if (!options.wait) return;
    const result = await waitForRelease({
      releaseId: sent.request.releaseId,
      table: options.stateTable!,
      region: sent.region,
      ...(sent.endpoint ? { endpoint: sent.endpoint } : {}),
      timeoutMs: minutes * 60_000,
      progress: (line) => process.stderr.write(`harbormaster: ${line}\n`),
    });
    const why = 'reason' in result && result.reason ? `: ${result.reason}` : '';
    process.stderr.write(`harbormaster: release ${sent.request.releaseId} ${result.status === 'timed-out' ? `still not ended after ${minutes} min; stopped waiting (it goes on)` : result.status}${why}\n`);
    process.exitCode = exitCodeFor(result);
  });

program
  .command('worker')
  .description('Consume release requests and roll them out (what runs on the bastion).')
  .addOption(new Option('-c, --config <file>', 'the worker configuration (YAML)').env('HARBORMASTER_CONFIG').makeOptionMandatory())
  .action(async (options: { config: string }) => {
    const config = loadWorkerConfig(options.config);
    const logger = createLogger({ level: config.log.level });
    const [{ createWorker, runUntilSignalled }, { lazyRollout }, { createSignals }, { holdPointJournal }, { requestRefused }] = await Promise.all([
      import('../worker/worker.js'),
      import('../worker/lazy-rollout.js'),
      import('../chat/signals.js'),
      import('../rollout/hold-point.js'),
      import('../chat/release-messages.js'),
    ]);
    // Chat, GitHub deployments and metrics: the rollout and the worker post to signals.chat.
    const signals = createSignals(config, logger);
    const chat = signals.chat;
    const journal = holdPointJournal(process.env.HARBORMASTER_TEST_HOLD_AT, logger);
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
