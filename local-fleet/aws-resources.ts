import { AttachInstancesCommand, AutoScalingClient, CreateAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient, PutMetricAlarmCommand } from '@aws-sdk/client-cloudwatch';
import { CreateLaunchTemplateCommand, CreateSubnetCommand, CreateVpcCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import {
  ConfigureHealthCheckCommand,
  CreateLoadBalancerCommand,
  ElasticLoadBalancingClient,
  RegisterInstancesWithLoadBalancerCommand,
} from '@aws-sdk/client-elastic-load-balancing';
import { CreateTargetGroupCommand, ElasticLoadBalancingV2Client, RegisterTargetsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createReleaseTable } from '../src/state/dynamodb-release-table.js';
import { MOTO_CREDENTIALS, MOTO_REGION } from './moto.js';
import { APP_PORT } from './live-container.js';

// The AWS side of the fleet, created in moto through the same SDK v3 clients the worker uses: a VPC and
// subnet holding the hosts' addresses, one EC2 instance per host (private IP = the host's address,
// tagged stack/release/deployment), and per target a classic ELB, an ELBv2 target group, an Auto
// Scaling group with the instances attached and two alarms; plus the release queue and its DLQ.

export const STACK = 'data';
export const RELEASE = 'ingest';
/** moto's stock Amazon Linux AMI; moto refuses RunInstances with an unknown one. */
const AMI = 'ami-12c6146b';
const INSTANCE_TYPE = 't3.micro';
const ALARM_ACTION = 'arn:aws:sns:us-west-2:123456789012:harbormaster-fleet-pager';
export const QUEUE_NAME = 'releases';
/** The release state of workers that share it (state.store: dynamodb). */
export const RELEASE_TABLE_NAME = 'harbormaster-releases';
export const DEAD_LETTER_QUEUE_NAME = 'releases-dlq';

export interface AwsEndpoint {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

export interface InstanceSpec {
  readonly name: string;
  readonly address: string;
  readonly deployment: string;
}

export interface TargetResources {
  readonly deployment: string;
  readonly instanceIds: string[];
  readonly classicLoadBalancer: string;
  readonly targetGroupArn: string;
  readonly autoScalingGroup: string;
  readonly launchTemplate: string;
  readonly alarmNames: string[];
}

export interface AwsResources {
  readonly vpcId: string;
  readonly subnetId: string;
  /** In the order of the instance specs (h1, h2, ...). */
  readonly instanceIds: string[];
  readonly targets: Record<string, TargetResources>;
  readonly queueUrl: string;
  readonly deadLetterUrl: string;
  readonly releaseTable: string;
}

export function awsEndpoint(endpoint: string): AwsEndpoint {
  return { endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS };
}

/** SDK client options for moto: one attempt, since moto's Python errors are not worth retrying. */
export function clientConfig(aws: AwsEndpoint) {
  return { endpoint: aws.endpoint, region: aws.region, credentials: { ...aws.credentials }, maxAttempts: 1 };
}

export const resourceName = (deployment: string) => `${STACK}-${RELEASE}-${deployment}`;

async function createTarget(
  clients: { ec2: EC2Client; elb: ElasticLoadBalancingClient; elbv2: ElasticLoadBalancingV2Client; autoscaling: AutoScalingClient; cloudwatch: CloudWatchClient },
  network: { vpcId: string; subnetId: string },
  deployment: string,
  instanceIds: string[],
): Promise<TargetResources> {
  const name = resourceName(deployment);
  const { ec2, elb, elbv2, autoscaling, cloudwatch } = clients;

  await elb.send(
    new CreateLoadBalancerCommand({
      LoadBalancerName: name,
      Listeners: [{ Protocol: 'HTTP', LoadBalancerPort: 80, InstanceProtocol: 'HTTP', InstancePort: APP_PORT }],
      Subnets: [network.subnetId],
    }),
  );
  await elb.send(
    new ConfigureHealthCheckCommand({
      LoadBalancerName: name,
      HealthCheck: { Target: `HTTP:${APP_PORT}/health`, Interval: 5, Timeout: 2, HealthyThreshold: 2, UnhealthyThreshold: 2 },
    }),
  );
  await elb.send(new RegisterInstancesWithLoadBalancerCommand({ LoadBalancerName: name, Instances: instanceIds.map((InstanceId) => ({ InstanceId })) }));

  const targetGroup = await elbv2.send(
    new CreateTargetGroupCommand({
      Name: name,
      Protocol: 'HTTP',
      Port: APP_PORT,
      VpcId: network.vpcId,
      TargetType: 'instance',
      HealthCheckProtocol: 'HTTP',
      HealthCheckPath: '/health',
      HealthCheckPort: String(APP_PORT),
    }),
  );
  const targetGroupArn = targetGroup.TargetGroups![0]!.TargetGroupArn!;
  await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: targetGroupArn, Targets: instanceIds.map((Id) => ({ Id, Port: APP_PORT })) }));

  // An Auto Scaling group needs a launch template; desired 0 so that moto launches nothing itself,
  // then the hosts' instances are attached (desired rises to match).
  await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: name, LaunchTemplateData: { ImageId: AMI, InstanceType: INSTANCE_TYPE } }));
  await autoscaling.send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: name,
      LaunchTemplate: { LaunchTemplateName: name, Version: '$Latest' },
      MinSize: 0,
      // Room for every host the fleet takes (32): attaching past MaxSize is refused.
      MaxSize: 64,
      DesiredCapacity: 0,
      VPCZoneIdentifier: network.subnetId,
      LoadBalancerNames: [name],
      TargetGroupARNs: [targetGroupArn],
      HealthCheckType: 'ELB',
      HealthCheckGracePeriod: 30,
    }),
  );
  await autoscaling.send(new AttachInstancesCommand({ AutoScalingGroupName: name, InstanceIds: instanceIds }));

  const alarmNames = [`${name}-5xx`, `${name}-latency`];
  const alarms = [
    { AlarmName: alarmNames[0]!, MetricName: 'HTTPCode_Backend_5XX', Statistic: 'Sum' as const, Threshold: 10 },
    { AlarmName: alarmNames[1]!, MetricName: 'Latency', Statistic: 'Average' as const, Threshold: 1 },
  ];
  for (const alarm of alarms) {
    await cloudwatch.send(
      new PutMetricAlarmCommand({
        ...alarm,
        Namespace: 'AWS/ELB',
        Dimensions: [{ Name: 'LoadBalancerName', Value: name }],
        Period: 60,
        EvaluationPeriods: 2,
        ComparisonOperator: 'GreaterThanThreshold',
        ActionsEnabled: true,
        AlarmActions: [ALARM_ACTION],
      }),
    );
  }
  return { deployment, instanceIds, classicLoadBalancer: name, targetGroupArn, autoScalingGroup: name, launchTemplate: name, alarmNames };
}

