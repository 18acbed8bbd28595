import { CloudWatchClient, DescribeAlarmsCommand, DisableAlarmActionsCommand, EnableAlarmActionsCommand } from '@aws-sdk/client-cloudwatch';
import { withRetry, type CallLimit } from '../aws/transient.js';
import type { Logger } from '../log/logger.js';

// Alerting is muted by disabling the alarms' actions (the alarms still evaluate, so their history
// stays truthful) and unmuted by enabling exactly those that were enabled before.

export interface AlarmActions {
  /** Alarm name -> actions enabled. Missing alarms are an error: a typo must not silently skip muting. */
  actionsEnabled(names: readonly string[], limit?: CallLimit): Promise<Map<string, boolean>>;
  disable(names: readonly string[], limit?: CallLimit): Promise<void>;
  enable(names: readonly string[], limit?: CallLimit): Promise<void>;
}

export class AwsAlarmActions implements AlarmActions {
  constructor(
    private readonly client: CloudWatchClient,
    private readonly logger: Logger,
  ) {}

  async actionsEnabled(names: readonly string[], limit?: CallLimit): Promise<Map<string, boolean>> {
    const states = new Map<string, boolean>();
    for (let i = 0; i < names.length; i += 100) {
      const chunk = names.slice(i, i + 100);
      const result = await withRetry((abortSignal) => this.client.send(new DescribeAlarmsCommand({ AlarmNames: chunk, AlarmTypes: ['MetricAlarm', 'CompositeAlarm'] }), { abortSignal }), {
        what: 'reading alarms',
        logger: this.logger,
        ...(limit ? { limit } : {}),
      });
      for (const alarm of [...(result.MetricAlarms ?? []), ...(result.CompositeAlarms ?? [])]) states.set(alarm.AlarmName!, alarm.ActionsEnabled ?? false);
    }
    const missing = names.filter((n) => !states.has(n));
    if (missing.length > 0) throw new Error(`alarm(s) not found: ${missing.join(', ')}`);
    return states;
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
