import {
  DeregisterInstancesFromLoadBalancerCommand,
  DescribeInstanceHealthCommand,
  DescribeLoadBalancerAttributesCommand,
  DescribeLoadBalancersCommand,
  ElasticLoadBalancingClient,
  RegisterInstancesWithLoadBalancerCommand,
} from '@aws-sdk/client-elastic-load-balancing';
import {
  DeregisterTargetsCommand,
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { withRetry, type CallLimit } from '../aws/transient.js';
import type { Logger } from '../log/logger.js';

// Classic ELBs and ELBv2 target groups behind one narrow interface: what membership a host has, how
// long draining and health checks take, and register/deregister. Retries on throttling are here.
// Every method takes an optional CallLimit: under a lease, its signal reaches each request
// (`abortSignal`) and ends the retries when the lease is given up.

/**
 * What a load balancer says of one instance. in-service, pending and unhealthy: registered. draining:
 * deregistered, connections still served. out: not registered, no traffic.
 */
export type Membership = 'in-service' | 'draining' | 'pending' | 'unhealthy' | 'out';

export interface LoadBalancerRef {
  readonly kind: 'classic' | 'target-group';
  /** Classic ELB name or target group ARN. */
  readonly id: string;
}

export interface LoadBalancerTimings {
  /** The load balancer's own connection draining / deregistration delay. */
  readonly drainingSeconds: number;
  /** How long a healthy instance takes to be reported in service: interval x healthy threshold. */
  readonly healthCheckSeconds: number;
}

export interface LoadBalancers {
  register(lb: LoadBalancerRef, instanceId: string, limit?: CallLimit): Promise<void>;
  deregister(lb: LoadBalancerRef, instanceId: string, limit?: CallLimit): Promise<void>;
  membership(lb: LoadBalancerRef, instanceId: string, limit?: CallLimit): Promise<Membership>;
  /** Which of these instances are in service (registered and passing its checks): one reading for all of them. */
  inService(lb: LoadBalancerRef, instanceIds: readonly string[], limit?: CallLimit): Promise<Set<string>>;
  timings(lb: LoadBalancerRef, limit?: CallLimit): Promise<LoadBalancerTimings>;
  /** A target group's ARN from its ARN or its name. */
  targetGroupArn(nameOrArn: string, limit?: CallLimit): Promise<string>;
}

export const describeLoadBalancer = (lb: LoadBalancerRef) => (lb.kind === 'classic' ? `elb/${lb.id}` : lb.id.replace(/^.*:targetgroup\//, 'tg/'));

export class AwsLoadBalancers implements LoadBalancers {
  constructor(
    private readonly classic: ElasticLoadBalancingClient,
    private readonly v2: ElasticLoadBalancingV2Client,
    private readonly logger: Logger,
  ) {}

  private retry<T>(what: string, limit: CallLimit | undefined, call: (abortSignal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    return withRetry(call, { what, logger: this.logger, ...(limit ? { limit } : {}) });
  }

  async register(lb: LoadBalancerRef, instanceId: string, limit?: CallLimit): Promise<void> {
    await this.retry(`registering ${instanceId} with ${describeLoadBalancer(lb)}`, limit, (abortSignal) =>
      lb.kind === 'classic'
        ? this.classic.send(new RegisterInstancesWithLoadBalancerCommand({ LoadBalancerName: lb.id, Instances: [{ InstanceId: instanceId }] }), { abortSignal })
        : this.v2.send(new RegisterTargetsCommand({ TargetGroupArn: lb.id, Targets: [{ Id: instanceId }] }), { abortSignal }),
    );
  }

  async deregister(lb: LoadBalancerRef, instanceId: string, limit?: CallLimit): Promise<void> {
    await this.retry(`deregistering ${instanceId} from ${describeLoadBalancer(lb)}`, limit, (abortSignal) =>
      lb.kind === 'classic'
        ? this.classic.send(new DeregisterInstancesFromLoadBalancerCommand({ LoadBalancerName: lb.id, Instances: [{ InstanceId: instanceId }] }), { abortSignal })
        : this.v2.send(new DeregisterTargetsCommand({ TargetGroupArn: lb.id, Targets: [{ Id: instanceId }] }), { abortSignal }),
    );
  }

  async membership(lb: LoadBalancerRef, instanceId: string, limit?: CallLimit): Promise<Membership> {
    if (lb.kind === 'classic') {
      // Registration and health are two questions for a classic ELB: the instance list says whether
      // the host is registered; its health says whether traffic still flows. On AWS a deregistered
      // instance still reads InService while connection draining runs.
      const [description, health] = await Promise.all([
        this.retry(`reading ${describeLoadBalancer(lb)}`, limit, (abortSignal) => this.classic.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [lb.id] }), { abortSignal })),
        this.retry(`reading ${describeLoadBalancer(lb)} health`, limit, (abortSignal) =>
          this.classic.send(new DescribeInstanceHealthCommand({ LoadBalancerName: lb.id, Instances: [{ InstanceId: instanceId }] }), { abortSignal }),
        ).catch((error: Error) => {
          if (error.name === 'InvalidInstance' || error.name === 'InvalidEndPointException') return undefined;
          throw error;
        }),
      ]);
      const registered = (description.LoadBalancerDescriptions?.[0]?.Instances ?? []).some((i) => i.InstanceId === instanceId);
      const state = health?.InstanceStates?.[0];
      if (registered) {
        if (state?.State === 'InService') return 'in-service';
        return /fail/i.test(state?.Description ?? '') ? 'unhealthy' : 'pending';
      }
      return state?.State === 'InService' ? 'draining' : 'out';
    }
    const result = await this.retry(`reading ${describeLoadBalancer(lb)}`, limit, (abortSignal) =>
      this.v2.send(new DescribeTargetHealthCommand({ TargetGroupArn: lb.id, Targets: [{ Id: instanceId }] }), { abortSignal }),
    );
    const state = result.TargetHealthDescriptions?.[0]?.TargetHealth?.State;
    switch (state) {
      case 'healthy':
        return 'in-service';
      case 'draining':
      case 'unhealthy.draining':
        return 'draining';
      case 'initial':
        return 'pending';
      case 'unhealthy':
        return 'unhealthy';
      default:
        return 'out'; // unused, unavailable, not registered
    }
  }

  async inService(lb: LoadBalancerRef, instanceIds: readonly string[], limit?: CallLimit): Promise<Set<string>> {
    if (instanceIds.length === 0) return new Set();
    if (lb.kind === 'classic') {
      // Asked for no instance in particular, a classic ELB reports the health of every registered one
      // (asked for one it does not have, it refuses the whole call).
      const [description, health] = await Promise.all([
        this.retry(`reading ${describeLoadBalancer(lb)}`, limit, (abortSignal) => this.classic.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [lb.id] }), { abortSignal })),
        this.retry(`reading ${describeLoadBalancer(lb)} health`, limit, (abortSignal) => this.classic.send(new DescribeInstanceHealthCommand({ LoadBalancerName: lb.id }), { abortSignal })),
      ]);
      const registered = new Set((description.LoadBalancerDescriptions?.[0]?.Instances ?? []).map((i) => i.InstanceId));
      const healthy = new Set((health.InstanceStates ?? []).filter((s) => s.State === 'InService').map((s) => s.InstanceId));
      return new Set(instanceIds.filter((id) => registered.has(id) && healthy.has(id)));
    }
    const result = await this.retry(`reading ${describeLoadBalancer(lb)}`, limit, (abortSignal) =>
      this.v2.send(new DescribeTargetHealthCommand({ TargetGroupArn: lb.id, Targets: instanceIds.map((id) => ({ Id: id })) }), { abortSignal }),
    );
    const healthy = new Set((result.TargetHealthDescriptions ?? []).filter((d) => d.TargetHealth?.State === 'healthy').map((d) => d.Target?.Id));
    return new Set(instanceIds.filter((id) => healthy.has(id)));
  }

  async targetGroupArn(nameOrArn: string, limit?: CallLimit): Promise<string> {
    if (nameOrArn.startsWith('arn:')) return nameOrArn;
    const result = await this.retry(`finding target group ${nameOrArn}`, limit, (abortSignal) => this.v2.send(new DescribeTargetGroupsCommand({ Names: [nameOrArn] }), { abortSignal }));
    const arn = result.TargetGroups?.[0]?.TargetGroupArn;
    if (!arn) throw new Error(`target group ${nameOrArn} does not exist`);
    return arn;
  }

  async timings(lb: LoadBalancerRef, limit?: CallLimit): Promise<LoadBalancerTimings> {
    if (lb.kind === 'classic') {
      const [attributes, description] = await Promise.all([
        this.retry('reading ELB attributes', limit, (abortSignal) => this.classic.send(new DescribeLoadBalancerAttributesCommand({ LoadBalancerName: lb.id }), { abortSignal })),
        this.retry('reading ELB', limit, (abortSignal) => this.classic.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [lb.id] }), { abortSignal })),
      ]);
      const draining = attributes.LoadBalancerAttributes?.ConnectionDraining;
      const check = description.LoadBalancerDescriptions?.[0]?.HealthCheck;
      return {
        drainingSeconds: draining?.Enabled ? (draining.Timeout ?? 300) : 0,
        healthCheckSeconds: (check?.Interval ?? 30) * (check?.HealthyThreshold ?? 10),
      };
    }
    const [attributes, groups] = await Promise.all([
      this.retry('reading target group attributes', limit, (abortSignal) => this.v2.send(new DescribeTargetGroupAttributesCommand({ TargetGroupArn: lb.id }), { abortSignal })),
      this.retry('reading target group', limit, (abortSignal) => this.v2.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [lb.id] }), { abortSignal })),
    ]);
    const delay = attributes.Attributes?.find((a) => a.Key === 'deregistration_delay.timeout_seconds')?.Value;
    const group = groups.TargetGroups?.[0];
    return {
      drainingSeconds: delay !== undefined ? Number(delay) : 300,
      healthCheckSeconds: (group?.HealthCheckIntervalSeconds ?? 30) * (group?.HealthyThresholdCount ?? 5),
    };
  }
}
