import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RolloutSettings } from '../../src/config/worker-config.js';
import { decideRelease, LOOK_ROUNDS, type ReleaseAction, type ReleaseObservation } from '../../src/rollout/release-decision.js';
import type { Gate } from '../../src/rollout/steps.js';
import type { HostProgress, HostRecord, RecordedPlan, ReleaseRecord } from '../../src/state/release-record.js';

// The release-level decision table: a release as a worker finds it (its record, the hosts in
// service, what an operator asked, what this take-up did so far) and the one action it must take
// next. One row per rule of the precedence in release-decision.ts, with no network and no clock.

const AT = Date.parse('2026-12-02T03:00:00.000Z');
const IN_SERVICE_TIMEOUT = 60_000;
const STOP = { releaseId: 'r-1', by: 'alice', at: '2026-12-02T02:59:00.000Z', rollback: false };

function host(id: string, progress: HostProgress): HostRecord {
  return { instanceId: id, address: `10.0.0.${id.slice(2)}`, name: `h${id.slice(2)}`, before: { registeredIn: ['classic:web'], live: null }, progress };
}

interface Shape {
  readonly hosts: Record<string, HostProgress>;
  readonly batches?: string[][];
  readonly direction?: 'forward' | 'back';
  readonly onFailure?: 'host' | 'all';
  readonly minHealthy?: number;
  readonly onAlarm?: 'rollback' | 'stop';
  readonly failureStep?: string;
  readonly stop?: ReleaseRecord['stop'];
  readonly gates?: Gate[];
  readonly gateProgress?: ReleaseRecord['gates'];
  readonly promotion?: ReleaseRecord['promotion'];
}

function record(shape: Shape): ReleaseRecord {
  const ids = Object.keys(shape.hosts);
  const plan = {
    settings: { policy: { batchSize: 1, minHealthy: shape.minHealthy ?? 1, onAlarm: shape.onAlarm ?? 'rollback', alarmUnreadableSeconds: 120 } } as unknown as RolloutSettings,
    batches: shape.batches ?? ids.map((id) => [id]),
    onFailure: shape.onFailure ?? 'host',
    inServiceTimeoutMs: IN_SERVICE_TIMEOUT,
    ...(shape.gates ? { gates: shape.gates } : {}),
  } as unknown as RecordedPlan;
  return {
    releaseId: 'r-1',
    direction: shape.direction ?? 'forward',
    plan,
    hosts: Object.fromEntries(ids.map((id) => [id, host(id, shape.hosts[id]!)])),
    ...(shape.stop ? { stop: shape.stop } : {}),
    ...(shape.gateProgress ? { gates: shape.gateProgress } : {}),
    ...(shape.promotion ? { promotion: shape.promotion } : {}),
    ...(shape.failureStep ? { failure: { step: shape.failureStep, reason: 'x' } } : {}),
  } as unknown as ReleaseRecord;
}

function observed(o: Partial<Omit<ReleaseObservation, 'serving' | 'settledBack'>> & { serving?: string[]; settledBack?: string[] } = {}): ReleaseObservation {
  return {
    at: AT,
    interrupt: false,
    suspended: true,
    looks: 0,
    lookedEnough: false,
    ...o,
    serving: new Set(o.serving ?? []),
    settledBack: new Set(o.settledBack ?? []),
  };
}

interface Row {
  readonly name: string;
  readonly shape: Shape;
  readonly seen: Parameters<typeof observed>[0];
  readonly then: ReleaseAction;
}

const iso = (ms: number) => new Date(ms).toISOString();
const BAKE: Gate = { afterBatch: 1, kind: 'bake', seconds: 300 };
const PAUSE: Gate = { afterBatch: 1, kind: 'pause' };
const ALARM = { alarm: 'errors', reason: 'Threshold Crossed' };
const three = { 'i-1': 'pending', 'i-2': 'pending', 'i-3': 'pending' } as const;
const ALL = ['i-1', 'i-2', 'i-3'];

