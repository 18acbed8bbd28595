import { AutoScalingClient, DescribeAutoScalingGroupsCommand, ResumeProcessesCommand, SuspendProcessesCommand } from '@aws-sdk/client-auto-scaling';
import { withRetry, type CallLimit } from '../aws/transient.js';
import type { Logger } from '../log/logger.js';

export { DEFAULT_SUSPENDED_PROCESSES, SCALING_PROCESSES } from './process-names.js';

/** What this release suspended, per group: exactly what it must resume, and nothing else. */
export type SuspensionRecord = Readonly<Record<string, readonly string[]>>;

export interface AutoScalingGroupFacts {
  readonly name: string;
  readonly suspended: string[];
  readonly loadBalancerNames: string[];
  readonly targetGroupArns: string[];
}

/** DescribeAutoScalingGroups does not list the group: it was deleted (or renamed). It will not come back by retrying. */
export class AutoScalingGroupNotFoundError extends Error {
  override name = 'AutoScalingGroupNotFound';
  constructor(readonly group: string) {
    super(`Auto Scaling group ${group} does not exist`);
  }
}

/** Every method takes an optional CallLimit: under a lease, its signal reaches each request and ends the retries. */
export interface AutoScaling {
  describe(group: string, limit?: CallLimit): Promise<AutoScalingGroupFacts>;
  suspend(group: string, processes: readonly string[], limit?: CallLimit): Promise<void>;
  resume(group: string, processes: readonly string[], limit?: CallLimit): Promise<void>;
  /** The groups these instances belong to. */
  groupsOf(instanceIds: readonly string[], limit?: CallLimit): Promise<string[]>;
}

export class AwsAutoScaling implements AutoScaling {
  constructor(
    private readonly client: AutoScalingClient,
    private readonly logger: Logger,
  ) {}

  async describe(group: string, limit?: CallLimit): Promise<AutoScalingGroupFacts> {
    const result = await withRetry((abortSignal) => this.client.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [group] }), { abortSignal }), {
      what: `reading Auto Scaling group ${group}`,
      logger: this.logger,
      ...(limit ? { limit } : {}),
    });
    const found = result.AutoScalingGroups?.[0];
    if (!found) throw new AutoScalingGroupNotFoundError(group);
    return {
      name: group,
      suspended: (found.SuspendedProcesses ?? []).map((p) => p.ProcessName!).filter(Boolean).sort(),
      loadBalancerNames: found.LoadBalancerNames ?? [],
      targetGroupArns: found.TargetGroupARNs ?? [],
    };
  }

  async suspend(group: string, processes: readonly string[], limit?: CallLimit): Promise<void> {
    if (processes.length === 0) return;
    await withRetry((abortSignal) => this.client.send(new SuspendProcessesCommand({ AutoScalingGroupName: group, ScalingProcesses: [...processes] }), { abortSignal }), {
      what: `suspending ${processes.join(', ')} on ${group}`,
      logger: this.logger,
      ...(limit ? { limit } : {}),
    });
  }

  async resume(group: string, processes: readonly string[], limit?: CallLimit): Promise<void> {
    if (processes.length === 0) return;
    await withRetry((abortSignal) => this.client.send(new ResumeProcessesCommand({ AutoScalingGroupName: group, ScalingProcesses: [...processes] }), { abortSignal }), {
      what: `resuming ${processes.join(', ')} on ${group}`,
      logger: this.logger,
      ...(limit ? { limit } : {}),
      retries: 8,
    });
  }

  async groupsOf(instanceIds: readonly string[], limit?: CallLimit): Promise<string[]> {
    if (instanceIds.length === 0) return [];
    const groups = new Set<string>();
    let token: string | undefined;
    do {
      const page = await withRetry((abortSignal) => this.client.send(new DescribeAutoScalingGroupsCommand({ NextToken: token }), { abortSignal }), {
        what: 'listing Auto Scaling groups',
        logger: this.logger,
        ...(limit ? { limit } : {}),
      });
      for (const group of page.AutoScalingGroups ?? []) {
        if ((group.Instances ?? []).some((i) => instanceIds.includes(i.InstanceId!))) groups.add(group.AutoScalingGroupName!);
      }
      token = page.NextToken;
    } while (token);
    return [...groups].sort();
  }
}

/** What to suspend on each group: the wanted processes not already suspended (those stay as they were). */
export function processesToSuspend(wanted: readonly string[], alreadySuspended: readonly string[]): string[] {
  return wanted.filter((p) => !alreadySuspended.includes(p));
}