/** Creates everything in a freshly reset moto. */
export async function createAwsResources(aws: AwsEndpoint, instances: InstanceSpec[]): Promise<AwsResources> {
  const config = clientConfig(aws);
  const clients = {
    ec2: new EC2Client(config),
    elb: new ElasticLoadBalancingClient(config),
    elbv2: new ElasticLoadBalancingV2Client(config),
    autoscaling: new AutoScalingClient(config),
    cloudwatch: new CloudWatchClient(config),
  };
  const sqs = new SQSClient(config);
  const dynamo = new DynamoDBClient(config);
  try {
    const vpcId = (await clients.ec2.send(new CreateVpcCommand({ CidrBlock: '10.77.0.0/16' }))).Vpc!.VpcId!;
    const subnetId = (
      await clients.ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.77.0.0/24', AvailabilityZone: `${aws.region}a` }))
    ).Subnet!.SubnetId!;

    const instanceIds: string[] = [];
    for (const instance of instances) {
      const result = await clients.ec2.send(
        new RunInstancesCommand({
          ImageId: AMI,
          InstanceType: INSTANCE_TYPE,
          MinCount: 1,
          MaxCount: 1,
          SubnetId: subnetId,
          PrivateIpAddress: instance.address,
          TagSpecifications: [
            {
              ResourceType: 'instance',
              Tags: [
                { Key: 'Name', Value: instance.name },
                { Key: 'stack', Value: STACK },
                { Key: 'release', Value: RELEASE },
                { Key: 'deployment', Value: instance.deployment },
              ],
            },
          ],
        }),
      );
      instanceIds.push(result.Instances![0]!.InstanceId!);
    }

    const targets: Record<string, TargetResources> = {};
    for (const deployment of [...new Set(instances.map((instance) => instance.deployment))]) {
      const ids = instances.flatMap((instance, index) => (instance.deployment === deployment ? [instanceIds[index]!] : []));
      targets[deployment] = await createTarget(clients, { vpcId, subnetId }, deployment, ids);
    }

    const deadLetterUrl = (await sqs.send(new CreateQueueCommand({ QueueName: DEAD_LETTER_QUEUE_NAME }))).QueueUrl!;
    const deadLetterArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: deadLetterUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    const queueUrl = (
      await sqs.send(
        new CreateQueueCommand({
          QueueName: QUEUE_NAME,
          Attributes: { VisibilityTimeout: '60', RedrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetterArn, maxReceiveCount: 5 }) },
        }),
      )
    ).QueueUrl!;

    await createReleaseTable(dynamo, RELEASE_TABLE_NAME);
    return { vpcId, subnetId, instanceIds, targets, queueUrl, deadLetterUrl, releaseTable: RELEASE_TABLE_NAME };
  } finally {
    for (const client of [...Object.values(clients), sqs, dynamo]) client.destroy();
  }
}