const rows: Row[] = [
  // 1. Stopped by an operator, as recorded in the release.
  { name: 'a stop already taken (no rollback): restore', shape: { hosts: { ...three, 'i-1': 'released' }, stop: { by: 'alice', at: STOP.at, rollback: false } }, seen: { serving: ALL }, then: { kind: 'restore' } },
  // 2a. An operator's stop, taken only at a safe point.
  { name: "an operator's stop at a safe point: take it", shape: { hosts: { ...three, 'i-1': 'released' } }, seen: { serving: ALL, stop: STOP }, then: { kind: 'stop', request: STOP } },
  { name: "an operator's stop with a host half-way: finish that host first", shape: { hosts: { ...three, 'i-1': 'in-progress' } }, seen: { serving: ['i-2', 'i-3'], stop: STOP }, then: { kind: 'release-hosts', hosts: ['i-1'], cut: false } },
  { name: "an operator's stop before anything was suspended: take it (nothing to undo)", shape: { hosts: three }, seen: { serving: ALL, stop: STOP, suspended: false }, then: { kind: 'stop', request: STOP } },
  // 2b. The worker asked to stop.
  { name: 'the worker asked to stop, at a safe point: interrupt', shape: { hosts: { ...three, 'i-1': 'released' } }, seen: { serving: ALL, interrupt: true }, then: { kind: 'interrupt' } },
  { name: 'the worker asked to stop, a host half-way: finish that host', shape: { hosts: { ...three, 'i-2': 'in-progress' } }, seen: { serving: ['i-1', 'i-3'], interrupt: true }, then: { kind: 'release-hosts', hosts: ['i-2'], cut: false } },
  { name: "an operator's stop comes before the worker's", shape: { hosts: three }, seen: { serving: ALL, interrupt: true, stop: STOP }, then: { kind: 'stop', request: STOP } },
  // Watched alarms.
  { name: 'an alarm entered ALARM (onAlarm rollback): turn back at once, even with a host half-way', shape: { hosts: { ...three, 'i-1': 'released', 'i-2': 'in-progress' } }, seen: { serving: ['i-1', 'i-3'], alarm: ALARM }, then: { kind: 'turn-back', failure: { step: 'alarm', reason: 'errors entered ALARM: Threshold Crossed' } } },
  { name: 'an alarm entered ALARM (onAlarm stop), a host half-way: finish that host first', shape: { hosts: { ...three, 'i-2': 'in-progress' }, onAlarm: 'stop' }, seen: { serving: ['i-1', 'i-3'], alarm: ALARM }, then: { kind: 'release-hosts', hosts: ['i-2'], cut: false } },
  { name: 'an alarm entered ALARM (onAlarm stop), at a safe point: stop, naming the alarm', shape: { hosts: { ...three, 'i-1': 'released' }, onAlarm: 'stop' }, seen: { serving: ALL, alarm: ALARM }, then: { kind: 'stop', request: { releaseId: 'r-1', by: 'alarm errors entered ALARM: Threshold Crossed', at: iso(AT), rollback: false } } },
  { name: 'alarms unreadable for less than policy.alarmUnreadableSeconds: go on', shape: { hosts: { ...three, 'i-1': 'released' } }, seen: { serving: ALL, alarmsUnreadableSince: AT - 60_000 }, then: { kind: 'release-hosts', hosts: ['i-2'], cut: false } },
  { name: 'alarms unreadable for longer: stop at the safe point', shape: { hosts: { ...three, 'i-1': 'released' } }, seen: { serving: ALL, alarmsUnreadableSince: AT - 121_000 }, then: { kind: 'stop', request: { releaseId: 'r-1', by: 'the alarm watch (the alarms could not be read for 121 s)', at: iso(AT), rollback: false } } },
  { name: 'back after an alarm: released hosts go back even with onFailure host', shape: { hosts: { 'i-1': 'released', 'i-2': 'pending' }, direction: 'back', failureStep: 'alarm' }, seen: { serving: ALL }, then: { kind: 'back-hosts', hosts: ['i-1'], goal: 'old' } },
  // 3. Suspend and mute first.
  { name: 'not yet suspended by this take-up: suspend', shape: { hosts: three }, seen: { serving: ALL, suspended: false }, then: { kind: 'suspend' } },
  // 4. The next batch, cut down to keep policy.minHealthy.
  { name: 'first batch', shape: { hosts: three }, seen: { serving: ALL }, then: { kind: 'release-hosts', hosts: ['i-1'], cut: false } },
  { name: 'the batch after the released ones', shape: { hosts: { ...three, 'i-1': 'released' } }, seen: { serving: ALL }, then: { kind: 'release-hosts', hosts: ['i-2'], cut: false } },
  { name: 'a gone host is skipped', shape: { hosts: { 'i-1': 'released', 'i-2': 'gone', 'i-3': 'pending' } }, seen: { serving: ['i-1', 'i-3'] }, then: { kind: 'release-hosts', hosts: ['i-3'], cut: false } },
  {
    name: 'a batch larger than the room is cut down (hosts not serving go first)',
    shape: { hosts: { 'i-1': 'pending', 'i-2': 'pending', 'i-3': 'pending', 'i-4': 'pending' }, batches: [['i-1', 'i-2', 'i-3'], ['i-4']], minHealthy: 2 },
    seen: { serving: ['i-1', 'i-2', 'i-4'] },
    then: { kind: 'release-hosts', hosts: ['i-3', 'i-1'], cut: true },
  },
  { name: 'no room: wait', shape: { hosts: three, minHealthy: 2 }, seen: { serving: ['i-1', 'i-2'] }, then: { kind: 'wait', why: 'only 2 host(s) are in service: taking another out would leave fewer than policy.minHealthy (2) serving' } },
  {
    name: 'no room for longer than the in-service timeout: turn back',
    shape: { hosts: three, minHealthy: 2 },
    seen: { serving: ['i-1', 'i-2'], noRoomSince: AT - IN_SERVICE_TIMEOUT - 1 },
    then: { kind: 'turn-back', failure: { step: 'min-healthy', reason: 'only 2 host(s) are in service: taking another out would leave fewer than policy.minHealthy (2) serving' } },
  },
  { name: 'a host not serving may go even without room', shape: { hosts: three, minHealthy: 2 }, seen: { serving: ['i-2', 'i-3'] }, then: { kind: 'release-hosts', hosts: ['i-1'], cut: false } },
  // 4. Gates of policy.steps (a bake, a pause) before the next batch.
  { name: 'a gate after the canary, not reached yet: reach it', shape: { hosts: { ...three, 'i-1': 'released' }, gates: [BAKE] }, seen: { serving: ALL }, then: { kind: 'reach-gate', gate: 0 } },
  { name: 'a bake with time left: wait until its end', shape: { hosts: { ...three, 'i-1': 'released' }, gates: [BAKE], gateProgress: [{ reachedAt: iso(AT - 100_000) }] }, seen: { serving: ALL }, then: { kind: 'wait-gate', gate: 0, until: AT + 200_000 } },
  { name: 'a bake whose time is over (also after a restart): pass it', shape: { hosts: { ...three, 'i-1': 'released' }, gates: [BAKE], gateProgress: [{ reachedAt: iso(AT - 300_000) }] }, seen: { serving: ALL }, then: { kind: 'pass-gate', gate: 0 } },
  { name: 'a passed gate: the next batch', shape: { hosts: { ...three, 'i-1': 'released' }, gates: [BAKE], gateProgress: [{ reachedAt: iso(AT - 300_000), passedAt: iso(AT) }] }, seen: { serving: ALL }, then: { kind: 'release-hosts', hosts: ['i-2'], cut: false } },
  { name: 'a pause: wait for a promotion', shape: { hosts: { ...three, 'i-1': 'released' }, gates: [PAUSE], gateProgress: [{ reachedAt: iso(AT - 5_000) }] }, seen: { serving: ALL }, then: { kind: 'wait-gate', gate: 0 } },
  {
    name: 'a pause promoted after it was reached (first seen by the worker after): pass it, saying by whom',
    shape: { hosts: { ...three, 'i-1': 'released' }, gates: [PAUSE], gateProgress: [{ reachedAt: iso(AT - 5_000) }], promotion: { by: 'carol', at: iso(AT - 1_000), seenAt: iso(AT - 1_000) } },
    seen: { serving: ALL },
    then: { kind: 'pass-gate', gate: 0, by: 'carol' },
  },
  {
    name: 'a promotion first seen before the pause was reached (for an earlier gate) does not pass it',
    shape: { hosts: { ...three, 'i-1': 'released', 'i-2': 'released' }, gates: [{ afterBatch: 1, kind: 'pause' }, { afterBatch: 2, kind: 'pause' }], gateProgress: [{ reachedAt: iso(AT - 60_000), passedAt: iso(AT - 50_000), by: 'carol' }, { reachedAt: iso(AT - 5_000) }], promotion: { by: 'carol', at: iso(AT - 55_000), seenAt: iso(AT - 55_000) } },
    seen: { serving: ALL },
    then: { kind: 'wait-gate', gate: 1 },
  },
  {
    name: "a promotion dated in the future by its writer's clock, first seen before the pause was reached, does not pass it",
    shape: { hosts: { ...three, 'i-1': 'released' }, gates: [PAUSE], gateProgress: [{ reachedAt: iso(AT - 5_000) }], promotion: { by: 'carol', at: iso(AT + 86_400_000), seenAt: iso(AT - 10_000) } },
    seen: { serving: ALL },
    then: { kind: 'wait-gate', gate: 0 },
  },
  {
    name: "a promotion dated in the past by its writer's clock, first seen after the pause was reached, passes it",
    shape: { hosts: { ...three, 'i-1': 'released' }, gates: [PAUSE], gateProgress: [{ reachedAt: iso(AT - 5_000) }], promotion: { by: 'carol', at: iso(AT - 86_400_000), seenAt: iso(AT - 1_000) } },
    seen: { serving: ALL },
    then: { kind: 'pass-gate', gate: 0, by: 'carol' },
  },
  { name: "an operator's stop at a gate (a safe point): take it", shape: { hosts: { ...three, 'i-1': 'released' }, gates: [PAUSE], gateProgress: [{ reachedAt: iso(AT - 5_000) }] }, seen: { serving: ALL, stop: STOP }, then: { kind: 'stop', request: STOP } },
  { name: 'a bake after the last batch: reached before looking at the target again', shape: { hosts: { 'i-1': 'released', 'i-2': 'released' }, gates: [{ afterBatch: 2, kind: 'bake', seconds: 60 }] }, seen: { serving: ['i-1', 'i-2'] }, then: { kind: 'reach-gate', gate: 0 } },
  { name: 'a batch caught half-way goes before a gate', shape: { hosts: { ...three, 'i-1': 'in-progress' }, gates: [{ afterBatch: 0, kind: 'pause' }] }, seen: { serving: ['i-2', 'i-3'] }, then: { kind: 'release-hosts', hosts: ['i-1'], cut: false } },
  // 6. Every batch done: look at the target again, a bounded number of rounds.
  { name: 'every batch done: look again, newcomers may be taken in', shape: { hosts: { 'i-1': 'released', 'i-2': 'released' } }, seen: { serving: ['i-1', 'i-2'] }, then: { kind: 'look-again', mayTakeIn: true } },
  { name: 'the last round of looking: newcomers are named, not taken in', shape: { hosts: { 'i-1': 'released' } }, seen: { serving: ['i-1'], looks: LOOK_ROUNDS - 1 }, then: { kind: 'look-again', mayTakeIn: false } },
  { name: 'looked enough: restore', shape: { hosts: { 'i-1': 'released' } }, seen: { serving: ['i-1'], looks: 1, lookedEnough: true }, then: { kind: 'restore' } },
  // 6. Back.
  { name: 'back: hosts caught half-way, side by side, to the old image', shape: { hosts: { 'i-1': 'released', 'i-2': 'in-progress', 'i-3': 'attention' }, direction: 'back' }, seen: { serving: ['i-1'] }, then: { kind: 'back-hosts', hosts: ['i-2', 'i-3'], goal: 'old' } },
  { name: 'back, onFailure host: the released hosts are checked whole on the new image', shape: { hosts: { 'i-1': 'released', 'i-2': 'restored', 'i-3': 'pending' }, direction: 'back' }, seen: { serving: ALL, settledBack: ['i-2'] }, then: { kind: 'back-hosts', hosts: ['i-1'], goal: 'new' } },
  { name: 'back, onFailure all: released hosts go back last first', shape: { hosts: { 'i-1': 'released', 'i-2': 'released', 'i-3': 'restored' }, direction: 'back', onFailure: 'all' }, seen: { serving: ALL, settledBack: ['i-3'] }, then: { kind: 'back-hosts', hosts: ['i-2'], goal: 'old' } },
  {
    name: "back after an operator's stop --rollback: released hosts go back even with onFailure host",
    shape: { hosts: { 'i-1': 'released', 'i-2': 'released', 'i-3': 'pending' }, direction: 'back', stop: { by: 'alice', at: STOP.at, rollback: true } },
    seen: { serving: ALL },
    then: { kind: 'back-hosts', hosts: ['i-2'], goal: 'old' },
  },
  { name: 'back, kept copies count as released', shape: { hosts: { 'i-1': 'kept', 'i-2': 'pending' }, direction: 'back', onFailure: 'all' }, seen: { serving: ALL }, then: { kind: 'back-hosts', hosts: ['i-1'], goal: 'old' } },
  { name: 'back, no room to take a released host out: wait', shape: { hosts: { 'i-1': 'released', 'i-2': 'pending' }, direction: 'back', onFailure: 'all', minHealthy: 2 }, seen: { serving: ['i-1', 'i-2'] }, then: { kind: 'wait', why: 'rolling i-1 back now would leave fewer than policy.minHealthy (2) in service' } },
  {
    name: 'back, no room for longer than the in-service timeout: leave the host on the new image',
    shape: { hosts: { 'i-1': 'released', 'i-2': 'pending' }, direction: 'back', onFailure: 'all', minHealthy: 2 },
    seen: { serving: ['i-1', 'i-2'], noRoomSince: AT - IN_SERVICE_TIMEOUT - 1 },
    then: { kind: 'leave-host', host: 'i-1', reason: 'left on the new image: rolling it back now would leave fewer than policy.minHealthy in service' },
  },
  { name: 'back, a released host not serving needs no room', shape: { hosts: { 'i-1': 'released', 'i-2': 'pending' }, direction: 'back', onFailure: 'all', minHealthy: 2 }, seen: { serving: ['i-2'] }, then: { kind: 'back-hosts', hosts: ['i-1'], goal: 'old' } },
  { name: "back: an operator's stop is not taken (already going back)", shape: { hosts: { 'i-1': 'released', 'i-2': 'pending' }, direction: 'back' }, seen: { serving: ALL, stop: STOP, settledBack: ['i-1'] }, then: { kind: 'restore' } },
  // 7. Nothing left: restore.
  { name: 'back, every host settled: restore', shape: { hosts: { 'i-1': 'restored', 'i-2': 'pending' }, direction: 'back' }, seen: { serving: ALL, settledBack: ['i-1'] }, then: { kind: 'restore' } },
];

describe('the release decision', () => {
  for (const row of rows) {
    it(row.name, () => {
      assert.deepEqual(decideRelease(record(row.shape), observed(row.seen)), row.then);
    });
  }
});
