import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { withRetry, type CallLimit } from '../aws/transient.js';
import type { Logger } from '../log/logger.js';

export interface TargetInstance {
  readonly instanceId: string;
  readonly address: string;
  readonly name?: string;
  /** The availability zone, where EC2 says it. */
  readonly zone?: string;
}

export interface TargetTags {
  readonly stack: string;
  readonly release: string;
  readonly deployment: string;
}

export interface InstanceFinder {
  /** Running instances carrying the three tags, in a stable order (by private address). `limit`: see CallLimit. */
  find(tags: TargetTags, limit?: CallLimit): Promise<TargetInstance[]>;
}

export class Ec2InstanceFinder implements InstanceFinder {
  constructor(
    private readonly ec2: EC2Client,
    private readonly logger: Logger,
  ) {}

  async find(tags: TargetTags, limit?: CallLimit): Promise<TargetInstance[]> {
    const instances: TargetInstance[] = [];
    let token: string | undefined;
    do {
      const page = await withRetry(
        (abortSignal) =>
          this.ec2.send(
            new DescribeInstancesCommand({
              Filters: [
                { Name: 'tag:stack', Values: [tags.stack] },
                { Name: 'tag:release', Values: [tags.release] },
                { Name: 'tag:deployment', Values: [tags.deployment] },
                { Name: 'instance-state-name', Values: ['running'] },
              ],
              NextToken: token,
            }),
            { abortSignal },
          ),
        { what: 'finding the target instances', logger: this.logger, ...(limit ? { limit } : {}) },
      );
      for (const reservation of page.Reservations ?? []) {
        for (const instance of reservation.Instances ?? []) {
          if (!instance.InstanceId || !instance.PrivateIpAddress) continue;
          const name = instance.Tags?.find((t) => t.Key === 'Name')?.Value;
          const zone = instance.Placement?.AvailabilityZone;
          instances.push({ instanceId: instance.InstanceId, address: instance.PrivateIpAddress, ...(name ? { name } : {}), ...(zone ? { zone } : {}) });
        }
      }
      token = page.NextToken;
    } while (token);
    return instances.sort((a, b) => compareAddresses(a.address, b.address));
  }
}

function compareAddresses(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 4; i += 1) if (pa[i] !== pb[i]) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}
