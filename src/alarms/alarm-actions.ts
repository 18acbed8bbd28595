import { CloudWatchClient, DescribeAlarmsCommand, DisableAlarmActionsCommand, EnableAlarmActionsCommand } from '@aws-sdk/client-cloudwatch';
import { withRetry, type CallLimit } from '../aws/transient.js';
import type { Logger } from '../log/logger.js';

// Alerting is muted by disabling the alarms' actions (the alarms still evaluate, so their history
// stays truthful) and unmuted by enabling exactly those that were enabled before. Because muted alarms
// still evaluate, their state can be watched during a release (alarm-watch.ts).

export type AlarmStateValue = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

export interface AlarmState {
  readonly state: AlarmStateValue;
  /** CloudWatch's StateReason, as it gives it (outside text: escape before showing). */
  readonly reason: string;
}

export interface AlarmActions {
  /** Alarm name -> actions enabled. Missing alarms are an error: a typo must not silently skip muting. */
  actionsEnabled(names: readonly string[], limit?: CallLimit): Promise<Map<string, boolean>>;
  disable(names: readonly string[], limit?: CallLimit): Promise<void>;
  enable(names: readonly string[], limit?: CallLimit): Promise<void>;
  /** Alarm name -> its state now; missing alarms are an error, as in actionsEnabled. */
  states(names: readonly string[], limit?: CallLimit): Promise<Map<string, AlarmState>>;
}

export class AwsAlarmActions implements AlarmActions {
  constructor(
    private readonly client: CloudWatchClient,
    private readonly logger: Logger,
  ) {}

  async actionsEnabled(names: readonly string[], limit?: CallLimit): Promise<Map<string, boolean>> {
    return this.describe(names, limit, (alarm) => alarm.ActionsEnabled ?? false);
  }

  async states(names: readonly string[], limit?: CallLimit): Promise<Map<string, AlarmState>> {
    return this.describe(names, limit, (alarm) => ({ state: (alarm.StateValue ?? 'INSUFFICIENT_DATA') as AlarmStateValue, reason: alarm.StateReason ?? '' }));
  }

  private async describe<T>(names: readonly string[], limit: CallLimit | undefined, read: (alarm: { ActionsEnabled?: boolean | undefined; StateValue?: string | undefined; StateReason?: string | undefined }) => T): Promise<Map<string, T>> {
    const found = new Map<string, T>();
    for (let i = 0; i < names.length; i += 100) {
      const chunk = names.slice(i, i + 100);
      const result = await withRetry((abortSignal) => this.client.send(new DescribeAlarmsCommand({ AlarmNames: chunk, AlarmTypes: ['MetricAlarm', 'CompositeAlarm'] }), { abortSignal }), {
        what: 'reading alarms',
        logger: this.logger,
        ...(limit ? { limit } : {}),
      });
      for (const alarm of [...(result.MetricAlarms ?? []), ...(result.CompositeAlarms ?? [])]) found.set(alarm.AlarmName!, read(alarm));
    }
    const missing = names.filter((n) => !found.has(n));
    if (missing.length > 0) throw new Error(`alarm(s) not found: ${missing.join(', ')}`);
    return found;
  }

  async disable(names: readonly string[], limit?: CallLimit): Promise<void> {
    if (names.length === 0) return;
    await withRetry((abortSignal) => this.client.send(new DisableAlarmActionsCommand({ AlarmNames: [...names] }), { abortSignal }), { what: 'disabling alarm actions', logger: this.logger, ...(limit ? { limit } : {}) });
  }

  async enable(names: readonly string[], limit?: CallLimit): Promise<void> {
    if (names.length === 0) return;
    await withRetry((abortSignal) => this.client.send(new EnableAlarmActionsCommand({ AlarmNames: [...names] }), { abortSignal }), { what: 'enabling alarm actions', logger: this.logger, retries: 8, ...(limit ? { limit } : {}) });
  }
}
