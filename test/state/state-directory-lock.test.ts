import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    // Written before another boot.
    writeFileSync(join(dir, 'worker.lock'), JSON.stringify({ pid: 1, bootId: 'another-boot' }));
    await (await lockStateDirectory(dir)).release();
  });
});
