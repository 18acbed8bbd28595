import {
  CloudWatchClient,
  DeleteAlarmMuteRuleCommand,
  GetAlarmMuteRuleCommand,
  PutAlarmMuteRuleCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-cloudwatch';
import { withRetry, type CallLimit } from '../aws/transient.js';
import type { Logger } from '../log/logger.js';

// Alarms muted by a CloudWatch alarm mute rule rather than by disabling their actions: the rule ends
// on its own at its expire date, so a worker that dies mid-release cannot leave alerting off for ever.
// One one-time rule per release: schedule `at(start)` in UTC, for whole minutes until `until`.

const MINUTE_MS = 60_000;
/** CloudWatch refuses a mute duration above P15D. */
const MAX_MINUTES = 15 * 24 * 60;
/** CloudWatch: "You can specify up to 100 alarm names". */
const MAX_ALARMS = 100;
const RULE_PREFIX = 'harbormaster-';
/** Rule names are 1..255 characters; kept to characters that read plainly in an ARN. */
const RULE_NAME = /^[A-Za-z0-9._-]{1,255}$/;

export interface MuteRule {
  readonly name: string;
  readonly alarms: readonly string[];
  /** Floored to the minute (UTC): an `at(...)` schedule has no seconds. */
  readonly start: Date;
  readonly until: Date;
  readonly description?: string;
}

export interface MuteRuleState {
  readonly alarms: string[];
  /** The start of the one-time window, when the rule is an `at(...)` schedule in UTC. */
  readonly start?: Date;
  readonly expiresAt?: Date;
  /** As CloudWatch reports it: SCHEDULED, ACTIVE or EXPIRED. */
  readonly status?: string;
}

export interface AlarmMuteRules {
  /** Creates the rule, or moves it (renewal with a later `until`): `alarms` muted from `start` until `until`. Idempotent. */
  mute(rule: MuteRule, limit?: CallLimit): Promise<void>;
  /** Deletes the rule; an unknown rule is already what was asked. */
  unmute(name: string, limit?: CallLimit): Promise<void>;
  /** The rule as CloudWatch has it, or undefined when there is none. */
  read(name: string, limit?: CallLimit): Promise<MuteRuleState | undefined>;
}

/** The mute rule of one release (release ids are UUIDs, well within the 255 characters allowed). */
export function muteRuleName(releaseId: string): string {
  const name = `${RULE_PREFIX}${releaseId}`;
  if (!RULE_NAME.test(name)) throw new Error(`cannot name an alarm mute rule after release id ${JSON.stringify(releaseId)}`);
  return name;
}

/** `at(yyyy-MM-ddThh:mm)` and an ISO-8601 duration (PT1M..P15D) for the window from `start` to `until`. */
export function muteSchedule(start: Date, until: Date): { expression: string; duration: string } {
  const from = Math.floor(start.getTime() / MINUTE_MS) * MINUTE_MS;
  const minutes = Math.max(1, Math.ceil((until.getTime() - from) / MINUTE_MS));
  if (minutes > MAX_MINUTES) {
    throw new Error(
      `alarm mute window from ${new Date(from).toISOString()} until ${until.toISOString()} is ${(minutes / 1440).toFixed(1)} days; ` +
        'CloudWatch mute rules last at most 15 days',
    );
  }
  return { expression: `at(${new Date(from).toISOString().slice(0, 16)})`, duration: isoMinutes(minutes) };
}

function isoMinutes(total: number): string {
  const days = Math.floor(total / 1440);
  const hours = Math.floor((total % 1440) / 60);
  const minutes = total % 60;
  const time = `${hours ? `${hours}H` : ''}${minutes ? `${minutes}M` : ''}`;
  return `P${days ? `${days}D` : ''}${time ? `T${time}` : ''}`;
}

function parseAt(expression: string | undefined, timezone: string | undefined): Date | undefined {
  const match = /^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2})\)$/.exec(expression ?? '');
  if (!match || (timezone !== undefined && timezone !== 'UTC')) return undefined;
  return new Date(`${match[1]}:00Z`);
}

const isNotFound = (error: unknown) => error instanceof ResourceNotFoundException || (error as Error | undefined)?.name === 'ResourceNotFoundException';

export class AwsAlarmMuteRules implements AlarmMuteRules {
  constructor(
    private readonly client: CloudWatchClient,
    private readonly logger: Logger,
  ) {}

  async mute(rule: MuteRule, limit?: CallLimit): Promise<void> {
    // Refused here, with the reason, rather than as a bare validation error from CloudWatch.
    if (!RULE_NAME.test(rule.name)) throw new Error(`invalid alarm mute rule name ${JSON.stringify(rule.name)}`);
    if (rule.alarms.length === 0) throw new Error(`alarm mute rule ${rule.name} needs at least one alarm`);
    if (rule.alarms.length > MAX_ALARMS) throw new Error(`alarm mute rule ${rule.name} names ${rule.alarms.length} alarms; CloudWatch allows ${MAX_ALARMS}`);
    const { expression, duration } = muteSchedule(rule.start, rule.until);
    // Put replaces a rule of the same name whole, so a repeat (redelivery, renewal) converges.
    await withRetry(
      (abortSignal) =>
        this.client.send(
          new PutAlarmMuteRuleCommand({
            Name: rule.name,
            ...(rule.description !== undefined ? { Description: rule.description } : {}),
            Rule: { Schedule: { Expression: expression, Duration: duration, Timezone: 'UTC' } },
            MuteTargets: { AlarmNames: [...rule.alarms] },
            ExpireDate: rule.until,
          }),
          { abortSignal },
        ),
      { what: `muting alarms with rule ${rule.name}`, logger: this.logger, ...(limit ? { limit } : {}) },
    );
  }

  async unmute(name: string, limit?: CallLimit): Promise<void> {
    try {
      // Unmuting matters more than muting: more patience before giving up.
      await withRetry((abortSignal) => this.client.send(new DeleteAlarmMuteRuleCommand({ AlarmMuteRuleName: name }), { abortSignal }), {
        what: `deleting alarm mute rule ${name}`,
        logger: this.logger,
        retries: 8,
        ...(limit ? { limit } : {}),
      });
    } catch (error) {
      // AWS documents the delete as idempotent; a not-found answer would mean the same.
      if (!isNotFound(error)) throw error;
    }
  }

  async read(name: string, limit?: CallLimit): Promise<MuteRuleState | undefined> {
    try {
      const rule = await withRetry((abortSignal) => this.client.send(new GetAlarmMuteRuleCommand({ AlarmMuteRuleName: name }), { abortSignal }), {
        what: `reading alarm mute rule ${name}`,
        logger: this.logger,
        ...(limit ? { limit } : {}),
      });
      const schedule = rule.Rule?.Schedule;
      const start = parseAt(schedule?.Expression, schedule?.Timezone);
      return {
        alarms: rule.MuteTargets?.AlarmNames ?? [],
        ...(start ? { start } : {}),
        ...(rule.ExpireDate ? { expiresAt: rule.ExpireDate } : {}),
        ...(rule.Status ? { status: rule.Status } : {}),
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}
