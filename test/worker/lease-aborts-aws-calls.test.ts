import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateSubnetCommand, CreateVpcCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import { CreateTargetGroupCommand, DescribeTargetHealthCommand, ElasticLoadBalancingV2Client, RegisterTargetsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { MOTO_CREDENTIALS, MOTO_REGION } from '../../local-fleet/moto.js';
import { AwsLoadBalancers, type LoadBalancerRef } from '../../src/loadbalancer/load-balancers.js';
import type { Rollout, RolloutContext, RolloutOutcome } from '../../src/rollout/rollout.js';
import { MemoryReleaseStore } from '../../src/state/memory-release-store.js';
import type { RecordedRelease } from '../../src/state/recorded-release.js';
import { LeaseLostError, type TargetLease } from '../../src/state/release-store.js';
import { ReleaseScheduler } from '../../src/worker/release-scheduler.js';
import { motoForSuite } from '../support/aws.js';
import { capturingLogger, workerConfig } from '../support/worker-fixtures.js';
import { recordFor } from '../state/release-store-contract.js';
import { vouchWithTestKey } from '../support/signed-records.js';

// A worker that gives a target's lease up stops its AWS calls on that target at once: a call on its
// way is abandoned before it reaches AWS, a call being retried is not tried again, and the scheduler
// gives the lease up (aborting them) when it cannot renew it. Against moto's ELBv2.

const AMI = 'ami-12c6146b';
const PORT = 8080;

const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'Throttling', $metadata: { httpStatusCode: 400 } });

describe('AWS calls under a lease (moto ELBv2)', () => {
  const suite = motoForSuite();
  let ec2: EC2Client;
  let elbv2: ElasticLoadBalancingV2Client;
  const clients: Array<{ destroy(): void }> = [];
  let subnetId: string;
  let vpcId: string;
  let groups = 0;
  const config = () => ({ endpoint: suite.moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, maxAttempts: 1 });

  before(async () => {
    ec2 = new EC2Client(config());
    elbv2 = new ElasticLoadBalancingV2Client(config());
    vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.77.0.0/16' }))).Vpc!.VpcId!;
    subnetId = (await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.77.0.0/24', AvailabilityZone: `${MOTO_REGION}a` }))).Subnet!.SubnetId!;
  });
  after(() => {
    ec2?.destroy();
    elbv2?.destroy();
    clients.forEach((client) => client.destroy());
  });

  /** A target group with one registered instance. */
  async function registered(): Promise<{ lb: LoadBalancerRef; instanceId: string }> {
    const instanceId = (await ec2.send(new RunInstancesCommand({ ImageId: AMI, InstanceType: 't3.micro', MinCount: 1, MaxCount: 1, SubnetId: subnetId }))).Instances![0]!.InstanceId!;
    const arn = (await elbv2.send(new CreateTargetGroupCommand({ Name: `lease-abort-${++groups}`, Protocol: 'HTTP', Port: PORT, VpcId: vpcId, TargetType: 'instance' }))).TargetGroups![0]!.TargetGroupArn!;
    await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: instanceId, Port: PORT }] }));
    return { lb: { kind: 'target-group', id: arn }, instanceId };
  }

  const registeredIds = async (lb: LoadBalancerRef) => ((await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: lb.id }))).TargetHealthDescriptions ?? []).map((d) => d.Target!.Id!);

  /** Load balancers whose DeregisterTargets calls pass through `hook` first. */
  function loadBalancers(hook: (attempt: number) => Promise<void>) {
    const v2 = new ElasticLoadBalancingV2Client(config());
    const classic = new ElasticLoadBalancingClient(config());
    clients.push(v2, classic);
    let attempts = 0;
    v2.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DeregisterTargetsCommand') await hook(++attempts);
        return next(args);
      },
      { step: 'initialize', name: 'deregisterHook' },
    );
    return { balancers: new AwsLoadBalancers(classic, v2, capturingLogger().logger), attempts: () => attempts };
  }

  it('abandons a deregistration on its way when the lease is given up: it never reaches AWS', async () => {
    const { lb, instanceId } = await registered();
    const lost = new AbortController();
    let entered!: () => void;
    const reached = new Promise<void>((resolve) => (entered = resolve));
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const { balancers } = loadBalancers(async () => {
      entered();
      await gate;
    });
    const call = balancers.deregister(lb, instanceId, { signal: lost.signal, attemptMs: 30_000 });
    await reached;
    lost.abort(new LeaseLostError('data/ingest/staging', 'it could not be renewed in time'));
    openGate();
    await assert.rejects(call, LeaseLostError);
    assert.deepEqual(await registeredIds(lb), [instanceId], 'the host is still registered');
  });

  it('stops retrying a throttled deregistration once the lease is given up', async () => {
    const { lb, instanceId } = await registered();
    const lost = new AbortController();
    const { balancers, attempts } = loadBalancers(async () => {
      lost.abort(new LeaseLostError('data/ingest/staging', 'it could not be renewed in time'));
      throw throttled();
    });
    await assert.rejects(balancers.deregister(lb, instanceId, { signal: lost.signal, attemptMs: 30_000 }), LeaseLostError);
    assert.equal(attempts(), 1, 'no attempt after the lease was given up');
    assert.deepEqual(await registeredIds(lb), [instanceId]);
  });

  it('gives the lease up when it cannot be renewed, which ends the release\'s AWS call being retried', async () => {
    const { lb, instanceId } = await registered();
    /** A store that cannot renew any lease: DynamoDB throttled for good, say. */
    class UnrenewableStore extends MemoryReleaseStore {
      override async renewLease(_lease: TargetLease): Promise<TargetLease> {
        throw throttled();
      }
    }
    const store = new UnrenewableStore();
    const { record } = await store.claim(recordFor({ target: 'data/ingest/staging' }));
    let sentAfterLoss = 0;
    let signal: AbortSignal | undefined;
    const { balancers } = loadBalancers(async () => {
      if (signal?.aborted) sentAfterLoss += 1;
      throw throttled();
    });
    let failure: unknown;
    const rollout: Rollout = {
      async run(_release: RecordedRelease, context: RolloutContext): Promise<RolloutOutcome> {
        signal = context.leaseLost;
        try {
          await balancers.deregister(lb, instanceId, context.leaseCalls);
        } catch (error) {
          failure = error;
          throw error;
        }
        return { status: 'succeeded', hosts: 1 };
      },
    };
    const releases = workerConfig('http://127.0.0.1:1', { url: 'http://127.0.0.1:1/q', deadLetterUrl: 'http://127.0.0.1:1/d' }).releases;
    const scheduler = new ReleaseScheduler({ store, rollout, vouch: vouchWithTestKey(releases, (id) => store.get(id)), logger: capturingLogger().logger, workerId: 'w', leaseMs: 1_200, parallel: 1, stopRequested: new AbortController().signal });
    const result = await scheduler.take(record.releaseId, capturingLogger().logger, 'new');
    assert.deepEqual(result, { status: 'unfinished', reason: 'the lease was lost' });
    assert.ok(failure instanceof LeaseLostError, `the call ended by the lease, not by its own retries: ${String(failure)}`);
    assert.equal(sentAfterLoss, 0, 'no attempt was sent after the lease was given up');
    assert.deepEqual(await registeredIds(lb), [instanceId]);
  });
});
