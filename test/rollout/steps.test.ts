import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planSteps } from '../../src/rollout/steps.js';

// Canary steps resolved into batches and gates, for a target of ten hosts.

const TEN = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8', 'h9', 'h10'];

describe('canary steps', () => {
  it('without steps: every host in batches of policy.batchSize, no gate', () => {
    assert.deepEqual(planSteps(TEN, 4), { batches: [['h1', 'h2', 'h3', 'h4'], ['h5', 'h6', 'h7', 'h8'], ['h9', 'h10']], gates: [] });
  });

  it('one canary, a bake, 25% in all, a pause, then the rest: percentages count every host exposed so far', () => {
    const steps = planSteps(TEN, 2, [{ hosts: 1 }, { bakeSeconds: 300 }, { percent: 25 }, { pause: true }, { percent: 100 }]);
    assert.deepEqual(steps.batches, [['h1'], ['h2', 'h3'], ['h4', 'h5'], ['h6', 'h7'], ['h8', 'h9'], ['h10']]);
    assert.deepEqual(steps.gates, [
      { afterBatch: 1, kind: 'bake', seconds: 300 },
      { afterBatch: 2, kind: 'pause' },
    ]);
  });

  it('a share rounds up, and never goes back below the hosts already exposed', () => {
    const steps = planSteps(TEN, 10, [{ hosts: 3 }, { percent: 10 }, { pause: true }, { percent: 41 }]);
    assert.deepEqual(steps.batches, [['h1', 'h2', 'h3'], ['h4', 'h5'], ['h6', 'h7', 'h8', 'h9', 'h10']]);
    assert.deepEqual(steps.gates, [{ afterBatch: 1, kind: 'pause' }]);
  });

  it('hosts the steps leave out follow after the last step; a bake at the end comes after every host', () => {
    const steps = planSteps(TEN.slice(0, 4), 1, [{ hosts: 1 }, { pause: true }]);
    assert.deepEqual(steps.batches, [['h1'], ['h2'], ['h3'], ['h4']]);
    assert.deepEqual(steps.gates, [{ afterBatch: 1, kind: 'pause' }]);
    assert.deepEqual(planSteps(TEN.slice(0, 2), 1, [{ percent: 100 }, { bakeSeconds: 60 }]).gates, [{ afterBatch: 2, kind: 'bake', seconds: 60 }]);
  });

  it('more canary hosts than the target has: every host, once', () => {
    assert.deepEqual(planSteps(['h1', 'h2'], 1, [{ hosts: 5 }, { pause: true }]), { batches: [['h1'], ['h2']], gates: [{ afterBatch: 2, kind: 'pause' }] });
  });
});
