import { readFileSync } from 'node:fs';
import type { Chat } from '../chat/chat.js';
import { readSecret } from '../config/secret-source.js';
import { ConfigError, type WorkerConfig } from '../config/worker-config.js';
import type { Logger } from '../log/logger.js';
import type { RolloutEffects } from '../rollout/release-runner.js';
import type { Rollout } from '../rollout/rollout.js';

// The release engine, loaded when the first release needs it. An idle worker only polls its queue:
// the engine's AWS clients (EC2, load balancers, Auto Scaling, CloudWatch), ssh2 and dockerode are
// most of the memory a worker holds, so they are not loaded until a release is in hand. What the
// engine reads from outside at its creation (the secrets, the known hosts file) is read here at start
// all the same, so that a worker that cannot release refuses to start rather than fail its first release.

export interface LazyRollout {
  readonly runner: Rollout;
  /** Whether the engine has been loaded (a release came). */
  readonly loaded: boolean;
  close(): void;
}

/** Reads what createRollout reads at its creation; throws the same errors (ConfigError, SecretUnavailableError). */
export function checkRolloutSecrets(config: WorkerConfig, env: NodeJS.ProcessEnv): void {
  for (const release of config.releases) {
    // ECR tokens are asked for at the first pull; a password is read now, as createRollout reads it.
    const password = release.rollout?.registry?.password;
    if (password) readSecret(password, env);
  }
  if (!config.ssh) return;
  try {
    readFileSync(config.ssh.knownHostsFile, 'utf8');
  } catch (error) {
    throw new ConfigError(`ssh.knownHostsFile: cannot read ${config.ssh.knownHostsFile}: ${(error as Error).message}`);
  }
  readSecret(config.ssh.privateKey, env);
}

export function lazyRollout(config: WorkerConfig, logger: Logger, chat: Chat, env: NodeJS.ProcessEnv = process.env, overrides: Partial<RolloutEffects> = {}): LazyRollout {
  checkRolloutSecrets(config, env);
  let wiring: Promise<{ runner: Rollout; close(): void }> | undefined;
  let closed = false;
  const load = () => (wiring ??= import('../rollout/create-rollout.js').then(({ createRollout }) => createRollout(config, logger, chat, env, overrides)));
  return {
    runner: { run: async (release, context) => (await load()).runner.run(release, context) },
    get loaded() {
      return wiring !== undefined;
    },
    close() {
      if (closed) return;
      closed = true;
      // A load still under way is closed once it ends.
      void wiring?.then((w) => w.close()).catch(() => undefined);
    },
  };
}
