import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { lockStateDirectory, StateDirectoryBusyError } from '../../src/state/state-directory-lock.js';

// One worker per state directory, and a lock a killed worker left never keeps the next one out.

const directory = () => mkdtempSync(join(tmpdir(), 'harbormaster-lock-'));

describe('the state directory lock', () => {
  it('refuses a second worker while the first lives, and lets the next take it once released', async () => {
    const dir = directory();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
      writeFileSync(join(dir, 'worker.lock'), JSON.stringify({ pid: child.pid, bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), startTime }));
      await assert.rejects(lockStateDirectory(dir), (error: unknown) => error instanceof StateDirectoryBusyError && /in use by another worker \(pid \d+\)/.test(error.message));
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const lock = await lockStateDirectory(dir);
    await lock.release();
  });

  it('takes over a lock left by a killed worker whose PID now belongs to another process (a container\'s PID 1, a reboot)', async () => {
    const dir = directory();
    // PID 1 is alive, but it is not the process that wrote this lock: its start time differs.
    writeFileSync(join(dir, 'worker.lock'), JSON.stringify({ pid: 1, bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), startTime: '1' }));
    const lock = await lockStateDirectory(dir);
    await lock.release();
    // Our own PID in a lock is a previous life of this PID, never a live holder.
    writeFileSync(join(dir, 'worker.lock'), `${process.pid}\n`);
    await (await lockStateDirectory(dir)).release();
    // Written before another boot, and not touched since.
    writeFileSync(join(dir, 'worker.lock'), JSON.stringify({ pid: 1, bootId: 'another-boot' }));
    const beforeTheReboot = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'worker.lock'), beforeTheReboot, beforeTheReboot);
    await (await lockStateDirectory(dir)).release();
  });

  it('refuses a second worker while a live holder in another PID namespace (another container on the same volume) keeps the lock touched, and takes it over once that holder is killed', async () => {
    const dir = directory();
    const holderScript = join(dirname(fileURLToPath(import.meta.url)), '../support/hold-state-lock.ts');
    // The holder is PID 1 of its own PID namespace, as a worker in a container is.
    const holder = spawn('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', process.execPath, '--import', 'tsx', holderScript, dir, '200'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [first] = (await once(holder.stdout!, 'data')) as [Buffer];
      assert.equal(first.toString().trim(), 'locked');
      const written = JSON.parse(readFileSync(join(dir, 'worker.lock'), 'utf8')) as { pid: number; pidNamespace: string };
      assert.equal(written.pid, 1, 'the holder is PID 1 of its namespace');
      await assert.rejects(lockStateDirectory(dir, { heartbeatMs: 200, staleMs: 1_000 }), (error: unknown) => error instanceof StateDirectoryBusyError && /in use by another worker \(pid 1 in another PID namespace\)/.test(error.message));
    } finally {
      holder.kill('SIGKILL');
      await once(holder, 'exit');
    }
    // Killed: the lock stays on disk, untouched from now on, and is taken over once stale.
    assert.ok(readFileSync(join(dir, 'worker.lock'), 'utf8').includes('"pid":1'));
    const lock = await lockStateDirectory(dir, { heartbeatMs: 200, staleMs: 1_000 });
    assert.equal((JSON.parse(readFileSync(join(dir, 'worker.lock'), 'utf8')) as { pid: number }).pid, process.pid);
    await lock.release();
  });

  it('tells its holder when another worker has taken the lock over (the holder was frozen past its staleness)', async () => {
    const dir = directory();
    const lost: string[] = [];
    const lock = await lockStateDirectory(dir, { heartbeatMs: 50, onLost: (reason) => lost.push(reason) });
    writeFileSync(join(dir, 'worker.lock'), JSON.stringify({ pid: 4242, bootId: 'another-machine' }));
    for (let i = 0; i < 100 && lost.length === 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(lost.length, 1);
    assert.match(lost[0]!, /^the lock now names another worker \(\{"pid":4242/);
    await lock.release();
    assert.ok(readFileSync(join(dir, 'worker.lock'), 'utf8').includes('4242'), "releasing does not remove the other worker's lock");
  });

  it('of two workers starting at once on a lock left by a killed worker, exactly one takes it', async () => {
    const dir = directory();
    writeFileSync(join(dir, 'worker.lock'), JSON.stringify({ pid: 999_999_999, bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() }));
    const script = join(dirname(fileURLToPath(import.meta.url)), '../support/hold-state-lock.ts');
    const start = () => spawn(process.execPath, ['--import', 'tsx', script, dir, '200'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const workers = [start(), start()];
    try {
      const outcomes = await Promise.all(
        workers.map(
          (worker) =>
            new Promise<string>((resolve) => {
              worker.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve('locked'));
              worker.on('exit', () => resolve('refused'));
            }),
        ),
      );
      assert.deepEqual(outcomes.sort(), ['locked', 'refused']);
    } finally {
      for (const worker of workers) worker.kill('SIGKILL');
    }
  });
});
