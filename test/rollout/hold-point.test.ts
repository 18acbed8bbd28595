import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { holdPointJournal } from '../support/hold-point.js';
import { createStepLog, type StepJournal } from '../../src/rollout/step-runner.js';
import { capturingLogger, eventually } from '../support/worker-fixtures.js';

// The test hold hook (test/support/hold-point.ts) on its own and through the step log the release
// runner uses: said loudly when set, and a hold that still yields to the release's stop request,
// lease loss and deadline. Each test is bounded by its timeout: a hold that does not yield fails it.

function hook(spec: string) {
  const { logger, lines } = capturingLogger();
  const stderr: string[] = [];
  const journal = holdPointJournal(spec, logger, (line) => void stderr.push(line)) as StepJournal;
  return { journal, lines, stderr, reached: () => lines.some((l) => l.msg === 'test hold reached') };
}

describe('the test hold hook', () => {
  it('is off when unset, and says loudly at creation when set: a warn log line and stderr', () => {
    assert.equal(holdPointJournal(undefined, capturingLogger().logger), undefined);
    assert.equal(holdPointJournal('', capturingLogger().logger), undefined);
    const { lines, stderr } = hook('h2:stop-old:end');
    const warning = 'TEST HOLD HOOK SET (h2:stop-old:end): this worker will stop at h2:stop-old:end and wait';
    assert.deepEqual(lines.map((l) => [l.level, l.msg, l.hold]), [['warn', warning, 'h2:stop-old:end']]);
    assert.deepEqual(stderr, [`harbormaster: ${warning}\n`]);
  });

  it('refuses a malformed spec', () => {
    assert.throws(() => holdPointJournal('stop-old', capturingLogger().logger, () => undefined), /must be <host\|->:<step>:<begin\|end>/);
  });

  it('holds only at its boundary, and ends the hold when the release is asked to stop', { timeout: 5_000 }, async () => {
    const { journal, lines, reached } = hook('h2:stop-old:end');
    const stop = new AbortController();
    const leaseLost = new AbortController();
    const steps = createStepLog(capturingLogger().logger, journal, { stopRequested: stop.signal, leaseLost: leaseLost.signal });
    // Other hosts, other steps and the other edge pass straight through.
    await steps.run('stop-old', 'h1', async () => undefined);
    const span = await steps.open('stop-old', 'h2');
    assert.equal(reached(), false, 'not held at the begin edge');
    let settled = false;
    const done = span.done().then(() => (settled = true));
    await eventually('the hold to be reached', reached, 2_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(settled, false, 'held while nothing asks it to end');
    stop.abort();
    await done;
    assert.equal(lines.at(-1)?.msg, 'test hold ended; the release goes on');
    assert.equal(lines.at(-1)?.why, 'stop requested');
    // Reached once: the same boundary later passes through.
    await steps.run('stop-old', 'h2', async () => undefined);
  });

  it('ends the hold by throwing when the lease is lost, so that the step it held does not run', { timeout: 5_000 }, async () => {
    const { journal, reached } = hook('h1:start-new:begin');
    const leaseLost = new AbortController();
    const steps = createStepLog(capturingLogger().logger, journal, { stopRequested: new AbortController().signal, leaseLost: leaseLost.signal });
    let ran = false;
    const running = steps.run('start-new', 'h1', async () => void (ran = true));
    await eventually('the hold to be reached', reached, 2_000);
    leaseLost.abort(new Error('lease lost to worker-b'));
    await assert.rejects(running, /lease lost to worker-b/);
    assert.equal(ran, false, 'no effect after the lease was lost');
  });

  it('ends the hold at the release deadline', { timeout: 5_000 }, async () => {
    const { journal, lines } = hook('-:mute-alarms:end');
    const steps = createStepLog(capturingLogger().logger, journal, { stopRequested: new AbortController().signal, deadline: Date.now() + 200 });
    await steps.run('mute-alarms', undefined, async () => undefined);
    assert.deepEqual(lines.slice(1).map((l) => [l.msg, l.why]), [
      ['test hold reached', undefined],
      ['test hold ended; the release goes on', 'deadline'],
    ]);
  });

  it('ends at once when the release was asked to stop before the boundary was reached', { timeout: 5_000 }, async () => {
    const { journal, lines } = hook('-:resolve:begin');
    const stop = new AbortController();
    stop.abort();
    await createStepLog(capturingLogger().logger, journal, { stopRequested: stop.signal }).run('resolve', undefined, async () => undefined);
    assert.equal(lines.at(-1)?.why, 'stop requested');
  });
});
