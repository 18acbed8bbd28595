import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { addSummary, commandOf, COMMANDS } from './commands.js';

// `harbormaster`: loads only the module of the command it runs (commands.ts), and that module loads
// what its action needs when it runs: `enqueue --dry-run`, `status` and `show` load no AWS client they
// do not use, and a worker, which runs for months, never holds the modules of the other commands.
// Without a command (`--help`, `--version`) no command's module is loaded.

declare const HARBORMASTER_VERSION: string | undefined;

/** The bundle (scripts/bundle.ts) has the version built in; the package reads its package.json. */
function version(): string {
  if (typeof HARBORMASTER_VERSION === 'string') return HARBORMASTER_VERSION;
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Errors that are a mistake in the call or the configuration: exit 2, as for a bad flag. */
const USAGE_ERRORS = new Set(['UsageError', 'ConfigError', 'SecretUnavailableError']);

function fail(error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`harbormaster: ${message.split('\n')[0]}\n`);
  process.exit(error instanceof Error && USAGE_ERRORS.has(error.name) ? 2 : 1);
}

const program = new Command()
  .name('harbormaster')
  .description('Queue-driven rolling releases of Docker containers to EC2 fleets.')
  .version(version())
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(`harbormaster: ${text.replace(/^error: /, '').trim()}\n`) });

async function main(): Promise<void> {
  const asked = commandOf(process.argv.slice(2));
  if (asked) (await asked.load())(program);
  else for (const entry of COMMANDS) addSummary(program, entry);
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2);
    fail(error);
  }
}

// No top-level await: the bundle (scripts/bundle.ts) is a CommonJS file, which Node compiles lazily.
void main();
