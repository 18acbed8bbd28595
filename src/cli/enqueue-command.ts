import { Option, type Command } from 'commander';
import type { EnqueueOptions } from './enqueue.js';
import { EXIT_CODE_LINES } from './exit-codes.js';
import { UsageError } from './usage-error.js';
import { DEFAULT_UNRECORDED_SECONDS } from './wait-defaults.js';

// `harbormaster enqueue`: its options and help here; what it runs (the AWS clients, the stores for
// --promote-from) is loaded when it runs, as every command of main.ts loads its own.

/** Above the default policy.releaseTimeoutMinutes (120), with room for the queue and the restore. */
export const DEFAULT_WAIT_MINUTES = 150;
const DEFAULT_NO_WORKER_SECONDS = 30;


const HELP_AFTER = `
Signing (never a flag, so the key stays out of process listings):
  HARBORMASTER_SIGNING_KEY_ID     the key id the worker knows this CI by
  HARBORMASTER_SIGNING_KEY        the key itself (at least 32 bytes), or
  HARBORMASTER_SIGNING_KEY_FILE   a file holding it
Also read: HARBORMASTER_QUEUE_URL, HARBORMASTER_STATE_TABLE, HARBORMASTER_AWS_ENDPOINT,
  HARBORMASTER_REQUESTED_BY, AWS_REGION; who asked, the branch, the commit and the build URL
  from GitHub Actions, TeamCity and Jenkins (docs/ci.md).

Exit codes:
${EXIT_CODE_LINES.map(([code, meaning]) => `  ${code}  ${meaning}`).join('\n')}
`;

type EnqueueFlags = EnqueueOptions & { dryRun?: boolean; wait?: boolean; stateTable?: string; waitMinutes: string; idleQueueSeconds: string; unrecordedSeconds: string; promoteFrom?: string; config?: string };

export function registerEnqueue(program: Command): void {
  program
    .command('enqueue')
    .description('Put a signed release request on the queue and print its release id (what CI runs).')
    .addOption(new Option('--queue-url <url>', 'the request queue').env('HARBORMASTER_QUEUE_URL'))
    .addOption(new Option('--region <region>', 'AWS region (default: AWS_REGION or the queue URL)'))
    .addOption(new Option('--endpoint <url>', 'AWS-compatible endpoint, for moto or LocalStack').env('HARBORMASTER_AWS_ENDPOINT'))
    .requiredOption('--stack <stack>', 'the stack tag of the target')
    .requiredOption('--release <release>', 'the release tag of the target')
    .option('--deployment <deployment>', 'the deployment tag (integration, staging, production, ...); a remote-run/<user>/<feature> branch goes to that user\'s personal deployment instead')
    .option('--branch <branch>', 'the source branch; remote-run/<user>/<feature> targets that user\'s personal deployment')
    .option('--image <reference>', 'the image to release: registry/path:tag or registry/path@sha256:...')
    .option('--promote-from <deployment>', 'release the image current on that deployment of the same stack and release (read from the release state) instead of --image')
    .addOption(new Option('-c, --config <file>', 'for --promote-from: the worker configuration, whose release state (file or DynamoDB) is read').env('HARBORMASTER_CONFIG'))
    .option('--requested-by <who>', 'who asked (default: HARBORMASTER_REQUESTED_BY, else the CI user or job)')
    .option('--commit <sha>', 'the source commit (default: from the CI environment)')
    .option('--build-url <url>', 'the build that made the image (default: from the CI environment)')
    .option('--dry-run', 'print the request that would be sent, unsigned, and send nothing')
    .option('--wait', 'wait for the release to end (in the workers\' DynamoDB release state) and exit with its outcome')
    .addOption(new Option('--state-table <table>', 'the workers\' DynamoDB release table, for --wait').env('HARBORMASTER_STATE_TABLE'))
    .option('--wait-minutes <minutes>', 'how long --wait waits at most', String(DEFAULT_WAIT_MINUTES))
    .option('--idle-queue-seconds <seconds>', 'after this long with the request unknown to the release state, an idle queue means no worker takes requests (exit 8)', String(DEFAULT_NO_WORKER_SECONDS))
    .option('--unrecorded-seconds <seconds>', 'after this long with the request unknown to the release state, a queue with nothing waiting means the workers do not write --state-table (exit 7)', String(DEFAULT_UNRECORDED_SECONDS))
    .addHelpText('after', HELP_AFTER)
    .action(async (options: EnqueueFlags) => {
      const note = (line: string) => process.stderr.write(`harbormaster: ${line}\n`);
      const { awsPlace, buildRequest } = await import('./enqueue.js');
      if (options.promoteFrom) {
        if (options.image) throw new UsageError('--image cannot be combined with --promote-from: the image is the one current on that deployment');
        if (!options.deployment) throw new UsageError('--promote-from needs --deployment: the deployment to promote to');
        const { readPromotion } = await import('./promote-from.js');
        const place = awsPlace(options, process.env);
        const promotion = await readPromotion(options.stack!, options.release!, options.promoteFrom, options.deployment, { ...(options.config ? { config: options.config } : {}), ...(options.stateTable ? { stateTable: options.stateTable } : {}), ...place }, (line) => note(`warning: ${line}`));
        note(`promoting ${promotion.image} from ${options.stack}/${options.release}/${options.promoteFrom} (release ${promotion.promotedFrom.releaseId})`);
        if (!promotion.byDigest) note(`the release on ${options.promoteFrom} named its image by tag, not by digest: this is the same image only if the tag has not moved since; release ${options.promoteFrom} by digest (registry/path@sha256:...) to promote exactly what ran there`);
        options.promotion = promotion;
      }
      if (options.dryRun) {
        process.stdout.write(`${JSON.stringify(buildRequest(options, process.env, note), null, 2)}\n`);
        return;
      }
      const minutes = Number(options.waitMinutes);
      const noWorkerSeconds = Number(options.idleQueueSeconds);
      if (options.wait && !options.stateTable) throw new UsageError('--wait needs --state-table (or HARBORMASTER_STATE_TABLE): the workers\' DynamoDB release table');
      if (options.wait && !(minutes > 0)) throw new UsageError(`--wait-minutes must be a number of minutes above 0, not '${options.waitMinutes}'`);
      if (options.wait && !(noWorkerSeconds > 0)) throw new UsageError(`--idle-queue-seconds must be a number of seconds above 0, not '${options.idleQueueSeconds}'`);
      const unrecordedSeconds = Number(options.unrecordedSeconds);
      if (options.wait && !(unrecordedSeconds > 0)) throw new UsageError(`--unrecorded-seconds must be a number of seconds above 0, not '${options.unrecordedSeconds}'`);
      const { enqueue } = await import('./enqueue-send.js');
      const sent = await enqueue(options, process.env, note);
      process.stdout.write(`${sent.request.releaseId}\n`);
      if (!options.wait) return;
      const { waitForSent } = await import('./wait-command.js');
      process.exitCode = await waitForSent(sent, { table: options.stateTable!, minutes, noWorkerSeconds, unrecordedSeconds }, note);
    });
}
