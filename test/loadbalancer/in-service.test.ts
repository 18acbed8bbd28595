import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateSubnetCommand, CreateVpcCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { CreateLoadBalancerCommand, DeregisterInstancesFromLoadBalancerCommand, ElasticLoadBalancingClient, RegisterInstancesWithLoadBalancerCommand } from '@aws-sdk/client-elastic-load-balancing';
import { AddTagsCommand, CreateTargetGroupCommand, DeregisterTargetsCommand, ElasticLoadBalancingV2Client, RegisterTargetsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { MOTO_CREDENTIALS, MOTO_REGION } from '../../local-fleet/moto.js';
import { AwsLoadBalancers, type LoadBalancerRef } from '../../src/loadbalancer/load-balancers.js';
import { capturingLogger } from '../support/worker-fixtures.js';
import { motoForSuite } from '../support/aws.js';

// The release's turn asks each load balancer once which of its hosts are in service (not once per
// host). Against moto: a classic ELB asked for no instance in particular, a target group asked for
// all of them; registered and passing counts, deregistered, unknown or not yet healthy does not.

const AMI = 'ami-12c6146b'; // moto's stock Amazon Linux AMI
const PORT = 8080;

describe('which hosts a load balancer has in service, in one reading (moto)', () => {
  const suite = motoForSuite();
  let ec2: EC2Client;
  let elb: ElasticLoadBalancingClient;
  let elbv2: ElasticLoadBalancingV2Client;
  let balancers: AwsLoadBalancers;
  let vpcId: string;
  let subnetId: string;

  before(async () => {
    const config = { endpoint: suite.moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, maxAttempts: 1 };
    ec2 = new EC2Client(config);
    elb = new ElasticLoadBalancingClient(config);
    elbv2 = new ElasticLoadBalancingV2Client(config);
    balancers = new AwsLoadBalancers(elb, elbv2, capturingLogger().logger);
    vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.89.0.0/16' }))).Vpc!.VpcId!;
    subnetId = (await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.89.0.0/24', AvailabilityZone: `${MOTO_REGION}a` }))).Subnet!.SubnetId!;
  });
  after(() => [ec2, elb, elbv2].forEach((client) => client?.destroy()));

  const instances = async (count: number): Promise<string[]> => {
    const result = await ec2.send(new RunInstancesCommand({ ImageId: AMI, InstanceType: 't3.micro', MinCount: count, MaxCount: count, SubnetId: subnetId }));
    return result.Instances!.map((i) => i.InstanceId!);
  };
  const sorted = (set: Set<string>) => [...set].sort();

  it('classic ELB: the registered instances in service, not the deregistered one nor one never registered', async () => {
    const [a, b, c] = await instances(3);
    await elb.send(new CreateLoadBalancerCommand({ LoadBalancerName: 'in-service', Listeners: [{ Protocol: 'HTTP', LoadBalancerPort: 80, InstanceProtocol: 'HTTP', InstancePort: PORT }], Subnets: [subnetId] }));
    await elb.send(new RegisterInstancesWithLoadBalancerCommand({ LoadBalancerName: 'in-service', Instances: [{ InstanceId: a }, { InstanceId: b }] }));
    const lb: LoadBalancerRef = { kind: 'classic', id: 'in-service' };
    assert.deepEqual(sorted(await balancers.inService(lb, [a!, b!, c!])), [a, b].sort());
    await elb.send(new DeregisterInstancesFromLoadBalancerCommand({ LoadBalancerName: 'in-service', Instances: [{ InstanceId: b }] }));
    assert.deepEqual(sorted(await balancers.inService(lb, [a!, b!, c!])), [a]);
    assert.deepEqual(sorted(await balancers.inService(lb, [c!])), [], 'asked only of one it does not have: none, and no error');
  });

  it('target group: the healthy targets, not one still initial, deregistered or never registered', async () => {
    const [a, b, c, d] = await instances(4);
    const arn = (await elbv2.send(new CreateTargetGroupCommand({ Name: 'in-service', Protocol: 'HTTP', Port: PORT, VpcId: vpcId, TargetType: 'instance' }))).TargetGroups![0]!.TargetGroupArn!;
    const lb: LoadBalancerRef = { kind: 'target-group', id: arn };
    await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: [a, b].map((Id) => ({ Id: Id!, Port: PORT })) }));
    assert.deepEqual(sorted(await balancers.inService(lb, [a!, b!, c!])), [a, b].sort());
    await elbv2.send(new DeregisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: b!, Port: PORT }] }));
    // Registered from now on, a target reads `initial` for a minute (the launcher's simulated timing).
    await elbv2.send(new AddTagsCommand({ ResourceArns: [arn], Tags: [{ Key: 'harbormaster:simulated-timing', Value: 'initial=60' }] }));
    await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: d!, Port: PORT }] }));
    assert.deepEqual(sorted(await balancers.inService(lb, [a!, b!, c!, d!])), [a]);
  });

  it('asks nothing for no hosts', async () => {
    assert.deepEqual(sorted(await balancers.inService({ kind: 'classic', id: 'no-such-balancer' }, [])), []);
  });
});
