"""EventBridge schedule expressions: ``rate(...)`` and six-field ``cron(...)``, in UTC.

AWS's syntax (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html):

- ``rate(value unit)``: a positive whole number and ``minute``/``hour``/``day``, singular
  when the value is 1 (``rate(1 hour)``) and plural otherwise (``rate(5 minutes)``).
- ``cron(Minutes Hours Day-of-month Month Day-of-week Year)``, always UTC:

  ============  ===========  ==================
  field         values       wildcards
  ============  ===========  ==================
  Minutes       0-59         , - * /
  Hours         0-23         , - * /
  Day-of-month  1-31         , - * ? / L W
  Month         1-12 JAN-DEC , - * /
  Day-of-week   1-7 SUN-SAT  , - * ? L #
  Year          1970-2199    , - * /
  ============  ===========  ==================

  One of Day-of-month and Day-of-week must be ``?`` (you cannot name both).
  ``L`` is the last day of the month (or ``6L``: the month's last Friday), ``15W`` the
  weekday nearest the 15th, ``2#1`` the month's first Monday (1 = Sunday).

:func:`parse` checks an expression and says what is wrong with a bad one;
:func:`next_times` lists when it fires; :func:`scheduled_event` is the event a rule's
target receives.
"""

from __future__ import annotations

import calendar
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {name: i for i, name in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)}
_DAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
_FIELDS = (  # name, lowest, highest, names, special wildcards allowed
    ("Minutes", 0, 59, {}, ""),
    ("Hours", 0, 23, {}, ""),
    ("Day-of-month", 1, 31, {}, "?LW"),
    ("Month", 1, 12, _MONTHS, ""),
    ("Day-of-week", 1, 7, _DAYS, "?L#"),
    ("Year", 1970, 2199, {}, ""),
)


class ScheduleError(ValueError):
    """A schedule expression AWS would refuse; the message says why."""


@dataclass(frozen=True)
class Rate:
    """``rate(N unit)``: every ``seconds``, counted from when the rule was created."""

    expression: str
    seconds: int

    def next_after(self, moment: datetime) -> datetime:
        """The firing one period after ``moment`` (a firing, or when the rule was created)."""
        return moment + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class Cron:
    """``cron(...)``: the six fields, each kept as text and checked by :func:`parse`."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: str
    months: frozenset[int]
    day_of_week: str
    years: frozenset[int]

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after ``moment`` (None if the years run out)."""
        moment = moment.astimezone(timezone.utc).replace(second=0, microsecond=0)
        day = moment.date()
        while day.year <= 2199:
            if day.year in self.years and day.month in self.months and self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.utc)
                        if candidate > moment:
                            return candidate
            day += timedelta(days=1)
        return None

    def _day_matches(self, day) -> bool:
        if self.day_of_month != "?":
            return any(_dom_matches(item, day) for item in self.day_of_month.split(","))
        return any(_dow_matches(item, day) for item in self.day_of_week.split(","))


def parse(expression: str) -> Rate | Cron:
    """The schedule ``expression`` as a :class:`Rate` or :class:`Cron`; ScheduleError if AWS would refuse it."""
    text = (expression or "").strip()
    match = re.fullmatch(r"rate\((.*)\)", text)
    if match:
        return _parse_rate(text, match.group(1))
    match = re.fullmatch(r"cron\((.*)\)", text)
    if match:
        return _parse_cron(text, match.group(1))
    raise ScheduleError(f"{expression!r} is not a schedule: use rate(5 minutes) or cron(0 2 * * ? *)")


def next_times(expression: str, after: datetime, count: int = 5) -> list[datetime]:
    """The next ``count`` firings after ``after`` (a rate counts from ``after``)."""
    schedule, moment, times = parse(expression), after, []
    while len(times) < count:
        moment = schedule.next_after(moment)
        if moment is None:
            break
        times.append(moment)
    return times


