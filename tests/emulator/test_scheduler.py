"""The embedded AWS's scheduler: EventBridge rules fire on time and invoke their Lambda targets."""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import datetime

import pytest
from botocore.exceptions import ClientError

from ecomlib import aws, schedule
from ecomlib.local import server
from test_lambda_runtime import create_function

FUNCTION = "ecom-test-schedule-probe"
PROBE = """
import json

def lambda_handler(event, context):
    print("EVENT " + json.dumps(event))
    return {"got": event}
"""


@pytest.fixture(scope="module")
def probe():
    """A function that returns the event it got (and logs it)."""
    aws.endpoint_url()
    iam, lam = aws.client("iam"), aws.client("lambda")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                      "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=FUNCTION, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", PROBE)
    arn = create_function(FunctionName=FUNCTION, Runtime="python3.11", Role=role, Handler="handler.lambda_handler",
                          Code={"ZipFile": buffer.getvalue()})["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=FUNCTION, WaiterConfig={"Delay": 0.1})
    yield arn
    lam.delete_function(FunctionName=FUNCTION)
    iam.delete_role(RoleName=FUNCTION)


@pytest.fixture
def rule(probe):
    """Make rules aimed at the probe (with or without Lambda's permission); deleted afterwards."""
    events, lam, made = aws.client("events"), aws.client("lambda"), []

    def make(name: str, expression: str | None = None, permit: bool = True, pattern: dict | None = None,
             state: str = "ENABLED") -> str:
        kwargs = {"ScheduleExpression": expression} if expression else {"EventPattern": json.dumps(pattern)}
        arn = events.put_rule(Name=name, State=state, **kwargs)["RuleArn"]
        events.put_targets(Rule=name, Targets=[{"Id": "probe", "Arn": probe}])
        if permit:
            lam.add_permission(FunctionName=FUNCTION, StatementId=name, Action="lambda:InvokeFunction",
                               Principal="events.amazonaws.com", SourceArn=arn)
        made.append((name, permit))
        return arn

    yield make
    for name, permit in made:
        events.remove_targets(Rule=name, Ids=["probe"])
        events.delete_rule(Name=name)
        if permit:
            lam.remove_permission(FunctionName=FUNCTION, StatementId=name)


def advance(seconds: float, rule_name: str) -> list[dict]:
    return [o for o in server.control("scheduler/advance", {"seconds": seconds})["fired"] if o["rule"] == rule_name]


def clock() -> datetime:
    return datetime.fromisoformat(server.status()["scheduler"]["clock"].replace("Z", "+00:00"))


def test_bad_expression_is_refused_by_put_rule(probe):
    with pytest.raises(ClientError) as caught:
        aws.client("events").put_rule(Name="ecom-test-bad", ScheduleExpression="rate(1 minutes)")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "unit is 'minute'" in caught.value.response["Error"]["Message"]


def test_rate_rule_fires_once_per_period_with_the_scheduled_event(rule):
    arn = rule("ecom-test-every-10", "rate(10 minutes)")
    assert advance(1, "ecom-test-every-10") == []  # the scheduler now knows the rule: period starts
    assert advance(597, "ecom-test-every-10") == []
    [fired] = advance(3, "ecom-test-every-10")
    assert fired["ok"], fired
    event = fired["response"]["got"]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [arn] and event["time"] == fired["time"]
    assert event["account"] == aws.account_id() and event["region"] == aws.region()
    assert len(advance(1200, "ecom-test-every-10")) == 2  # two more periods, two more firings


def test_cron_rule_fires_at_its_time(rule):
    rule("ecom-test-half-hourly", "cron(0/30 * * * ? *)")
    due = schedule.next_times("cron(0/30 * * * ? *)", clock(), 1)[0]
    before = (due - clock()).total_seconds() - 30
    assert advance(max(before, 0), "ecom-test-half-hourly") == []
    [fired] = advance(60, "ecom-test-half-hourly")
    assert fired["time"] == due.strftime("%Y-%m-%dT%H:%M:%SZ") and fired["ok"]


def test_rule_without_permission_invokes_nothing(rule):
    rule("ecom-test-no-permission", "rate(1 minute)", permit=False)
    invocations = server.status()["scheduler"]["invocations"]
    advance(1, "ecom-test-no-permission")
    [fired] = advance(60, "ecom-test-no-permission")
    assert not fired["ok"] and "add_permission" in fired["error"]
    assert server.status()["scheduler"]["invocations"] == invocations


def test_disabled_rule_does_not_fire_and_run_now_needs_a_rule(rule):
    rule("ecom-test-disabled", "rate(1 minute)", state="DISABLED")
    assert advance(600, "ecom-test-disabled") == []
    with pytest.raises(ValueError, match="no rule named 'ecom-test-nothing'"):
        server.control("scheduler/run", {"rule": "ecom-test-nothing"})


def test_run_now_fires_a_rule_whatever_its_schedule(rule):
    rule("ecom-test-yearly", "cron(0 0 1 1 ? *)")
    [fired] = server.control("scheduler/run", {"rule": "ecom-test-yearly"})["fired"]
    assert fired["ok"] and fired["response"]["got"]["detail-type"] == "Scheduled Event"


def test_advancing_too_far_is_refused(rule):
    rule("ecom-test-every-minute", "rate(1 minute)")
    advance(1, "ecom-test-every-minute")
    with pytest.raises(ValueError, match="smaller steps"):
        server.control("scheduler/advance", {"seconds": 10 * 86400})


@pytest.mark.slow
def test_the_scheduler_fires_on_its_own_while_running(rule):
    rule("ecom-test-background", "rate(1 minute)")
    advance(1, "ecom-test-background")
    fired_before = server.status()["scheduler"]["fired"]
    advance(57, "ecom-test-background")  # now due in about 2 s of real time
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        latest = server.status()["scheduler"]["latest"]
        if server.status()["scheduler"]["fired"] > fired_before and latest[-1]["rule"] == "ecom-test-background":
            assert latest[-1]["ok"]
            return
        time.sleep(0.2)
    pytest.fail("the rule did not fire on its own")


def test_put_events_reaches_lambda_targets_of_pattern_rules(rule):
    rule("ecom-test-pattern", pattern={"source": ["ecom.test"]})
    answer = aws.client("events").put_events(Entries=[{"Source": "ecom.test", "DetailType": "Ping",
                                                       "Detail": json.dumps({"n": 7})}])
    assert answer["FailedEntryCount"] == 0
    logs = aws.client("logs")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{FUNCTION}")["logStreams"]
        messages = [e["message"] for s in streams
                    for e in logs.get_log_events(logGroupName=f"/aws/lambda/{FUNCTION}",
                                                 logStreamName=s["logStreamName"])["events"]]
        if any('"source": "ecom.test"' in m and '"n": 7' in m for m in messages):
            return
        time.sleep(0.3)
    pytest.fail("the pattern rule's Lambda target never got the event")
