import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateSubnetCommand, CreateVpcCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import {
  CreateTargetGroupCommand,
  DeregisterTargetsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  AddTagsCommand,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { setTimeout as sleep } from 'node:timers/promises';
import { MOTO_CREDENTIALS, MOTO_REGION } from '../../local-fleet/moto.js';
import { motoForSuite } from '../support/aws.js';

// AWS: "If the specified target does not exist, the action returns successfully." moto 5.2.1 answers
// InvalidTarget; the launcher makes it answer as AWS does. A worker repeating a deregistration after
// a crash must meet AWS's behaviour in tests too.

const AMI = 'ami-12c6146b'; // moto's stock Amazon Linux AMI
const PORT = 8080;

describe('ELBv2 DeregisterTargets of a target that is not registered (moto, through the launcher)', () => {
  const suite = motoForSuite();
  let ec2: EC2Client;
  let elbv2: ElasticLoadBalancingV2Client;
  let vpcId: string;
  let subnetId: string;

  const config = () => ({ endpoint: suite.moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, maxAttempts: 1 });

  before(async () => {
    ec2 = new EC2Client(config());
    elbv2 = new ElasticLoadBalancingV2Client(config());
    vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.88.0.0/16' }))).Vpc!.VpcId!;
    subnetId = (await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.88.0.0/24', AvailabilityZone: `${MOTO_REGION}a` }))).Subnet!.SubnetId!;
  });
  after(() => {
    ec2?.destroy();
    elbv2?.destroy();
  });

  async function instance(): Promise<string> {
    const result = await ec2.send(new RunInstancesCommand({ ImageId: AMI, InstanceType: 't3.micro', MinCount: 1, MaxCount: 1, SubnetId: subnetId }));
    return result.Instances![0]!.InstanceId!;
  }

  async function targetGroup(name: string): Promise<string> {
    const result = await elbv2.send(new CreateTargetGroupCommand({ Name: name, Protocol: 'HTTP', Port: PORT, VpcId: vpcId, TargetType: 'instance' }));
    return result.TargetGroups![0]!.TargetGroupArn!;
  }

  const registeredIds = async (arn: string) =>
    ((await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn }))).TargetHealthDescriptions ?? []).map((d) => d.Target!.Id!).sort();
  const deregister = (arn: string, ...ids: string[]) => elbv2.send(new DeregisterTargetsCommand({ TargetGroupArn: arn, Targets: ids.map((Id) => ({ Id, Port: PORT })) }));

  it('deregisters a registered target, and a second deregistration succeeds changing nothing', async () => {
    const [kept, leaving] = [await instance(), await instance()];
    const arn = await targetGroup('deregister-twice');
    await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: [kept, leaving].map((Id) => ({ Id, Port: PORT })) }));
    assert.deepEqual(await registeredIds(arn), [kept, leaving].sort());

    await deregister(arn, leaving);
    assert.deepEqual(await registeredIds(arn), [kept]);
    await deregister(arn, leaving);
    assert.deepEqual(await registeredIds(arn), [kept]);

    const asked = await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn, Targets: [{ Id: leaving, Port: PORT }] }));
    assert.equal(asked.TargetHealthDescriptions?.[0]?.TargetHealth?.Reason, 'Target.NotRegistered');
  });

  it('deregistering an instance that was never registered succeeds and the group shows no such target', async () => {
    const [member, stranger] = [await instance(), await instance()];
    const arn = await targetGroup('never-registered');
    await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: member, Port: PORT }] }));

    await deregister(arn, stranger);
    assert.deepEqual(await registeredIds(arn), [member]);
    // Mixed: the registered one leaves, the unregistered one is no error.
    await deregister(arn, stranger, member);
    assert.deepEqual(await registeredIds(arn), []);
  });

  it('reports draining and initial for their seconds on a group tagged harbormaster:simulated-timing, as AWS does', async () => {
    const member = await instance();
    const arn = await targetGroup('simulated-timing');
    await elbv2.send(new AddTagsCommand({ ResourceArns: [arn], Tags: [{ Key: 'harbormaster:simulated-timing', Value: 'draining=1,initial=1' }] }));
    const state = async () => (await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn, Targets: [{ Id: member, Port: PORT }] }))).TargetHealthDescriptions?.[0]?.TargetHealth?.State;
    await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: member, Port: PORT }] }));
    assert.equal(await state(), 'initial');
    await sleep(1_100);
    assert.equal(await state(), 'healthy');
    await deregister(arn, member);
    assert.equal(await state(), 'draining');
    assert.deepEqual(await registeredIds(arn), [member], 'a full listing shows the draining target');
    await sleep(1_100);
    assert.equal(await state(), 'unused');
    assert.deepEqual(await registeredIds(arn), []);
  });

  it('still refuses an instance id EC2 does not know, deregistering nothing', async () => {
    const member = await instance();
    const arn = await targetGroup('unknown-instance');
    await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: member, Port: PORT }] }));

    await assert.rejects(deregister(arn, member, 'i-0123456789abcdef0'), { name: 'InvalidTargetException' });
    assert.deepEqual(await registeredIds(arn), [member]);
  });
});
