import { readdirSync, statSync, type Stats } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { userName } from './identity.js';

// The file store is the worker's: its state directory belongs to the worker's user (mode 0700, files
// 0600), and the worker reads every file in it. A steering verb writes there (control documents, a
// claimed release) only as the directory's owner, so the worker can read what it wrote:
//  - run as the owner: as it is;
//  - run as root (as the runbook says): the process takes the owner's uid and gid as its effective
//    ids for the command (seteuid, setegid; every thread of the process, the file system's included),
//    and takes root's back at the end;
//  - run as anyone else: refused, naming the exact command to run instead (`sudo -u OWNER ...`).

/** The command may not write the state directory as it runs: exit 1, nothing written. */
export class StateOwnerError extends Error {
  override name = 'StateOwnerError';
}

/** What the process is, for the choice (the system's by default; tests give their own). */
export interface ProcessIds {
  readonly euid: number;
  readonly egid: number;
  readonly groups: number[];
  seteuid(id: number): void;
  setegid(id: number): void;
  setgroups(groups: number[]): void;
}

export function processIds(): ProcessIds {
  if (!process.geteuid || !process.seteuid || !process.setegid || !process.setgroups || !process.getgroups || !process.getegid) {
    throw new StateOwnerError('this platform has no user ids: the file store is written as its owner only on Linux and other POSIX systems');
  }
  const { seteuid, setegid, setgroups } = process;
  return { euid: process.geteuid(), egid: process.getegid(), groups: process.getgroups(), seteuid: (id) => seteuid(id), setegid: (id) => setegid(id), setgroups: (groups) => setgroups(groups) };
}

/** A user as sudo (`#UID`) and chown (`UID`) take it when it has no name. */
const known = (uid: number) => !userName(uid).startsWith('uid ');

const quote = (word: string) => (/^[A-Za-z0-9_\/.:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

/**
 * This command line again, run as `owner` through sudo: the program by its name when PATH finds it
 * there, and `--config` spelled out when it came from HARBORMASTER_CONFIG (sudo resets the environment).
 */
export function commandAs(owner: string, argv: readonly string[] = process.argv, env: NodeJS.ProcessEnv = process.env): string {
  const script = argv[1] ?? 'harbormaster';
  const name = basename(script);
  const onPath = (env.PATH ?? '').split(':').some((dir) => dir !== '' && resolve(dir, name) === script);
  const args = argv.slice(2);
  const hasConfig = args.some((arg) => /^(-c|--config)(=|$)/.test(arg) || /^-c./.test(arg));
  const config = !hasConfig && env.HARBORMASTER_CONFIG ? ['--config', env.HARBORMASTER_CONFIG] : [];
  return ['sudo', '-u', owner, onPath ? name : script, ...args, ...config].map(quote).join(' ');
}

function statOrNone(path: string): Stats | undefined {
  try {
    // Followed: a state directory that is a symbolic link belongs to whoever owns what it points to.
    return statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Files the worker could not read: the store's directories, and the control documents, not the owner's (left by a command run as root before it wrote as the owner). */
function notOwned(directory: string, uid: number): string[] {
  const found: string[] = [];
  for (const sub of ['releases', 'targets', 'control']) {
    const path = join(directory, sub);
    const stats = statOrNone(path);
    if (stats && stats.uid !== uid) found.push(path);
  }
  const control = join(directory, 'control');
  if (!found.includes(control) && statOrNone(control)) {
    for (const name of readdirSync(control)) if (statOrNone(join(control, name))?.uid !== uid) found.push(join(control, name));
  }
  return found;
}

/**
 * Makes this process write the state directory as its owner (see above); returns what gives the
 * process its own ids back. Refuses (StateOwnerError) when it cannot.
 */
export function writeAsOwner(directory: string, ids: ProcessIds = processIds(), commandLine: (owner: string) => string = commandAs): () => void {
  const stats = statOrNone(directory);
  if (!stats) {
    throw new StateOwnerError(`the state directory ${directory} (stateDirectory) does not exist: the worker makes it, as its own user, when it first starts (docs/install.md); start the worker, then run the command again; nothing was written`);
  }
  const owner = userName(stats.uid);
  if (ids.euid !== stats.uid && ids.euid !== 0) {
    const command = commandLine(known(stats.uid) ? owner : `#${stats.uid}`);
    throw new StateOwnerError(`the state directory ${directory} belongs to ${owner}, and this command runs as ${userName(ids.euid)}: the file store is written only as its owner, so that the worker reads what is written; run it as root, or as ${owner}: ${command}; nothing was written`);
  }
  const stray = notOwned(directory, stats.uid);
  if (stray.length > 0) {
    const named = `${stray.slice(0, 3).join(', ')}${stray.length > 3 ? ` and ${stray.length - 3} more` : ''}`;
    throw new StateOwnerError(`not ${owner}'s, who owns the state directory ${directory}: ${named}; the worker cannot read them: give them back (chown -R ${known(stats.uid) ? owner : stats.uid}: ${directory}), then run the command again; nothing was written`);
  }
  if (ids.euid === stats.uid) return () => undefined;
  const { egid, groups } = ids;
  ids.setgroups([stats.gid]);
  ids.setegid(stats.gid);
  ids.seteuid(stats.uid);
  return () => {
    ids.seteuid(0);
    ids.setegid(egid);
    ids.setgroups(groups);
  };
}
