"""moto_server with the AWS calls moto 5.2.1 lacks, or answers unlike AWS, filled in for Harbormaster.

CloudWatch (moto raises NotImplementedError for these, which the SDK sees as an HTML 500):
- DisableAlarmActions / EnableAlarmActions: each toggles `actions_enabled` on the named alarms, which
  DescribeAlarms then reports as ActionsEnabled.
- PutAlarmMuteRule / GetAlarmMuteRule / ListAlarmMuteRules / DeleteAlarmMuteRule: a rule is stored
  per account and region as AWS documents it (name, description, schedule `at(yyyy-MM-ddThh:mm)` or
  `cron(...)` with its ISO-8601 duration and time zone, target alarm names, tags, start and expire
  dates) and read back with its ARN, MuteType (ONE_TIME / RECURRING), LastUpdatedTimestamp and a
  Status (SCHEDULED / ACTIVE / EXPIRED) computed at read time. Put with an existing name replaces the
  rule; Get of an unknown name is ResourceNotFoundException; Delete of an unknown name succeeds (AWS
  documents it as idempotent and declares no error for it). Put validates what AWS validates cheaply:
  expression, duration (PT1M..P15D), time zone, at most 100 alarm names, all of existing alarms,
  expire date after start date. Nothing in moto mutes anything: tests read the rules back.

ELBv2:
- DeregisterTargets of a target that is not registered (never, or already deregistered) succeeds and
  changes nothing, as AWS documents ("If the specified target does not exist, the action returns
  successfully"); moto 5.2.1 fails with InvalidTarget. Registered targets are deregistered as before.
  An instance id that EC2 does not know at all is still refused with InvalidTarget, and the call is
  all or nothing (moto deregistered the targets before the bad one, then failed).

SQS:
- Clock readings in moto's queue scans come from time.time(): the same values, without the cost that
  made a receive from a queue of 1000 messages take a second (see the section below).

Auto Scaling:
- SuspendProcesses / ResumeProcesses on a group that does not exist (deleted during a release) answer
  a ValidationError (a 400) as AWS does; moto 5.2.1 raises a KeyError, an HTML 500 that a client takes
  for a transient failure and retries for ever.

The handlers are written like moto's own: `_get_param` reads whichever protocol the client speaks
(the JS SDK v3 sends CloudWatch as awsJson1_0 with awsQueryCompatible: X-Amz-Target
GraniteServiceVersion20100801.<Operation>) and an ActionResult is serialised by moto against
botocore's model (which has the mute rule operations) for that protocol: a JSON body with
epoch-second timestamps; errors with `__type` and an `x-amzn-query-error: Code;Sender` header, from
which the SDK sets the error's `Code` (e.g. InvalidParameterValue, ValidationError) and name.

Usage: python3 moto-server.py -H 127.0.0.1 -p PORT   (same arguments as moto_server)
"""
import os
import re
import sys
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moto.autoscaling.exceptions import ValidationError as AutoScalingValidationError
from moto.autoscaling.models import AutoScalingBackend
from moto.cloudwatch.exceptions import CloudWatchException, InvalidParameterValue, ResourceNotFoundException, ValidationError
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.elbv2.exceptions import InvalidTargetError
from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeTargetGroup
from moto.utilities.utils import get_partition
import moto.sqs.models as sqs_models


# --- CloudWatch alarm actions ------------------------------------------------------------------


def _set_actions(response, enabled):
    # Written like moto's own handlers (delete_alarms): _get_param reads both the query and the JSON
    # protocol, and EmptyResult serialises for whichever the client speaks.
    for name in response._get_param("AlarmNames", []):
        alarm = response.cloudwatch_backend.alarms.get(name)
        if alarm is not None:
            alarm.actions_enabled = enabled
    return EmptyResult()


def disable_alarm_actions(self):
    return _set_actions(self, False)


def enable_alarm_actions(self):
    return _set_actions(self, True)


CloudWatchResponse.disable_alarm_actions = disable_alarm_actions
CloudWatchResponse.enable_alarm_actions = enable_alarm_actions


# --- CloudWatch alarm mute rules ---------------------------------------------------------------


class InvalidNextToken(CloudWatchException):
    code = "InvalidNextToken"


