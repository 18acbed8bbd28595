import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';

// Who ran a steering command, as something other than the command line vouches for it: recorded as
// `by` with every control mark; `--by` is only a note beside it (operator.ts).
//  - DynamoDB store: the caller's ARN, from STS GetCallerIdentity with the credentials the command
//    writes with. For an assumed role it is `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`: the role
//    session name names the person behind a shared role.
//  - File store: the user the process runs as (its effective uid, which the kernel vouches for), and
//    beside it what the bastion says of the person behind it: the kernel's login uid (set once at login,
//    kept through sudo and su) and sudo's SUDO_USER. Both are as good as root on the bastion: root can
//    set either, so under root they name a person only as far as root is trusted.

/** Who the command runs as could not be told: the command writes nothing (exit 1). */
export class IdentityUnknownError extends Error {
  override name = 'IdentityUnknownError';
}

/** Longest identity kept (an IAM user's ARN carries its path). */
export const MAX_IDENTITY = 600;

/** The caller's ARN, as `arn` (STS GetCallerIdentity) answers it. */
export async function awsIdentity(arn: () => Promise<string>): Promise<string> {
  let answer: string;
  try {
    answer = await arn();
  } catch (error) {
    const why = (error as Error).message.split('\n')[0]!.slice(0, 200);
    throw new IdentityUnknownError(
      `cannot tell who you are from AWS (STS GetCallerIdentity: ${why}): with the DynamoDB store every steering command records the caller's ARN, and --by is only a note beside it; check the credentials (\`aws sts get-caller-identity\`) and run the command again; nothing was written`,
    );
  }
  if (!/^arn:aws[a-z-]*:(sts|iam)::\d{12}:[\x21-\x7e]+$/.test(answer) || answer.length > MAX_IDENTITY) {
    throw new IdentityUnknownError(`STS GetCallerIdentity answered an ARN that is not one (${JSON.stringify(answer.slice(0, 80))}); nothing was written`);
  }
  return answer;
}

/** What the bastion says of the process: read from the system by default; tests give their own. */
export interface OsFacts {
  /** The name of the effective user. */
  readonly user: string;
  /** The name of the kernel's login uid, when one is set (undefined: none, as in a service or a container). */
  readonly login?: string | undefined;
  readonly env: NodeJS.ProcessEnv;
}

const USER_NAME = /^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}\$?$/;
const NO_LOGIN_UID = 4294967295;

/** A user's name by uid (NSS, as `id` does), else `uid N`. */
export function userName(uid: number): string {
  const found = spawnSync('getent', ['passwd', String(uid)], { encoding: 'utf8', timeout: 5_000 });
  const name = found.status === 0 ? found.stdout.split(':')[0] : undefined;
  return name && USER_NAME.test(name) ? name : `uid ${uid}`;
}

function effectiveUser(): string {
  const uid = process.geteuid?.();
  try {
    const name = userInfo().username;
    if (USER_NAME.test(name)) return name;
  } catch {
    // No passwd entry for the uid.
  }
  return uid === undefined ? 'unknown user' : `uid ${uid}`;
}

function loginUser(): string | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/loginuid', 'utf8').trim();
  } catch {
    return undefined;
  }
  const uid = Number(text);
  return Number.isInteger(uid) && uid >= 0 && uid !== NO_LOGIN_UID ? userName(uid) : undefined;
}

export function osFacts(env: NodeJS.ProcessEnv = process.env): OsFacts {
  return { user: effectiveUser(), login: loginUser(), env };
}

/** `root`, `root (sudo from alice)`, `root (sudo from alice, login bob)`, `harbormaster (login alice)`. */
export function osIdentity(facts: OsFacts = osFacts()): string {
  const sudo = facts.env.SUDO_USER;
  const from = sudo !== undefined && USER_NAME.test(sudo) && sudo !== facts.user ? sudo : undefined;
  const login = facts.login !== undefined && facts.login !== facts.user && facts.login !== from ? facts.login : undefined;
  const behind = [...(from ? [`sudo from ${from}`] : []), ...(login ? [`login ${login}`] : [])];
  return behind.length > 0 ? `${facts.user} (${behind.join(', ')})` : facts.user;
}
