import { Command } from 'commander';
import { fleetDown, fleetUp } from './fleet.js';
import { fleetAsJson, fleetStatus, summarize } from './fleet-status.js';

// Ops entry point: `node --import tsx local-fleet/cli.ts up [--hosts N] [--json] | down | status [--json]`.
// The fleet outlives `up` (engines, SSH servers, registry, moto keep running); the chat webhook
// server does not, since it lives in the process that brought the fleet up.

const program = new Command('local-fleet').description('The Harbormaster local fleet: hosts, engines, registry, moto, chat');

program
  .command('up')
  .description('bring the fleet up (reusing what already runs)')
  .option('--hosts <n>', 'number of hosts', '3')
  .option('--json', 'print the whole fleet as JSON')
  .action(async (options: { hosts: string; json?: boolean }) => {
    const fleet = await fleetUp({ hosts: Number(options.hosts), log: (line) => process.stderr.write(`${line}\n`) });
    await fleet.chat.stop();
    if (options.json) console.log(JSON.stringify(fleetAsJson(fleet), null, 2));
    else {
      console.log(summarize(await fleetStatus()));
      console.log(`ssh: ssh -i ${fleet.ssh.privateKeyPath} -o UserKnownHostsFile=${fleet.ssh.knownHostsPath} ${fleet.ssh.user}@${fleet.hosts[0]!.address} docker ps`);
      console.log(`registry: ${fleet.registry.address} (user ${fleet.registry.username}); images: ${Object.values(fleet.images).join(' ')}`);
      console.log(`queue: ${fleet.aws.queueUrl}; up in ${fleet.bringUpMs} ms`);
    }
  });

program
  .command('down')
  .description('tear the fleet down, leaving no process, namespace, link or mount')
  .action(async () => {
    await fleetDown({ log: (line) => process.stderr.write(`${line}\n`) });
  });

program
  .command('status')
  .description('what runs right now')
  .option('--json', 'print as JSON')
  .action(async (options: { json?: boolean }) => {
    const status = await fleetStatus();
    console.log(options.json ? JSON.stringify(status, null, 2) : summarize(status));
  });

program
  .parseAsync()
  .then(() => process.exit(0)) // a moto_server started by `up` is our child: do not wait for it
  .catch((error: unknown) => {
    process.stderr.write(`local-fleet: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
