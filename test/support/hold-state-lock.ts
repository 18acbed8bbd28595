import { lockStateDirectory } from '../../src/state/state-directory-lock.js';

// A worker's hold on a state directory, alone, for tests that run it in another PID namespace (as a
// second container on the same volume would): takes the lock, says so, and holds it until killed.

const [directory, heartbeatMs] = process.argv.slice(2);
await lockStateDirectory(directory!, { heartbeatMs: Number(heartbeatMs) });
process.stdout.write('locked\n');
setInterval(() => undefined, 60_000);
