import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEPLOY_USERS, SSH, STATE_DIR } from './layout.js';
import { run, succeeds } from './processes.js';

// The accounts the worker logs in as on the fleet's hosts, as on a production host: a deploy user in
// the docker group with a plain shell, and one whose login shell is slow (bash reads its ~/.bashrc for
// an ssh command, and that one sleeps longer than a connection's deadline), standing in for hosts with
// profile scripts or network home directories. Accounts are the machine's own (the hosts share its
// users); each user's authorized_keys is its own file, readable by that user as sshd requires.

/** Seconds the slow user's ~/.bashrc sleeps: longer than the fleet worker's 5 s connect deadline. */
export const SLOW_LOGIN_SECONDS = 8;

async function ensureUser(name: string, shell: string, home: string): Promise<void> {
  mkdirSync(home, { recursive: true, mode: 0o755 });
  if (!(await succeeds('getent', ['passwd', name]))) {
    await run('useradd', ['--system', '--home-dir', home, '--no-create-home', '--shell', shell, '--groups', 'docker', name]);
  } else {
    await run('usermod', ['--shell', shell, '--home', home, '--append', '--groups', 'docker', name]);
  }
  // A locked password ('!') makes sshd refuse the account when UsePAM is off; '*' is no password, not locked.
  await run('usermod', ['--password', '*', name]);
}

export async function ensureDeployUsers(): Promise<void> {
  // Debian's docker.io makes the group; dockerd gives its socket to it (root:docker 0660).
  if (!(await succeeds('getent', ['group', 'docker']))) await run('groupadd', ['--system', 'docker']);
  const homes = join(STATE_DIR, 'users');
  mkdirSync(homes, { recursive: true, mode: 0o755 });
  chmodSync(homes, 0o755);
  await ensureUser(DEPLOY_USERS.deploy, '/bin/sh', join(homes, DEPLOY_USERS.deploy));
  const slowHome = join(homes, DEPLOY_USERS.slowLogin);
  await ensureUser(DEPLOY_USERS.slowLogin, '/bin/bash', slowHome);
  const slow = `# A slow login shell: bash reads this for every ssh command too.\nsleep ${SLOW_LOGIN_SECONDS}\n`;
  writeFileSync(join(slowHome, '.bashrc'), slow, { mode: 0o644 });
  writeFileSync(join(slowHome, '.profile'), '. "$HOME/.bashrc"\n', { mode: 0o644 });
  mkdirSync(SSH.authorizedKeysDir, { recursive: true, mode: 0o755 });
  chmodSync(SSH.authorizedKeysDir, 0o755);
  const key = readFileSync(`${SSH.clientKey}.pub`);
  for (const user of ['root', DEPLOY_USERS.deploy, DEPLOY_USERS.slowLogin]) writeFileSync(join(SSH.authorizedKeysDir, user), key, { mode: 0o644 });
}
