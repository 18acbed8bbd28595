// The install check's steering part: after the first release, every steering verb run as
// docs/operations.md says (on the bastion, as root, `--config /etc/harbormaster/worker.yml`), beside
// the worker running as `harbormaster`, each taking effect:
//   lock     a new request (v3) waits for the lock;
//   promote  recorded for it (it waits at no pause: the command says so, exit 0);
//   stop     recorded for it; unlock: the worker takes it up and it ends `stopped`, nothing changed;
//   rollback back to the first release's image (v2), waited for (exit 0), locking the target; unlock.
// Then a command run as `harbormaster` reads the state (the caller checks every file is its).
import { execFileSync, spawnSync } from 'node:child_process';

const HARBORMASTER = '/usr/local/bin/harbormaster';
const CONFIG = ['--config', '/etc/harbormaster/worker.yml'];
const TARGET = 'data/ingest/staging';

export interface SteerSite {
  /** The environment CI enqueues with (queue, credentials, signing key). */
  readonly ciEnv: NodeJS.ProcessEnv;
  /** The image of a second release. */
  readonly image: string;
  readonly say: (line: string) => void;
}

/** One command, as root, as the runbook writes it; its stdout. */
function asRoot(args: string[]): string {
  const run = spawnSync(HARBORMASTER, [...args, ...CONFIG], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`harbormaster ${args.join(' ')} (as root) exited ${run.status}: ${run.stderr.trim()}`);
  return run.stdout;
}

interface Shown {
  readonly record: { readonly status: string; readonly held?: { readonly by: string }; readonly stop?: { readonly by: string }; readonly origin?: { readonly by: string } };
}

const show = (releaseId: string): Shown | undefined => {
  const run = spawnSync(HARBORMASTER, ['show', releaseId, '--json', ...CONFIG], { encoding: 'utf8' });
  return run.status === 0 ? (JSON.parse(run.stdout) as Shown) : undefined;
};

async function until(what: string, releaseId: string, done: (shown: Shown) => boolean, timeoutMs = 120_000): Promise<Shown> {
  for (const deadline = Date.now() + timeoutMs; ; ) {
    const shown = show(releaseId);
    if (shown && done(shown)) return shown;
    if (Date.now() > deadline) throw new Error(`release ${releaseId}: no ${what} within ${timeoutMs / 1000} s (last: ${shown?.record.status ?? 'not recorded'})`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

export async function steerAsRunbookSays(site: SteerSite): Promise<void> {
  asRoot(['lock', TARGET, '--reason', 'install check']);
  const v3 = execFileSync(HARBORMASTER, ['enqueue', '--stack', 'data', '--release', 'ingest', '--deployment', 'staging', '--image', site.image, '--requested-by', 'install-check'], { encoding: 'utf8', env: site.ciEnv }).trim();
  const held = await until('wait for the lock', v3, (s) => s.record.held !== undefined);
  site.say(`lock: release ${v3} waits for the lock set by ${held.record.held!.by}`);
  asRoot(['promote', TARGET]);
  asRoot(['stop', TARGET, '--no-wait']);
  asRoot(['unlock', TARGET]);
  const stopped = await until('stop', v3, (s) => s.record.status === 'stopped');
  site.say(`promote, stop, unlock: release ${v3} taken up after the unlock and stopped by ${stopped.record.stop!.by} before it began`);
  const rolled = asRoot(['rollback', TARGET, '--reason', 'install check']);
  const rollbackId = /release ([0-9a-f-]{36}) succeeded/.exec(rolled)?.[1];
  if (!rollbackId) throw new Error(`rollback: no succeeded release in its output: ${rolled}`);
  site.say(`rollback: release ${rollbackId} by ${show(rollbackId)?.record.origin?.by} succeeded`);
  asRoot(['unlock', TARGET]);
  const status = spawnSync('setpriv', ['--reuid', 'harbormaster', '--regid', 'harbormaster', '--init-groups', HARBORMASTER, 'status', ...CONFIG], { encoding: 'utf8', cwd: '/' });
  if (status.status !== 0) throw new Error(`harbormaster status as harbormaster exited ${status.status}: ${status.stderr.trim()}`);
  site.say('harbormaster status, run as harbormaster, reads the state');
}
