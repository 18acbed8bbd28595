import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AutoScalingClient, CreateAutoScalingGroupCommand, DeleteAutoScalingGroupCommand, ResumeProcessesCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand, EC2Client } from '@aws-sdk/client-ec2';
import { MOTO_CREDENTIALS, MOTO_REGION } from '../../local-fleet/moto.js';
import { AwsAutoScaling } from '../../src/autoscaling/process-suspension.js';
import type { ReleaseRequest } from '../../src/request/release-request.js';
import { restoreScalingAndAlarms, suspendAndMute, type ScalingEffects } from '../../src/rollout/scaling-and-alarms.js';
import { createStepLog } from '../../src/rollout/step-runner.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import { RecordedRelease } from '../../src/state/recorded-release.js';
import { newReleaseRecord } from '../../src/state/release-record.js';
import { motoForSuite } from '../support/aws.js';
import { validRequest } from '../support/requests.js';
import { capturingLogger } from '../support/worker-fixtures.js';

// An Auto Scaling group deleted between the release's suspension and its restore: AWS answers
// ResumeProcesses with a ValidationError, which no retry clears. The restore of that group ends,
// left for a person and named, instead of holding the release (and its worker) for ever. moto answers
// as AWS does through the launcher (local-fleet/moto-server.py).

const PROCESSES = ['AZRebalance', 'HealthCheck', 'Terminate'];

describe('restoring Auto Scaling on a group deleted during the release (moto, through the launcher)', () => {
  const suite = motoForSuite();
  let autoscaling: AutoScalingClient;
  let ec2: EC2Client;
  const config = () => ({ endpoint: suite.moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, maxAttempts: 1 });

  before(async () => {
    autoscaling = new AutoScalingClient(config());
    ec2 = new EC2Client(config());
    await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: 'restore-test', LaunchTemplateData: { ImageId: 'ami-12c6146b', InstanceType: 't3.micro' } }));
  });
  after(() => {
    autoscaling?.destroy();
    ec2?.destroy();
  });

  async function group(name: string): Promise<void> {
    await autoscaling.send(
      new CreateAutoScalingGroupCommand({ AutoScalingGroupName: name, LaunchTemplate: { LaunchTemplateName: 'restore-test', Version: '$Latest' }, MinSize: 0, MaxSize: 1, DesiredCapacity: 0, AvailabilityZones: [`${MOTO_REGION}a`] }),
    );
  }

  it('answers ResumeProcesses on a group that does not exist with a ValidationError (400), as AWS does', async () => {
    const error = await autoscaling.send(new ResumeProcessesCommand({ AutoScalingGroupName: 'never-was', ScalingProcesses: ['Terminate'] })).then(
      () => undefined,
      (e: unknown) => e as Error & { $metadata?: { httpStatusCode?: number } },
    );
    assert.ok(error, 'the call is refused');
    assert.equal(error.name, 'ValidationError');
    assert.equal(error.$metadata?.httpStatusCode, 400);
  });

  it('ends the restore of the deleted group, naming the group and its processes, without being asked to stop', async () => {
    await group('deleted-mid-release');
    const { logger } = capturingLogger();
    const effects: ScalingEffects = {
      autoScaling: new AwsAutoScaling(autoscaling, logger),
      alarms: { actionsEnabled: async () => new Map(), disable: async () => undefined, enable: async () => undefined, states: async () => new Map() },
      muteRules: { mute: async () => undefined, unmute: async () => undefined, read: async () => undefined },
    };
    const store = new MemoryReleaseStore();
    const request = validRequest({ image: '127.0.0.1:5000/data/ingest:v2' }) as unknown as ReleaseRequest;
    const { record } = await store.claim({
      ...newReleaseRecord({ request, keyId: 'ci-test', target: 'data/ingest/staging', deployment: 'staging', now: new Date(), worker: 'test' }),
      status: 'running',
      scaling: { 'deleted-mid-release': { before: [], suspend: PROCESSES, phase: 'planned' } },
    });
    const release = new RecordedRelease(store, record);
    const steps = createStepLog(logger);
    await suspendAndMute(release, effects, steps, 60_000);
    assert.deepEqual((await effects.autoScaling.describe('deleted-mid-release')).suspended, PROCESSES);

    await autoscaling.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: 'deleted-mid-release', ForceDelete: true }));

    // A stop request as soon as anything is reported pending: the restore must end on its own before that.
    const stop = new AbortController();
    const pending: string[][] = [];
    const result = await restoreScalingAndAlarms(
      release,
      effects,
      steps,
      { pending: (left) => (pending.push(left), stop.abort()), restored: () => undefined, left: () => undefined },
      { minMs: 10, maxMs: 50 },
      { stopRequested: stop.signal },
    );
    assert.equal(result.status, 'left', `pending: ${JSON.stringify(pending)}`);
    assert.deepEqual(pending, [], 'never taken for a failure that may pass');
    assert.equal(result.left.length, 1);
    assert.match(result.left[0]!, /^resuming AZRebalance, HealthCheck, Terminate on Auto Scaling group deleted-mid-release failed for good, left as it is for a person: .*AutoScalingGroup name not found/);
    assert.equal(release.record.scaling['deleted-mid-release']!.phase, 'left');
    assert.deepEqual(release.record.attention, result.left);
    assert.equal(release.record.pending, undefined);
  });
});
