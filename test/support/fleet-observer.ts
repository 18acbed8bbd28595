import { DescribeAutoScalingGroupsCommand, AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient, DescribeAlarmsCommand, ListAlarmMuteRulesCommand } from '@aws-sdk/client-cloudwatch';
import Docker from 'dockerode';
import { DescribeLoadBalancersCommand, ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import { DescribeTargetHealthCommand, ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { Fleet } from '../../local-fleet/fleet.js';

// Reads the fleet the way a person checking on it would: the load balancers' members, what each
// host's live container answers, Auto Scaling and alarms. Used before, during and after releases.

export class FleetObserver {
  private readonly settings;
  readonly elb;
  readonly elbv2;
  readonly autoScaling;
  readonly cloudWatch;

  constructor(private readonly fleet: Fleet) {
    this.settings = { endpoint: fleet.aws.endpoint, region: fleet.aws.region, credentials: fleet.aws.credentials, maxAttempts: 1 };
    this.elb = new ElasticLoadBalancingClient(this.settings);
    this.elbv2 = new ElasticLoadBalancingV2Client(this.settings);
    this.autoScaling = new AutoScalingClient(this.settings);
    this.cloudWatch = new CloudWatchClient(this.settings);
  }

  close() {
    [this.elb, this.elbv2, this.autoScaling, this.cloudWatch].forEach((c) => c.destroy());
  }

  get stagingHosts() {
    return this.fleet.hosts.filter((h) => h.deployment === 'staging');
  }

  async classicMembers(): Promise<string[]> {
    const result = await this.elb.send(new DescribeLoadBalancersCommand({ LoadBalancerNames: [this.fleet.aws.classicLoadBalancer] }));
    return (result.LoadBalancerDescriptions?.[0]?.Instances ?? []).map((i) => i.InstanceId!).sort();
  }

  async targetGroupMembers(): Promise<string[]> {
    const result = await this.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: this.fleet.aws.targetGroupArn }));
    return (result.TargetHealthDescriptions ?? []).filter((d) => d.TargetHealth?.State === 'healthy').map((d) => d.Target!.Id!).sort();
  }

  /** Every target the target group routes to or checks (any state but draining and unused). */
  async targetGroupRegistered(): Promise<string[]> {
    const result = await this.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: this.fleet.aws.targetGroupArn }));
    return (result.TargetHealthDescriptions ?? []).filter((d) => !['draining', 'unused'].includes(d.TargetHealth?.State ?? '')).map((d) => d.Target!.Id!).sort();
  }

  async suspendedProcesses(): Promise<string[]> {
    const result = await this.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [this.fleet.aws.autoScalingGroup] }));
    return (result.AutoScalingGroups?.[0]?.SuspendedProcesses ?? []).map((p) => p.ProcessName!).sort();
  }

  async alarmActions(): Promise<Record<string, boolean>> {
    const result = await this.cloudWatch.send(new DescribeAlarmsCommand({ AlarmNames: this.fleet.aws.alarmNames }));
    return Object.fromEntries((result.MetricAlarms ?? []).map((a) => [a.AlarmName!, a.ActionsEnabled!]));
  }

  /** Names of the alarm mute rules that exist (a release's rule must be gone once it has ended). */
  async muteRules(): Promise<string[]> {
    const result = await this.cloudWatch.send(new ListAlarmMuteRulesCommand({}));
    return (result.AlarmMuteRuleSummaries ?? []).map((rule) => rule.AlarmMuteRuleArn!.split(':').pop()!.replace(/^alarm-mute-rule\//, '')).sort();
  }

  /** Each staging host's running containers of the staging target, by name. */
  async liveContainers(): Promise<Record<string, string[]>> {
    const entries = await Promise.all(
      this.stagingHosts.map(async (h) => {
        const running = await new Docker({ socketPath: h.dockerSocket }).listContainers({ filters: { label: ['harbormaster.target=data/ingest/staging'] } });
        return [h.name, running.map((c) => c.Names[0]!.replace(/^\//, '')).sort()] as const;
      }),
    );
    return Object.fromEntries(entries);
  }

  /** What each staging host's live container answers at /version (or the error). */
  async versions(): Promise<Record<string, string>> {
    const entries = await Promise.all(this.stagingHosts.map(async (h) => [h.name, await answer(`http://${h.address}:8080/version`)] as const));
    return Object.fromEntries(entries);
  }
}

export async function answer(url: string): Promise<string> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    const body = (await response.text()).trim();
    return response.ok ? body : `HTTP ${response.status}`;
  } catch (error) {
    return `unreachable (${((error as Error & { cause?: Error }).cause ?? (error as Error)).message})`;
  }
}

export interface SamplerReport {
  samples: number;
  /** Samples where an instance registered in either load balancer did not answer healthy. */
  unhealthyRegistered: string[];
  /** Most staging hosts out of a load balancer at once. */
  maxOutOfService: number;
}

export interface SamplerOptions {
  readonly intervalMs?: number;
  /** Host names a test broke on purpose (an engine it stopped): not judged while listed. */
  readonly excused?: ReadonlySet<string>;
}

/**
 * Samples the fleet until stopped: at every sample, every instance registered in either load balancer
 * must answer /health with 200, and the number of staging hosts out of service is recorded.
 */
export function startSampler(observer: FleetObserver, fleet: Fleet, options: SamplerOptions = {}): { stop(): Promise<SamplerReport> } {
  const report: SamplerReport = { samples: 0, unhealthyRegistered: [], maxOutOfService: 0 };
  const byId = new Map(fleet.hosts.map((h) => [h.instanceId, h]));
  const staging = observer.stagingHosts.map((h) => h.instanceId);
  let running = true;
  const loop = (async () => {
    while (running) {
      const [classic, v2] = await Promise.all([observer.classicMembers(), observer.targetGroupRegistered()]);
      const registered = new Set([...classic, ...v2]);
      const inBoth = staging.filter((id) => classic.includes(id) && v2.includes(id));
      report.maxOutOfService = Math.max(report.maxOutOfService, staging.length - inBoth.length);
      await Promise.all(
        [...registered].map(async (id) => {
          const host = byId.get(id);
          if (!host || options.excused?.has(host.name)) return;
          const health = await answer(`http://${host.address}:8080/health`);
          if (options.excused?.has(host.name)) return;
          if (health.startsWith('HTTP') || health.startsWith('unreachable')) report.unhealthyRegistered.push(`${host.name}: ${health}`);
        }),
      );
      report.samples += 1;
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return report;
    },
  };
}
