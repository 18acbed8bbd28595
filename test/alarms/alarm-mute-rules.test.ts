import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CloudWatchClient,
  GetAlarmMuteRuleCommand,
  ListAlarmMuteRulesCommand,
  ListTagsForResourceCommand,
  type ListAlarmMuteRulesCommandInput,
  PutAlarmMuteRuleCommand,
  PutMetricAlarmCommand,
} from '@aws-sdk/client-cloudwatch';
import { MOTO_CREDENTIALS, MOTO_REGION } from '../../local-fleet/moto.js';
import { AwsAlarmMuteRules, muteRuleName } from '../../src/alarms/alarm-mute-rules.js';
import { createLogger } from '../../src/log/logger.js';
import { motoForSuite } from '../support/aws.js';

const MINUTE = 60_000;
const ALARMS = ['data-ingest-staging-5xx', 'data-ingest-staging-latency'];
const atMinute = (ms: number) => `at(${new Date(ms).toISOString().slice(0, 16)})`;

describe('alarm mute rules in CloudWatch (moto, through the launcher)', () => {
  const suite = motoForSuite();
  let cloudwatch: CloudWatchClient;
  let rules: AwsAlarmMuteRules;

  const rawRule = (name: string) => cloudwatch.send(new GetAlarmMuteRuleCommand({ AlarmMuteRuleName: name }));

  before(async () => {
    cloudwatch = new CloudWatchClient({ endpoint: suite.moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, maxAttempts: 1 });
    rules = new AwsAlarmMuteRules(cloudwatch, createLogger({ level: 'silent' }));
    for (const AlarmName of ALARMS) {
      await cloudwatch.send(
        new PutMetricAlarmCommand({
          AlarmName,
          Namespace: 'AWS/ELB',
          MetricName: 'Latency',
          Statistic: 'Average',
          Period: 60,
          EvaluationPeriods: 2,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanThreshold',
          ActionsEnabled: true,
          AlarmActions: ['arn:aws:sns:us-west-2:123456789012:pager'],
        }),
      );
    }
  });
  after(() => cloudwatch?.destroy());

  it('names a release rule harbormaster-<release id> and refuses what cannot be a rule name', () => {
    assert.equal(muteRuleName('0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a'), 'harbormaster-0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a');
    assert.throws(() => muteRuleName('a b'), /cannot name an alarm mute rule/);
    assert.throws(() => muteRuleName('x'.repeat(243)), /cannot name an alarm mute rule/);
  });

  it('mutes, renews with a later expiry, unmutes, and unmutes again', async () => {
    const name = muteRuleName('11111111-2222-4333-8444-555555555555');
    const minute = Math.floor(Date.now() / MINUTE) * MINUTE;
    // Start 17 s into a minute two minutes ago (floored to that minute); until 90 min and 1 s after
    // the floored start (rounded up to 91 min).
    const start = new Date(minute - 2 * MINUTE + 17_000);
    const until = new Date(minute + 88 * MINUTE + 1_000);

    await rules.mute({ name, alarms: ALARMS, start, until, description: 'release 1111' });
    assert.deepEqual(await rules.read(name), { alarms: ALARMS, start: new Date(minute - 2 * MINUTE), expiresAt: until, status: 'ACTIVE' });
    const created = await rawRule(name);
    assert.deepEqual(created.Rule?.Schedule, { Expression: atMinute(minute - 2 * MINUTE), Duration: 'PT1H31M', Timezone: 'UTC' });
    assert.equal(created.MuteType, 'ONE_TIME');
    assert.equal(created.Description, 'release 1111');
    assert.equal(created.AlarmMuteRuleArn, `arn:aws:cloudwatch:${MOTO_REGION}:123456789012:alarm-mute-rule:${name}`);

    // Doing it again changes nothing (redelivery); a later `until` moves the expiry and the duration.
    await rules.mute({ name, alarms: ALARMS, start, until, description: 'release 1111' });
    assert.deepEqual((await rawRule(name)).Rule?.Schedule, created.Rule?.Schedule);
    const later = new Date(until.getTime() + 2 * 60 * MINUTE);
    await rules.mute({ name, alarms: ALARMS, start, until: later });
    assert.deepEqual(await rules.read(name), { alarms: ALARMS, start: new Date(minute - 2 * MINUTE), expiresAt: later, status: 'ACTIVE' });
    assert.equal((await rawRule(name)).Rule?.Schedule?.Duration, 'PT3H31M');

    await rules.unmute(name);
    assert.equal(await rules.read(name), undefined);
    await assert.rejects(rawRule(name), { name: 'ResourceNotFoundException' });
    await rules.unmute(name);
  });

  it('reads an unknown rule as undefined', async () => {
    assert.equal(await rules.read('harbormaster-never-created'), undefined);
  });

  it('refuses a window over 15 days with a clear message and creates nothing; 15 days exactly is P15D', async () => {
    const name = muteRuleName('22222222-2222-4333-8444-555555555555');
    const start = new Date(Math.floor(Date.now() / MINUTE) * MINUTE);
    await assert.rejects(rules.mute({ name, alarms: ALARMS, start, until: new Date(start.getTime() + 15 * 24 * 60 * MINUTE + 1) }), (error: Error) => {
      assert.match(error.message, /alarm mute window from .* is 15\.0 days; CloudWatch mute rules last at most 15 days/);
      return true;
    });
    assert.equal(await rules.read(name), undefined);

    await rules.mute({ name, alarms: ALARMS, start, until: new Date(start.getTime() + 15 * 24 * 60 * MINUTE) });
    assert.equal((await rawRule(name)).Rule?.Schedule?.Duration, 'P15D');
    await rules.unmute(name);
  });

  it('reads a rule whose expire date has passed as EXPIRED', async () => {
    const name = muteRuleName('33333333-2222-4333-8444-555555555555');
    const minute = Math.floor(Date.now() / MINUTE) * MINUTE;
    const until = new Date(minute - 10 * MINUTE);
    await rules.mute({ name, alarms: ALARMS, start: new Date(minute - 30 * MINUTE), until });
    assert.deepEqual(await rules.read(name), { alarms: ALARMS, start: new Date(minute - 30 * MINUTE), expiresAt: until, status: 'EXPIRED' });
    assert.equal((await rawRule(name)).Rule?.Schedule?.Duration, 'PT20M');
    await rules.unmute(name);
  });

  it('reads a rule whose window has not begun as SCHEDULED', async () => {
    const name = muteRuleName('44444444-2222-4333-8444-555555555555');
    const minute = Math.floor(Date.now() / MINUTE) * MINUTE;
    await rules.mute({ name, alarms: ALARMS, start: new Date(minute + 60 * MINUTE), until: new Date(minute + 90 * MINUTE) });
    assert.equal((await rules.read(name))?.status, 'SCHEDULED');
    await rules.unmute(name);
  });

  it('launcher: lists rules by targeted alarm and by status, with tags and recurring rules', async () => {
    const minute = Math.floor(Date.now() / MINUTE) * MINUTE;
    const put = (Name: string, Expression: string, AlarmNames: string[], extra: object = {}) =>
      cloudwatch.send(new PutAlarmMuteRuleCommand({ Name, Rule: { Schedule: { Expression, Duration: 'PT1H' } }, MuteTargets: { AlarmNames }, ...extra }));
    await put('list-active', atMinute(minute - 5 * MINUTE), [ALARMS[0]!], { Tags: [{ Key: 'team', Value: 'data' }] });
    await put('list-scheduled', atMinute(minute + 5 * 60 * MINUTE), [ALARMS[1]!]);
    // Every minute of every day: always within an occurrence of the last hour.
    await put('list-recurring', 'cron(* * * * *)', ALARMS);

    const arnsOf = async (input: ListAlarmMuteRulesCommandInput) =>
      ((await cloudwatch.send(new ListAlarmMuteRulesCommand(input))).AlarmMuteRuleSummaries ?? []).map((s) => s.AlarmMuteRuleArn!.split(':').pop()).sort();
    assert.deepEqual(await arnsOf({}), ['list-active', 'list-recurring', 'list-scheduled']);
    assert.deepEqual(await arnsOf({ AlarmName: ALARMS[0] }), ['list-active', 'list-recurring']);
    assert.deepEqual(await arnsOf({ Statuses: ['SCHEDULED'] }), ['list-scheduled']);
    assert.deepEqual(await arnsOf({ Statuses: ['ACTIVE'] }), ['list-active', 'list-recurring']);
    assert.equal((await rawRule('list-recurring')).MuteType, 'RECURRING');

    const page = await cloudwatch.send(new ListAlarmMuteRulesCommand({ MaxRecords: 2 }));
    assert.equal(page.AlarmMuteRuleSummaries?.length, 2);
    const rest = await cloudwatch.send(new ListAlarmMuteRulesCommand({ MaxRecords: 2, NextToken: page.NextToken }));
    assert.equal(rest.AlarmMuteRuleSummaries?.length, 1);
    assert.equal(rest.NextToken, undefined);

    const arn = (await rawRule('list-active')).AlarmMuteRuleArn!;
    assert.deepEqual((await cloudwatch.send(new ListTagsForResourceCommand({ ResourceARN: arn }))).Tags, [{ Key: 'team', Value: 'data' }]);
    for (const name of ['list-active', 'list-scheduled', 'list-recurring']) await rules.unmute(name);
  });

  it('launcher: refuses what AWS refuses, with its error codes', async () => {
    const put = (Expression: string, Duration: string, AlarmNames: string[] = ALARMS, extra: object = {}) =>
      cloudwatch.send(new PutAlarmMuteRuleCommand({ Name: 'refused', Rule: { Schedule: { Expression, Duration } }, MuteTargets: { AlarmNames }, ...extra }));
    const invalid = { name: 'InvalidParameterValueException', Code: 'InvalidParameterValue' };
    await assert.rejects(put('at(2030-02-30T10:00)', 'PT1H'), invalid);
    await assert.rejects(put('at(2030-01-01T10:00:00)', 'PT1H'), invalid);
    await assert.rejects(put('cron(0 2 * *)', 'PT1H'), invalid);
    await assert.rejects(put('rate(5 minutes)', 'PT1H'), invalid);
    await assert.rejects(put('at(2030-01-01T10:00)', 'PT30S'), invalid);
    await assert.rejects(put('at(2030-01-01T10:00)', 'P15DT1M'), invalid);
    await assert.rejects(put('at(2030-01-01T10:00)', '4 hours'), invalid);
    await assert.rejects(put('at(2030-01-01T10:00)', 'PT1H', ['no-such-alarm']), invalid);
    await assert.rejects(
      put('at(2030-01-01T10:00)', 'PT1H', ALARMS, { StartDate: new Date('2030-01-02T00:00:00Z'), ExpireDate: new Date('2030-01-01T00:00:00Z') }),
      invalid,
    );
    await assert.rejects(
      cloudwatch.send(
        new PutAlarmMuteRuleCommand({ Name: 'refused', Rule: { Schedule: { Expression: 'cron(0 2 * * SUN)', Duration: 'PT1H', Timezone: 'Mars/Olympus' } } }),
      ),
      invalid,
    );
    await assert.rejects(
      put('at(2030-01-01T10:00)', 'PT1H', Array.from({ length: 101 }, (_, i) => `alarm-${i}`)),
      { Code: 'ValidationError', message: /at 'muteTargets\.alarmNames' failed to satisfy constraint/ },
    );
    await assert.rejects(cloudwatch.send(new ListAlarmMuteRulesCommand({ NextToken: 'not-a-token' })), { name: 'InvalidNextToken' });
    await assert.rejects(rawRule('refused'), { name: 'ResourceNotFoundException' });

    await put('cron(0 18 * * FRI)', 'P2DT12H', ALARMS, { Rule: { Schedule: { Expression: 'cron(0 18 * * FRI)', Duration: 'P2DT12H', Timezone: 'Europe/London' } } });
    assert.deepEqual((await rawRule('refused')).Rule?.Schedule, { Expression: 'cron(0 18 * * FRI)', Duration: 'P2DT12H', Timezone: 'Europe/London' });
    await rules.unmute('refused');
  });
});
