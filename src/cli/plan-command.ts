import { Option, type Command } from 'commander';
import { loadWorkerConfig } from '../config/worker-config.js';
import { createLogger } from '../log/logger.js';
import type { EnqueueOptions } from './enqueue.js';

// `harbormaster plan`: its options here; plan.ts resolves and prints the plan.

export function registerPlan(program: Command): void {
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
}
