"""Scheduled EventBridge rules: fire them on time and invoke their Lambda targets.

AWS: a rule with a ``ScheduleExpression`` (``rate(5 minutes)``, ``cron(0 2 * * ? *)``,
see :mod:`ecomlib.schedule`) fires on its schedule while it is ENABLED, in UTC. At each
firing EventBridge sends every target the "Scheduled Event" (``source`` ``aws.events``,
``detail-type`` "Scheduled Event", ``time``, ``resources`` = the rule's ARN), or the
target's constant ``Input`` instead. A Lambda target is invoked asynchronously, and only
if the function's resource-based policy lets ``events.amazonaws.com`` invoke it (the
``add_permission`` call, usually with the rule's ARN as ``SourceArn``); otherwise the
firing counts in the rule's ``FailedInvocations`` metric and nothing runs. A rate rule
first fires one period after it is created or enabled.

moto 5.2: stores rules and targets and checks little of the expression; nothing ever
fires. ``PutEvents`` raises NotImplementedError for every rule whose targets include a
Lambda function, and delivers events to scheduled rules too.

Here: a background thread looks at the enabled scheduled rules every second and fires
the ones that are due, delivering AWS's event to each Lambda target through
``lambda_runtime`` (after checking the permission, as AWS does). Bad expressions are
refused by ``PutRule`` with a ValidationException that says what is wrong. ``PutEvents``
gives Lambda targets of event-pattern rules the event (asynchronously) and leaves
scheduled rules alone.

The clock can be moved for notebooks and tests: ``POST /_ecomlib/scheduler/advance``
``{"seconds": N}`` moves it forward and fires, in time order, every firing due in
between, each one waiting for its invocation to finish; ``POST /_ecomlib/scheduler/run``
``{"rule": name}`` fires one rule now (like EventBridge would at its next time). Both
answer with what was fired and how each invocation ended.

Not emulated: targets other than Lambda functions (SQS, Step Functions... are logged
and skipped), ``InputPath`` and ``InputTransformer`` on scheduled rules, Lambda's two
automatic retries of a failed asynchronous invocation, EventBridge Scheduler (the
``scheduler`` service), and CloudWatch metrics (the status counts firings instead).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
from collections import deque
from datetime import datetime, timedelta, timezone

from moto.core import DEFAULT_ACCOUNT_ID

from ecomlib import schedule
from ecomlib.local.component import Route, Worker, WorkerComponent
from ecomlib.local.lambda_runtime import LambdaRuntime, get_function

log = logging.getLogger("ecomlib.scheduler")

TICK = 1.0  # seconds between looks at the rules
MAX_FIRINGS_PER_ADVANCE = 1_000  # a bigger jump is almost surely a mistake: say so


class Scheduler(WorkerComponent):
    """The scheduler's clock, each rule's next firing, the latest firings and counters."""

    name = "scheduler"

    def __init__(self, runtime: LambdaRuntime) -> None:
        self.runtime = runtime
        self.offset = 0.0  # seconds the clock is ahead of real time
        self.next: dict[tuple[str, str], datetime] = {}  # (rule ARN, expression) -> its next firing
        self.history: deque[dict] = deque(maxlen=200)  # the latest firings, for status()
        self.counts = {"fired": 0, "invocations": 0, "failed": 0}
        # one scheduling step at a time: the loop, advance or run
        self._worker = Worker("scheduler", TICK, self._tick)

    # ---- lifecycle --------------------------------------------------------------------

    def reset(self) -> None:
        with self._worker.lock:
            self.offset = 0.0
            self.next.clear()
            self.history.clear()
            for key in self.counts:
                self.counts[key] = 0

    def status(self) -> dict:
        with self._worker.lock:
            return {"scheduler": {
                "clock": _iso(self.now()), "ahead_seconds": round(self.offset),
                "next": {arn: _iso(moment) for (arn, _), moment in sorted(self.next.items())},
                **self.counts, "latest": list(self.history)[-10:],
            }}

    def routes(self) -> dict[str, Route]:
        """``scheduler/advance`` and ``scheduler/run`` (see the module's docstring)."""
        return {
            "scheduler/advance": lambda body: {"fired": self.advance(float(body.get("seconds", 0)))},
            "scheduler/run": lambda body: {"fired": self.run(str(body.get("rule", "")), body.get("region"))},
        }

    # ---- the clock --------------------------------------------------------------------

    def now(self) -> datetime:
        """The scheduler's time: real time plus however far it was advanced."""
        return datetime.now(timezone.utc) + timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> list[dict]:
        """Move the clock ``seconds`` forward and fire every rule due meanwhile, in order."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._worker.lock:
            due = self._due(self.now() + timedelta(seconds=seconds))
            if len(due) > MAX_FIRINGS_PER_ADVANCE:
                raise ValueError(f"advancing {seconds:.0f} s would fire rules {len(due)} times "
                                 f"(at most {MAX_FIRINGS_PER_ADVANCE}): advance in smaller steps")
            self.offset += seconds
            return [outcome for moment, rule in due for outcome in self._fire(rule, moment)]

    def run(self, rule_name: str, region: str | None = None) -> list[dict]:
        """Fire the rule ``rule_name`` once now, whatever its schedule (it must exist)."""
        with self._worker.lock:
            for rule in _rules():
                if rule.name == rule_name and (region is None or rule.region_name == region):
                    return self._fire(rule, self.now())
        raise LookupError(f"no rule named {rule_name!r}")

    # ---- firing -----------------------------------------------------------------------

    def _tick(self) -> None:
        for moment, rule in self._due(self.now()):  # asynchronous, as AWS invokes Lambda targets
            threading.Thread(target=self._fire, args=(rule, moment), daemon=True).start()

    def _due(self, until: datetime) -> list[tuple[datetime, object]]:
        """Every (firing time, rule) up to ``until``, in time order; moves each rule's next time on."""
        current, due = self.now(), []
        rules = {(rule.arn, rule.scheduled_expression): rule for rule in _rules()}
        for key in list(self.next):
            if key not in rules:  # deleted, disabled or given a new schedule
                del self.next[key]
        for key, rule in rules.items():
            try:
                when = schedule.parse(key[1])
            except schedule.ScheduleError:
                continue  # stored before this process refused bad expressions
            moment = self.next.setdefault(key, when.next_after(current))
            while moment is not None and moment <= until:
                due.append((moment, rule))
                moment = when.next_after(moment)
                if len(due) > MAX_FIRINGS_PER_ADVANCE:
                    break
            if moment is None:
                self.next.pop(key)
            else:
                self.next[key] = moment
        return sorted(due, key=lambda item: item[0])

    def _fire(self, rule, moment: datetime) -> list[dict]:
        """Deliver one firing of ``rule`` to each of its targets; the outcome per target."""
        event = json.dumps(schedule.scheduled_event(rule.arn, moment, rule.account_id, rule.region_name))
        outcomes = []
        for target in list(rule.targets):
            outcome = {"rule": rule.name, "time": _iso(moment), "target": target["Id"]}
            arn = target["Arn"]
            if ":lambda:" not in arn:
                outcome.update(ok=False, error="only Lambda targets are emulated")
            elif not permitted(arn, rule.arn):
                outcome.update(ok=False, error=(
                    "the function's policy does not let events.amazonaws.com invoke it "
                    "(lambda add_permission with this rule as SourceArn)"))
            else:
                try:
                    fn = get_function(arn)
                except Exception:  # noqa: BLE001  (the function was deleted)
                    outcome.update(ok=False, error="function not found")
                else:
                    result = self.runtime.invoke(fn, target.get("Input") or event)
                    outcome.update(ok=result.ok, request_id=result.request_id)
                    if result.ok:
                        outcome["response"] = _short(result.payload)
                    else:
                        outcome["error"] = (result.error or {}).get("errorMessage", "failed")
                    self.counts["invocations"] += 1
            if not outcome["ok"]:
                self.counts["failed"] += 1
                log.warning("rule %s -> %s: %s", rule.name, target["Id"], outcome["error"])
            outcomes.append(outcome)
            self.history.append(outcome)
        self.counts["fired"] += 1
        return outcomes

    def send_to_lambda_targets(self, rule, event: dict) -> list:
        """PutEvents reaching an event-pattern rule: invoke its permitted Lambda targets
        asynchronously (as AWS); returns the targets that are not Lambda functions."""
        targets = list(rule.targets)
        for target in targets:
            if ":lambda:" in target["Arn"] and permitted(target["Arn"], rule.arn):
                self.runtime.invoke(get_function(target["Arn"]), target.get("Input") or json.dumps(event), "Event")
        return [t for t in targets if ":lambda:" not in t["Arn"]]


def validate_expression(expression: str) -> None:
    """PutRule's check of a ScheduleExpression: AWS's ValidationException saying what is wrong."""
    from moto.events.exceptions import ValidationException

    try:
        schedule.parse(expression)
    except schedule.ScheduleError as exc:
        raise ValidationException(f"Parameter ScheduleExpression is not valid: {exc}") from None


def _rules() -> list:
    """moto's enabled rules that have a schedule, in every region."""
    from moto.events.models import events_backends

    from ecomlib.local.component import MOTO_LOCK

    with MOTO_LOCK:
        return [rule for backend in events_backends[DEFAULT_ACCOUNT_ID].values()
                for bus in backend.event_buses.values() for rule in bus.rules.values()
                if rule.scheduled_expression and rule.state == "ENABLED"]


def permitted(function_arn: str, rule_arn: str) -> bool:
    """Does the function's resource policy let EventBridge invoke it for this rule?"""
    try:
        fn = get_function(function_arn)
    except Exception:  # noqa: BLE001
        return True  # let the invocation report the missing function
    for statement in fn.policy.statements:
        text = json.dumps(statement.get("Principal"))
        actions = statement.get("Action")
        actions = [actions] if isinstance(actions, str) else actions or []
        if (statement.get("Effect", "Allow") != "Allow" or "events.amazonaws.com" not in text
                or not any(a in ("lambda:InvokeFunction", "lambda:*", "*") for a in actions)):
            continue
        # {"ArnLike": {"AWS:SourceArn": "arn:aws:events:...:rule/name"}}, if any
        arns = [arn for test in statement.get("Condition", {}).values()
                for key, arn in test.items() if key.lower() == "aws:sourcearn"]
        if not arns or any(fnmatch.fnmatchcase(rule_arn, arn) for arn in arns):
            return True
    return False


def _short(payload: bytes, limit: int = 500) -> object:
    try:
        value = json.loads(payload or b"null")
    except ValueError:
        return payload[:limit].decode("utf-8", "replace")
    text = json.dumps(value)
    return value if len(text) <= limit else text[:limit] + "..."


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