def scheduled_event(rule_arn: str, moment: datetime, account: str, region: str) -> dict:
    """The event EventBridge sends a scheduled rule's target (AWS's "Scheduled Event")."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


# ---- parsing --------------------------------------------------------------------------


def _parse_rate(text: str, inner: str) -> Rate:
    parts = inner.split()
    if len(parts) != 2 or not parts[0].isdigit():
        raise ScheduleError(f"{text}: a rate is 'rate(value unit)', e.g. rate(5 minutes)")
    value, unit = int(parts[0]), parts[1]
    singular = unit.removesuffix("s")
    if singular not in _UNITS:
        raise ScheduleError(f"{text}: the unit must be minute(s), hour(s) or day(s), not {unit!r}")
    if value < 1:
        raise ScheduleError(f"{text}: the value must be a positive whole number")
    if (value == 1) != (unit == singular):
        wanted = singular if value == 1 else singular + "s"
        raise ScheduleError(f"{text}: with the value {value} the unit is {wanted!r} (AWS refuses {unit!r})")
    return Rate(text, value * _UNITS[singular])


def _parse_cron(text: str, inner: str) -> Cron:
    fields = inner.split()
    if len(fields) != 6:
        raise ScheduleError(
            f"{text}: a cron expression has 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), "
            f"not {len(fields)}; e.g. cron(0 2 * * ? *) for 02:00 UTC every day")
    dom, dow = fields[2], fields[4]
    if (dom == "?") == (dow == "?"):
        raise ScheduleError(f"{text}: one of Day-of-month and Day-of-week must be '?' (and only one)")
    values = []
    for position, (name, low, high, names, special) in enumerate(_FIELDS):
        field = fields[position].upper()
        if position in (2, 4):
            if field != "?":
                for item in field.split(","):
                    _check_day_item(text, name, item, low, high, names, special)
            values.append(field)
        else:
            values.append(frozenset(_expand(text, name, field, low, high, names)))
    return Cron(text, values[0], values[1], values[2], values[3], values[4], values[5])


def _number(text: str, name: str, token: str, low: int, high: int, names: dict) -> int:
    value = names.get(token) if token in names else (int(token) if token.isdigit() else None)
    if value is None or not low <= value <= high:
        raise ScheduleError(f"{text}: {name} must be {low}-{high}"
                            + (f" or {next(iter(names))}-{list(names)[-1]}" if names else "")
                            + f", not {token!r}")
    return value


def _expand(text: str, name: str, field: str, low: int, high: int, names: dict) -> set[int]:
    """The values of a plain field (``*``, ``5``, ``1-5``, ``*/15``, ``10-50/20``, lists of these)."""
    result: set[int] = set()
    for item in field.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleError(f"{text}: the step in {name} {item!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = (_number(text, name, t, low, high, names) for t in (first, last))
            if start > end:
                raise ScheduleError(f"{text}: the range {base!r} in {name} runs backwards")
        else:
            start = _number(text, name, base, low, high, names)
            end = high if step_text else start
        result.update(range(start, end + 1, step))
    return result


def _check_day_item(text: str, name: str, item: str, low: int, high: int, names: dict, special: str) -> None:
    if item in ("*", "L"):
        return
    if "W" in special and item.endswith("W"):
        _number(text, name, item[:-1], low, high, names)
    elif "L" in special and item.endswith("L") and name == "Day-of-week":
        _number(text, name, item[:-1], low, high, names)
    elif "#" in special and "#" in item:
        day, _, nth = item.partition("#")
        _number(text, name, day, low, high, names)
        if nth not in ("1", "2", "3", "4", "5"):
            raise ScheduleError(f"{text}: in {item!r} the week of the month must be 1-5")
    else:
        _expand(text, name, item, low, high, names)


# ---- matching days --------------------------------------------------------------------


def _aws_weekday(day) -> int:
    return (day.weekday() + 1) % 7 + 1  # Python: Monday 0 .. Sunday 6; AWS: Sunday 1 .. Saturday 7


def _dom_matches(item: str, day) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    if item == "L":
        return day.day == last
    if item.endswith("W"):
        target = min(int(item[:-1]), last)
        weekday = calendar.weekday(day.year, day.month, target)  # Monday 0
        if weekday == 5:  # Saturday: the Friday before, or the Monday after the 1st
            target = target - 1 if target > 1 else target + 2
        elif weekday == 6:  # Sunday: the Monday after, or the Friday before the month's end
            target = target + 1 if target < last else target - 2
        return day.day == target
    return day.day in _expand("", "Day-of-month", item, 1, 31, {})


def _dow_matches(item: str, day) -> bool:
    weekday = _aws_weekday(day)
    if item == "L":
        return weekday == 7
    if item.endswith("L"):
        last = calendar.monthrange(day.year, day.month)[1]
        return weekday == _number("", "", item[:-1], 1, 7, _DAYS) and day.day + 7 > last
    if "#" in item:
        name, _, nth = item.partition("#")
        return weekday == _number("", "", name, 1, 7, _DAYS) and (day.day - 1) // 7 + 1 == int(nth)
    return weekday in _expand("", "Day-of-week", item, 1, 7, _DAYS)
