import { setTimeout as sleep } from 'node:timers/promises';
import { Option, type Command } from 'commander';
import { callerArn } from '../../aws/caller-identity.js';
import type { ControlChange, ControlMark, TargetControl } from '../../state/control.js';
import { isFinal, type ReleaseRecord } from '../../state/release-record.js';
import { UsageError } from '../usage-error.js';
import { withOpsContext, type OpsContext, type OpsOptions } from './ops-command.js';
import { awsIdentity, osIdentity } from './identity.js';
import { operatorNote } from './operator.js';
import { opsPollMs } from './poll-interval.js';
import { writeAsOwner } from './state-owner.js';
import { checkTargets, knownTargets, servedTargets } from './targets.js';

// What the verbs that steer a target share (lock, unlock, stop, rollback, promote): the target checked
// against those the configuration serves, who is running the command (identity.ts; --by is a note
// beside it), the release in progress on the target, the control write, and waiting for a release to
// end. They only write the target's control (a rollback too is a request there); the worker carries it out.

/** The command cannot do what was asked (nothing in progress, no image to go back to): exit 1, nothing written. */
export class SteerRefusedError extends Error {
  override name = 'SteerRefusedError';
}

export interface SteerOptions extends OpsOptions {
  readonly by?: string;
}

export interface SteerContext extends OpsContext {
  readonly target: string;
  /** Who ran the command, as the store's side vouches for it (identity.ts). */
  readonly who: string;
  /** --by: what the person added, recorded beside `who`. */
  readonly note?: string;
  /** `who` and `note`, at `now`: what every control mark the command writes carries. */
  mark(now: Date): ControlMark;
  /** Tells the person running the command (stderr: stdout stays for --json). */
  say(line: string): void;
}

export function withSteerOptions(command: Command): Command {
  return command
    .addOption(new Option('-c, --config <file>', 'the worker configuration (YAML), as `harbormaster worker` reads it').env('HARBORMASTER_CONFIG').makeOptionMandatory())
    .option('--by <note>', 'a note recorded beside who you are (the AWS caller ARN for the DynamoDB store, the OS user for the file store), never instead of it')
    .option('--json', 'print what was recorded as JSON');
}

export async function withSteerContext<T>(target: string, options: SteerOptions, body: (context: SteerContext) => Promise<T>): Promise<T> {
  const note = operatorNote(options.by);
  return withOpsContext(options, async (context) => {
    // The file store: who the process is, read first; then the process takes the ids of the state
    // directory's owner for the rest of the command (state-owner.ts).
    const client = context.state.client;
    const osUser = client ? undefined : osIdentity();
    const restore = client ? undefined : writeAsOwner(context.config.stateDirectory);
    try {
      // Personal deployments are known once they have releases: finished (summaries) or not.
      const [summaries, open] = await Promise.all([context.state.read('the targets', (h) => h.targetSummaries()), context.state.read('the unfinished releases', (h) => h.openReleases())]);
      const known = knownTargets(servedTargets(context.config), [...summaries.map((t) => t.target), ...open.map((r) => r.target)]);
      checkTargets([target], known);
      const endpoint = context.config.aws.endpoint;
      const who = osUser ?? (await awsIdentity(() => callerArn(client!, endpoint ? { endpoint } : {})));
      const mark = (now: Date): ControlMark => ({ by: who, at: now.toISOString(), ...(note ? { note } : {}) });
      return await body({ ...context, target, who, ...(note ? { note } : {}), mark, say: (line) => process.stderr.write(`harbormaster: ${line}\n`) });
    } finally {
      restore?.();
    }
  });
}

/** The target's release in progress: the running one, else the newest that has not ended (it waits). */
export async function releaseInProgress(context: Pick<SteerContext, 'state' | 'target'>): Promise<ReleaseRecord | undefined> {
  const open = (await context.state.read('the unfinished releases', (h) => h.openReleases())).filter((r) => r.target === context.target && !isFinal(r.status));
  return open.find((r) => r.status === 'running') ?? open.sort((a, b) => b.request.createdAt.localeCompare(a.request.createdAt))[0];
}

export function writeControl(context: Pick<SteerContext, 'state' | 'target'>, change: ControlChange): Promise<TargetControl> {
  return context.state.read(`the control of ${context.target}`, (h) => h.updateControl(context.target, change));
}

/** `--wait-minutes`, checked, and HARBORMASTER_OPS_POLL_MS with it: either one wrong is refused before anything is written. */
export function waitMinutes(value: string): number {
  opsPollMs();
  const minutes = Number(value);
  if (!(minutes > 0 && minutes <= 24 * 60)) throw new UsageError(`--wait-minutes must be a number of minutes above 0, at most 1440, not '${value.slice(0, 20)}'`);
  return minutes;
}

/**
 * Polls the release's record until it is final; undefined when `timeoutMs` passes first. While the
 * record does not exist yet, `refusedBeforeRecorded` says why the worker will not make it (a rollback request it refused).
 */
export async function waitForEnd(
  context: Pick<SteerContext, 'state' | 'say'>,
  releaseId: string,
  timeoutMs: number,
  refusedBeforeRecorded?: () => Promise<string | undefined>,
  pollMs = opsPollMs(),
): Promise<ReleaseRecord | { refused: string } | undefined> {
  const deadline = Date.now() + timeoutMs;
  let said = '';
  for (;;) {
    const record = await context.state.read(`release ${releaseId}`, (h) => h.get(releaseId));
    if (record && isFinal(record.status)) return record;
    const refused = record ? undefined : await refusedBeforeRecorded?.();
    if (refused !== undefined) return { refused };
    const now = record ? `${record.status}${record.reason ? `: ${record.reason}` : ''}` : 'not in the release state yet';
    if (now !== said) context.say(`release ${releaseId}: ${now}`);
    said = now;
    if (Date.now() > deadline) return undefined;
    await sleep(pollMs);
  }
}
