"""EventBridge schedule expressions (ecomlib.schedule): parsing, firing times, the event."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ecomlib import schedule

T0 = datetime(2026, 11, 28, 2, 30, tzinfo=timezone.utc)  # a Saturday


def times(expression: str, count: int = 3, after: datetime = T0) -> list[str]:
    return [t.strftime("%a %Y-%m-%d %H:%M") for t in schedule.next_times(expression, after, count)]


@pytest.mark.parametrize("expression, expected", [
    ("rate(1 minute)", ["Sat 2026-11-28 02:31", "Sat 2026-11-28 02:32", "Sat 2026-11-28 02:33"]),
    ("rate(5 minutes)", ["Sat 2026-11-28 02:35", "Sat 2026-11-28 02:40", "Sat 2026-11-28 02:45"]),
    ("rate(2 hours)", ["Sat 2026-11-28 04:30", "Sat 2026-11-28 06:30", "Sat 2026-11-28 08:30"]),
    ("rate(1 day)", ["Sun 2026-11-29 02:30", "Mon 2026-11-30 02:30", "Tue 2026-12-01 02:30"]),
    ("cron(0 2 * * ? *)", ["Sun 2026-11-29 02:00", "Mon 2026-11-30 02:00", "Tue 2026-12-01 02:00"]),
    ("cron(0/15 * * * ? *)", ["Sat 2026-11-28 02:45", "Sat 2026-11-28 03:00", "Sat 2026-11-28 03:15"]),
    ("cron(10,40 3 * * ? *)", ["Sat 2026-11-28 03:10", "Sat 2026-11-28 03:40", "Sun 2026-11-29 03:10"]),
    ("cron(0 9 ? * MON-FRI *)", ["Mon 2026-11-30 09:00", "Tue 2026-12-01 09:00", "Wed 2026-12-02 09:00"]),
    ("cron(0 9 ? * 1,7 *)", ["Sat 2026-11-28 09:00", "Sun 2026-11-29 09:00", "Sat 2026-12-05 09:00"]),  # 1 = Sunday
    ("cron(0 0 L * ? *)", ["Mon 2026-11-30 00:00", "Thu 2026-12-31 00:00", "Sun 2027-01-31 00:00"]),
    ("cron(0 0 ? * 6L *)", ["Fri 2026-12-25 00:00", "Fri 2027-01-29 00:00", "Fri 2027-02-26 00:00"]),
    ("cron(0 0 ? * 2#1 *)", ["Mon 2026-12-07 00:00", "Mon 2027-01-04 00:00", "Mon 2027-02-01 00:00"]),
    # 15W: the weekday nearest the 15th (2027-05-15 is a Saturday -> Friday the 14th)
    ("cron(0 0 15W * ? 2027)", ["Fri 2027-01-15 00:00", "Mon 2027-02-15 00:00", "Mon 2027-03-15 00:00"]),
    ("cron(0 12 1 JAN,JUL ? *)", ["Fri 2027-01-01 12:00", "Thu 2027-07-01 12:00", "Sat 2028-01-01 12:00"]),
])
def test_firing_times(expression, expected):
    assert times(expression) == expected


def test_nearest_weekday_moves_off_weekends():
    assert times("cron(0 0 15W 5 ? 2027)", 1) == ["Fri 2027-05-14 00:00"]  # the 15th is a Saturday
    assert times("cron(0 0 1W 5 ? 2027)", 1) == ["Mon 2027-05-03 00:00"]  # the 1st is a Saturday: not April
    assert times("cron(0 0 16W 5 ? 2027)", 1) == ["Mon 2027-05-17 00:00"]  # the 16th is a Sunday


def test_cron_ends_with_its_years():
    assert times("cron(0 0 1 1 ? 2027)", 5) == ["Fri 2027-01-01 00:00"]
    assert schedule.next_times("cron(0 0 1 1 ? 2020)", T0) == []


def test_cron_is_utc_and_strictly_after():
    on_the_minute = datetime(2026, 11, 29, 2, 0, tzinfo=timezone.utc)
    assert times("cron(0 2 * * ? *)", 1, after=on_the_minute) == ["Mon 2026-11-30 02:00"]


@pytest.mark.parametrize("expression, message", [
    ("rate(1 minutes)", "unit is 'minute'"),
    ("rate(5 minute)", "unit is 'minutes'"),
    ("rate(0 minutes)", "positive whole number"),
    ("rate(five minutes)", "rate(value unit)"),
    ("rate(3 weeks)", "minute(s), hour(s) or day(s)"),
    ("cron(0 2 * *)", "6 fields"),
    ("cron(0 2 * * * *)", "must be '?'"),
    ("cron(0 2 ? * ? *)", "must be '?'"),
    ("cron(60 2 * * ? *)", "Minutes must be 0-59"),
    ("cron(0 24 * * ? *)", "Hours must be 0-23"),
    ("cron(0 2 32 * ? *)", "Day-of-month must be 1-31"),
    ("cron(0 2 ? 13 * *)", "Month must be 1-12 or JAN-DEC"),
    ("cron(0 2 ? * FOO *)", "Day-of-week must be 1-7 or SUN-SAT"),
    ("cron(0 2 ? * 2#6 *)", "week of the month must be 1-5"),
    ("cron(0 2 * * ? 1969)", "Year must be 1970-2199"),
    ("cron(0 5-2 * * ? *)", "runs backwards"),
    ("cron(0/0 2 * * ? *)", "step"),
    ("every day at 2", "not a schedule"),
    ("", "not a schedule"),
])
def test_bad_expressions_say_what_is_wrong(expression, message):
    with pytest.raises(schedule.ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        schedule.parse(expression)


def test_scheduled_event_has_aws_shape():
    arn = "arn:aws:events:eu-west-1:123456789012:rule/nightly"
    event = schedule.scheduled_event(arn, datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=timezone.utc),
                                     "123456789012", "eu-west-1")
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert (event["detail-type"], event["source"], event["time"]) == ("Scheduled Event", "aws.events", "2026-01-02T03:04:05Z")
    assert event["resources"] == [arn] and event["detail"] == {} and event["version"] == "0"
    assert event["id"] != schedule.scheduled_event(arn, T0, "1", "r")["id"]
