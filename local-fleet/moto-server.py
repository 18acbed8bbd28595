"""moto_server with the two CloudWatch calls moto 5.2.1 lacks.

DisableAlarmActions and EnableAlarmActions raise NotImplementedError in moto 5.2.1. Harbormaster
mutes alarms with exactly these calls, so the local fleet fills them in: each toggles
`actions_enabled` on the named alarms, which DescribeAlarms then reports as ActionsEnabled.

Usage: python3 moto-server.py -H 127.0.0.1 -p PORT   (same arguments as moto_server)
"""
import os
import sys

from moto.core.responses import EmptyResult
from moto.cloudwatch.responses import CloudWatchResponse


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
