import { Option, type Command } from 'commander';
import { loadWorkerConfig } from '../config/worker-config.js';
import { createLogger } from '../log/logger.js';

// `harbormaster worker`: what runs on the bastion. The release engine is loaded with the first
// release it carries (lazyRollout).

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('Consume release requests and roll them out (what runs on the bastion).')
    .addOption(new Option('-c, --config <file>', 'the worker configuration (YAML)').env('HARBORMASTER_CONFIG').makeOptionMandatory())
    .action(async (options: { config: string }) => {
      const config = loadWorkerConfig(options.config);
      const logger = createLogger({ level: config.log.level });
      const [{ createWorker, runUntilSignalled }, { lazyRollout }, { createSignals }, { preloadedStepJournal }] = await Promise.all([
        import('../worker/worker.js'),
        import('../worker/lazy-rollout.js'),
        import('../chat/signals.js'),
        import('../worker/preloaded-journal.js'),
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
        ...(signals.onQueueReceive ? { onQueueReceive: signals.onQueueReceive } : {}),
      });
      await signals.start(worker.store);
      await runUntilSignalled(worker, logger);
      rollout.close();
      // Messages still queued for chat and GitHub get a last chance, bounded so a dead endpoint cannot hold the exit.
      await signals.close(10_000);
      logger.info('worker stopped');
    });
}