_AT = re.compile(r"^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
# ISO-8601 durations of fixed length only (weeks, days, hours, minutes, seconds): the longest allowed
# is P15D, so years and months are never needed.
_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_MONTHS = {name: i + 1 for i, name in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAYS = {name: i for i, name in enumerate("SUN MON TUE WED THU FRI SAT".split())}
# (minimum, maximum, names) of the five cron fields: minutes, hours, day of month, month, day of week.
_CRON_FIELDS = [(0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 7, _DAYS)]
_MAX_ALARMS = 100
_DEFAULT_MAX_RECORDS = 50


def _utc(value):
    """moto parses timestamps to naive UTC datetimes; rules keep aware UTC ones."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _now():
    return datetime.now(timezone.utc)


def _parse_duration(text):
    match = _DURATION.match(text or "")
    if not match or not any(match.groups()):
        raise InvalidParameterValue(f"Invalid duration '{text}': expected an ISO-8601 duration such as PT1M, PT4H or P2DT12H.")
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    duration = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if not timedelta(minutes=1) <= duration <= timedelta(days=15):
        raise InvalidParameterValue(f"Invalid duration '{text}': must be between PT1M and P15D.")
    return duration


def _parse_cron_field(text, minimum, maximum, names):
    values = set()
    for part in text.split(","):
        if part == "*":
            values.update(range(minimum, maximum + 1))
            continue
        bounds = part.split("-")
        if len(bounds) > 2:
            return None
        try:
            numbers = [names[b.upper()] if b.upper() in names else int(b) for b in bounds]
        except ValueError:
            return None
        low, high = numbers[0], numbers[-1]
        if not minimum <= low <= high <= maximum:
            return None
        values.update(range(low, high + 1))
    return values


def _parse_cron(body):
    """The five fields of `cron(Minutes Hours Day-of-month Month Day-of-week)` as sets of values, with
    `*`, `-` and `,` (what AWS documents) and English month and day names; None when invalid."""
    fields = body.split()
    if len(fields) != 5:
        return None
    parsed = [_parse_cron_field(f, *spec) for f, spec in zip(fields, _CRON_FIELDS)]
    if any(p is None for p in parsed):
        return None
    if 7 in parsed[4]:  # 7 is Sunday too
        parsed[4] = (parsed[4] - {7}) | {0}
    return {
        "minutes": parsed[0],
        "hours": parsed[1],
        "days": parsed[2],
        "months": parsed[3],
        "weekdays": parsed[4],
        "any_day": fields[2] == "*",
        "any_weekday": fields[4] == "*",
    }


def _zone(name):
    if name is None:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidParameterValue(f"Invalid timezone '{name}': expected an IANA time zone such as America/New_York or UTC.")


def _parse_expression(expression, zone):
    """('ONE_TIME', aware start) for at(...), ('RECURRING', cron fields) for cron(...)."""
    at = _AT.match(expression or "")
    if at:
        try:
            local = datetime(*(int(g) for g in at.groups()))
        except ValueError:
            local = None
        if local is not None:
            return "ONE_TIME", local.replace(tzinfo=zone).astimezone(timezone.utc)
    cron = _CRON.match(expression or "")
    if cron:
        fields = _parse_cron(cron.group(1))
        if fields is not None:
            return "RECURRING", fields
    raise InvalidParameterValue(
        f"Invalid schedule expression '{expression}': expected at(yyyy-MM-ddThh:mm) or cron(Minutes Hours Day-of-month Month Day-of-week)."
    )


def _cron_day_matches(fields, day):
    if day.month not in fields["months"]:
        return False
    in_month = day.day in fields["days"]
    in_week = (day.isoweekday() % 7) in fields["weekdays"]
    # Classic cron: when both day fields are restricted, either one matching is enough.
    if fields["any_day"] or fields["any_weekday"]:
        return in_month and in_week
    return in_month or in_week


def _cron_active(fields, zone, duration, start_date, now):
    """Approximation (AWS does not document the details): ACTIVE when an occurrence of the cron in the
    rule's time zone, at or after StartDate, began less than Duration ago. Wall-clock times are
    converted with zoneinfo, so DST gaps and repeats are handled only as zoneinfo folds them."""
    local_now = now.astimezone(zone)
    day = (local_now - duration).date()
    while day <= local_now.date():
        if _cron_day_matches(fields, day):
            for hour in sorted(fields["hours"]):
                for minute in sorted(fields["minutes"]):
                    begins = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(timezone.utc)
                    if start_date is not None and begins < start_date:
                        continue
                    if begins <= now < begins + duration:
                        return True
        day += timedelta(days=1)
    return False


class AlarmMuteRule:
    def __init__(self, arn, name, description, expression, duration_text, timezone_name, alarm_names, tags, start_date, expire_date):
        self.arn = arn
        self.name = name
        self.description = description
        self.expression = expression
        self.duration_text = duration_text
        self.timezone_name = timezone_name
        self.alarm_names = alarm_names
        self.tags = tags
        self.start_date = start_date
        self.expire_date = expire_date
        self.zone = _zone(timezone_name)
        self.duration = _parse_duration(duration_text)
        self.mute_type, self.schedule = _parse_expression(expression, self.zone)
        self.last_updated = _now()

    def status(self, now):
        if self.expire_date is not None and now >= self.expire_date:
            return "EXPIRED"
        if self.start_date is not None and now < self.start_date:
            return "SCHEDULED"
        if self.mute_type == "ONE_TIME":
            begins, ends = self.schedule, self.schedule + self.duration
            # A one-time window that has ended will never become active again: EXPIRED, even without
            # an ExpireDate (AWS: "passed its expiration date and will no longer become active").
            if now >= ends:
                return "EXPIRED"
            effective = max(begins, self.start_date) if self.start_date is not None else begins
            return "ACTIVE" if now >= effective else "SCHEDULED"
        return "ACTIVE" if _cron_active(self.schedule, self.zone, self.duration, self.start_date, now) else "SCHEDULED"

    def describe(self, now):
        schedule = {"Expression": self.expression, "Duration": self.duration_text}
        if self.timezone_name is not None:
            schedule["Timezone"] = self.timezone_name
        result = {
            "Name": self.name,
            "AlarmMuteRuleArn": self.arn,
            "Rule": {"Schedule": schedule},
            "Status": self.status(now),
            "MuteType": self.mute_type,
            "LastUpdatedTimestamp": self.last_updated,
        }
        if self.description is not None:
            result["Description"] = self.description
        if self.alarm_names is not None:
            result["MuteTargets"] = {"AlarmNames": list(self.alarm_names)}
        if self.start_date is not None:
            result["StartDate"] = self.start_date
        if self.expire_date is not None:
            result["ExpireDate"] = self.expire_date
        return result

    def summary(self, now):
        result = {"AlarmMuteRuleArn": self.arn, "Status": self.status(now), "MuteType": self.mute_type, "LastUpdatedTimestamp": self.last_updated}
        if self.expire_date is not None:
            result["ExpireDate"] = self.expire_date
        return result


def _mute_rules(backend):
    # Kept on the account/region backend itself, so moto's reset (which re-initialises every backend)
    # forgets them with the rest.
    if not hasattr(backend, "harbormaster_alarm_mute_rules"):
        backend.harbormaster_alarm_mute_rules = {}
    return backend.harbormaster_alarm_mute_rules


def put_alarm_mute_rule(self):
    backend = self.cloudwatch_backend
    name = self._get_param("Name")
    schedule = (self._get_param("Rule") or {}).get("Schedule") or {}
    targets = self._get_param("MuteTargets")
    alarm_names = None if targets is None else list(targets.get("AlarmNames") or [])
    if alarm_names is not None:
        if len(alarm_names) > _MAX_ALARMS:
            raise ValidationError(
                f"1 validation error detected: Value '{alarm_names}' at 'muteTargets.alarmNames' failed to satisfy constraint: "
                f"Member must have length less than or equal to {_MAX_ALARMS}"
            )
        # AWS: "The alarm names must match existing alarms in your account and region."
        missing = [n for n in alarm_names if n not in backend.alarms]
        if missing:
            raise InvalidParameterValue(f"Alarms not found: {', '.join(missing)}")
    start_date = _utc(self._get_param("StartDate"))
    expire_date = _utc(self._get_param("ExpireDate"))
    if start_date is not None and expire_date is not None and expire_date <= start_date:
        raise InvalidParameterValue("ExpireDate must be after StartDate.")
    tags = self._get_param("Tags", [])
    arn = f"arn:{get_partition(self.region)}:cloudwatch:{self.region}:{self.current_account}:alarm-mute-rule:{name}"
    rule = AlarmMuteRule(
        arn=arn,
        name=name,
        description=self._get_param("Description"),
        expression=schedule.get("Expression"),
        duration_text=schedule.get("Duration"),
        timezone_name=schedule.get("Timezone"),
        alarm_names=alarm_names,
        tags=tags,
        start_date=start_date,
        expire_date=expire_date,
    )
    _mute_rules(backend)[name] = rule
    if tags:
        backend.tagger.tag_resource(arn, tags)
    return EmptyResult()


def get_alarm_mute_rule(self):
    name = self._get_param("AlarmMuteRuleName")
    rule = _mute_rules(self.cloudwatch_backend).get(name)
    if rule is None:
        raise ResourceNotFoundException(f"Alarm mute rule {name} does not exist.")
    return ActionResult(rule.describe(_now()))


def list_alarm_mute_rules(self):
    # AWS also declares ResourceNotFoundException here (presumably for an unknown AlarmName); not
    # guessed: an AlarmName no rule targets simply lists nothing.
    alarm_name = self._get_param("AlarmName")
    statuses = set(self._get_param("Statuses") or [])
    max_records = self._get_param("MaxRecords") or _DEFAULT_MAX_RECORDS
    if not 1 <= max_records <= 100:
        raise ValidationError(
            f"1 validation error detected: Value '{max_records}' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to 100"
        )
    token = self._get_param("NextToken")
    now = _now()
    rules = sorted(_mute_rules(self.cloudwatch_backend).values(), key=lambda r: r.name)
    if alarm_name is not None:
        rules = [r for r in rules if alarm_name in (r.alarm_names or [])]
    if statuses:
        rules = [r for r in rules if r.status(now) in statuses]
    first = 0
    if token is not None:
        # The token is the name of the first rule of the next page.
        names = [r.name for r in rules]
        if token not in names:
            raise InvalidNextToken("The service returned an invalid next token.")
        first = names.index(token)
    page = rules[first : first + max_records]
    result = {"AlarmMuteRuleSummaries": [r.summary(now) for r in page]}
    if first + max_records < len(rules):
        result["NextToken"] = rules[first + max_records].name
    return ActionResult(result)


def delete_alarm_mute_rule(self):
    # Idempotent on AWS: "If you delete a mute rule that does not exist, the operation succeeds".
    backend = self.cloudwatch_backend
    rule = _mute_rules(backend).pop(self._get_param("AlarmMuteRuleName"), None)
    if rule is not None:
        backend.tagger.delete_all_tags_for_resource(rule.arn)
    return EmptyResult()


CloudWatchResponse.put_alarm_mute_rule = put_alarm_mute_rule
CloudWatchResponse.get_alarm_mute_rule = get_alarm_mute_rule
CloudWatchResponse.list_alarm_mute_rules = list_alarm_mute_rules
CloudWatchResponse.delete_alarm_mute_rule = delete_alarm_mute_rule


# --- ELBv2 DeregisterTargets of an unregistered target -----------------------------------------


def _deregister(self, targets):
    # Validate everything first, then change: an instance id EC2 does not know is refused as before
    # (nothing deregistered); a known target that is not registered is skipped, as on AWS.
    for target in targets:
        target_id = target["Id"]
        if target_id in self.targets:
            continue
        if self.target_type == "instance" and self.ec2_backend.get_instance_by_id(target_id) is None:
            raise InvalidTargetError()
    for target in targets:
        registered = self.targets.pop(target["Id"], None)
        if registered is not None:
            self.deregistered_targets[target["Id"]] = registered


FakeTargetGroup.deregister = _deregister


# --- ELBv2 draining and initial health, on request -----------------------------------------------
# AWS reports a deregistered target `draining` for the group's deregistration delay, and a newly
# registered one `initial` until it has passed its health checks; moto reports neither (a target is
# healthy at once, and unused once deregistered). A target group tagged
# harbormaster:simulated-timing = "draining=SECONDS,initial=SECONDS" gets both, for tests of the
# worker's waits; every other group answers as moto does.


_TIMING_TAG = "harbormaster:simulated-timing"
# (target group ARN, target id) -> (state, until as time.monotonic())
_timed_states = {}


def _timing_of(group):
    from moto.elbv2.models import elbv2_backends

    parts = group.arn.split(":")
    tags = elbv2_backends[parts[4]][parts[3]].tagging_service.get_tag_dict_for_resource(group.arn)
    spec = tags.get(_TIMING_TAG)
    if not spec:
        return {}
    timing = {}
    for item in spec.split(","):
        key, _, value = item.partition("=")
        timing[key.strip()] = float(value)
    return timing


_register_as_moto = FakeTargetGroup.register
_deregister_as_patched = FakeTargetGroup.deregister
_health_for_as_moto = FakeTargetGroup.health_for


def _register_timed(self, targets):
    _register_as_moto(self, targets)
    seconds = _timing_of(self).get("initial", 0)
    for target in targets:
        if seconds > 0:
            _timed_states[(self.arn, target["Id"])] = ("initial", time.monotonic() + seconds)
        else:
            _timed_states.pop((self.arn, target["Id"]), None)


def _deregister_timed(self, targets):
    registered = {target["Id"] for target in targets if target["Id"] in self.targets}
    _deregister_as_patched(self, targets)
    seconds = _timing_of(self).get("draining", 0)
    for target_id in registered:
        if seconds > 0:
            _timed_states[(self.arn, target_id)] = ("draining", time.monotonic() + seconds)
        else:
            _timed_states.pop((self.arn, target_id), None)


def _health_for_timed(self, target, ec2_backend):
    timed = _timed_states.get((self.arn, target["Id"]))
    if timed is not None and time.monotonic() < timed[1]:
        state = timed[0]
        port = target.get("Port", self.port)
        if state == "draining" and target["Id"] not in self.targets:
            return FakeHealthStatus(target["Id"], port, self.health_check_port, "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")
        if state == "initial" and target["Id"] in self.targets:
            return FakeHealthStatus(target["Id"], port, self.health_check_port, "initial", "Elb.RegistrationInProgress", "Target registration is in progress")
    return _health_for_as_moto(self, target, ec2_backend)


def _describe_target_health_timed(self, target_group_arn, targets):
    group = self.target_groups.get(target_group_arn)
    if group is not None and not targets:
        # A full listing shows draining targets too, as on AWS.
        now = time.monotonic()
        draining = [{"Id": tid, "Port": group.port} for (arn, tid), (state, until) in list(_timed_states.items()) if arn == target_group_arn and state == "draining" and now < until and tid not in group.targets]
        targets = list(group.targets.values()) + draining
    return _describe_target_health_as_moto(self, target_group_arn, targets)


FakeTargetGroup.register = _register_timed
FakeTargetGroup.deregister = _deregister_timed
FakeTargetGroup.health_for = _health_for_timed
_describe_target_health_as_moto = ELBv2Backend.describe_target_health
ELBv2Backend.describe_target_health = _describe_target_health_timed


# --- Auto Scaling Suspend/ResumeProcesses on a group that does not exist ------------------------


def _with_group(original):
    # moto 5.2.1 raises KeyError (an HTML 500, which a client takes for a transient failure); AWS
    # answers a ValidationError (a 400), which retrying never clears.
    def handler(self, group_name, scaling_processes):
        if group_name not in self.autoscaling_groups:
            raise AutoScalingValidationError(f"AutoScalingGroup name not found - AutoScalingGroup '{group_name}' not found")
        return original(self, group_name, scaling_processes)

    return handler


AutoScalingBackend.suspend_processes = _with_group(AutoScalingBackend.suspend_processes)
AutoScalingBackend.resume_processes = _with_group(AutoScalingBackend.resume_processes)



# --- SQS clock readings ---------------------------------------------------------------------------
# moto 5.2.1 reads the clock through datetime arithmetic (unix_time_millis, ~15 us a reading) for
# every message of a queue, twice, on each of the several scans of the whole queue it makes per
# message sent or received (queue.attributes counts the queue three times, and is read for each
# message). A queue of 1000 messages took about a second to receive ten, and draining it took minutes:
# a cost AWS does not have, which hid the worker's own. The same reading (milliseconds since the
# epoch) from time.time(); a time passed in is converted as moto does.

_unix_time_millis_as_moto = sqs_models.unix_time_millis


def _unix_time_millis(dt=None):
    return time.time() * 1000.0 if dt is None else _unix_time_millis_as_moto(dt)


sqs_models.unix_time_millis = _unix_time_millis

def _exit_with_parent():
    """Ends this server when the process that started it is gone (a killed test run), so no moto is orphaned."""
    import os
    import threading
    import time

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    from moto.server import main

    if os.environ.get("HARBORMASTER_MOTO_EXIT_WITH_PARENT") == "1":
        _exit_with_parent()

    sys.exit(main(sys.argv[1:]))
