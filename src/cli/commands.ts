import type { Command } from 'commander';

// Every command of `harbormaster`: its name, arguments and one-line description (what the top-level
// help lists), and how to load the module that defines it. main.ts loads only the module of the
// command it runs; test/cli/lazy-cli.test.ts checks each line here against the command it loads.

export interface CommandEntry {
  readonly name: string;
  /** The arguments as the command declares them, e.g. '<target>'; '' for none. */
  readonly args: string;
  readonly description: string;
  /** The module's register function: it adds this command (and possibly its siblings) to the program. */
  load(): Promise<(program: Command) => void>;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'enqueue',
    args: '',
    description: 'Put a signed release request on the queue and print its release id (what CI runs).',
    load: async () => (await import('./enqueue-command.js')).registerEnqueue,
  },
  {
    name: 'worker',
    args: '',
    description: 'Consume release requests and roll them out (what runs on the bastion).',
    load: async () => (await import('./worker-command.js')).registerWorker,
  },
  {
    name: 'plan',
    args: '',
    description: 'Print what a release would do, host by host, with preflight results; changes nothing.',
    load: async () => (await import('./plan-command.js')).registerPlan,
  },
  {
    name: 'status',
    args: '[target...]',
    description: 'What every target runs, what is in progress, waiting or left to restore, and the last failure.',
    load: async () => (await import('./ops/status.js')).registerStatus,
  },
  {
    name: 'history',
    args: '<target>',
    description: 'The releases of one target, newest first: image, outcome and reason, who, source, when, how long, hosts.',
    load: async () => (await import('./ops/history.js')).registerHistory,
  },
  {
    name: 'show',
    args: '<release-id>',
    description: 'One release, whole: the request, the plan, every host\'s steps with times, what it changed and restored, the outcome.',
    load: async () => (await import('./ops/show.js')).registerShow,
  },
  {
    name: 'hosts',
    args: '<target>',
    description: 'Each instance of a target now: load balancer health, live container, image and health, kept copies, and whether it runs the current release.',
    load: async () => (await import('./ops/hosts.js')).registerHosts,
  },
  {
    name: 'lock',
    args: '<target>',
    description: 'Hold a target: releases that have not started wait (never refused) until it is unlocked or the lock ends.',
    load: async () => (await import('./ops/lock.js')).registerLock,
  },
  {
    name: 'unlock',
    args: '<target>',
    description: 'Lift the lock on a target: releases waiting for it are taken up by the worker\'s next sweep.',
    load: async () => (await import('./ops/lock.js')).registerLock,
  },
  {
    name: 'stop',
    args: '<target>',
    description: 'Stop the target\'s release in progress at its next safe point (every host whole, Auto Scaling and alarms restored); --rollback puts its released hosts back too.',
    load: async () => (await import('./ops/stop.js')).registerStop,
  },
  {
    name: 'rollback',
    args: '<target>',
    description: 'Release the previous succeeded image again (or the one --to names) as a new release, stop the release in progress with rollback, and lock the target.',
    load: async () => (await import('./ops/rollback.js')).registerRollback,
  },
  {
    name: 'promote',
    args: '<target>',
    description: 'Let the target\'s release in progress go on past the pause it waits at (a `pause` step of policy.steps); a promotion made before the release reaches a pause does not pass it.',
    load: async () => (await import('./ops/promote.js')).registerPromote,
  },
  {
    name: 'logs',
    args: '',
    description: 'The worker\'s log, one readable line per event: the systemd journal (or a file), optionally one release\'s lines, optionally following.',
    load: async () => (await import('./logs-command.js')).registerLogs,
  },
];

/** The command a run names (`harbormaster NAME ...` or `harbormaster help NAME`), if it is one. */
export function commandOf(argv: readonly string[]): CommandEntry | undefined {
  const name = argv[0] === 'help' ? argv[1] : argv[0];
  return COMMANDS.find((entry) => entry.name === name);
}

/** A command as the top-level help lists it, without loading its module. */
export function addSummary(program: Command, entry: CommandEntry): void {
  const command = program.command(entry.name).description(entry.description);
  for (const arg of entry.args.split(' ').filter(Boolean)) command.argument(arg);
}
