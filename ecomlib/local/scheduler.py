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

from ecomlib import schedule
from ecomlib.local import lambda_runtime

log = logging.getLogger("ecomlib.scheduler")

ACCOUNT_ID = "123456789012"  # moto's default account
TICK = 1.0  # seconds between looks at the rules
MAX_FIRINGS_PER_ADVANCE = 1_000  # a bigger jump is almost surely a mistake: say so

_offset = 0.0  # seconds the clock is ahead of real time
_next: dict[tuple[str, str], datetime] = {}  # (rule ARN, expression) -> its next firing
_history: deque[dict] = deque(maxlen=200)  # the latest firings, for status()
_counts = {"fired": 0, "invocations": 0, "failed": 0}
_work = threading.RLock()  # one scheduling step at a time: the loop, advance or run
_stop = threading.Event()


# ---- lifecycle hooks ------------------------------------------------------------------


def start(endpoint: str) -> None:  # noqa: ARG001
    _patch_moto()
    _stop.clear()
    threading.Thread(target=_loop, name="scheduler", daemon=True).start()


def stop() -> None:
    _stop.set()


def after_reset() -> None:
    global _offset
    with _work:
        _offset = 0.0
        _next.clear()
        _history.clear()
        for key in _counts:
            _counts[key] = 0


def status() -> dict:
    with _work:
        return {"scheduler": {
            "clock": _iso(now()), "ahead_seconds": round(_offset),
            "next": {arn: _iso(moment) for (arn, _), moment in sorted(_next.items())},
            **_counts, "latest": list(_history)[-10:],
        }}


def control(route: str, body: dict) -> dict | None:
    """``scheduler/advance`` and ``scheduler/run`` (see the module's docstring)."""
    if route == "scheduler/advance":
        return {"fired": advance(float(body.get("seconds", 0)))}
    if route == "scheduler/run":
        return {"fired": run(str(body.get("rule", "")), body.get("region"))}
    return None


# ---- the clock ------------------------------------------------------------------------


def now() -> datetime:
    """The scheduler's time: real time plus however far it was advanced."""
    return datetime.now(timezone.utc) + timedelta(seconds=_offset)


def advance(seconds: float) -> list[dict]:
    """Move the clock ``seconds`` forward and fire every rule due meanwhile, in order."""
    global _offset
    if seconds < 0:
        raise ValueError("the clock only moves forward")
    with _work:
        due = _due(now() + timedelta(seconds=seconds))
        if len(due) > MAX_FIRINGS_PER_ADVANCE:
            raise ValueError(f"advancing {seconds:.0f} s would fire rules {len(due)} times "
                             f"(at most {MAX_FIRINGS_PER_ADVANCE}): advance in smaller steps")
        _offset += seconds
        return [outcome for moment, rule in due for outcome in _fire(rule, moment)]


def run(rule_name: str, region: str | None = None) -> list[dict]:
    """Fire the rule ``rule_name`` once now, whatever its schedule (it must exist)."""
    with _work:
        for rule in _rules():
            if rule.name == rule_name and (region is None or rule.region_name == region):
                return _fire(rule, now())
    raise LookupError(f"no rule named {rule_name!r}")


# ---- firing ---------------------------------------------------------------------------


def _loop() -> None:
    while not _stop.wait(TICK):
        try:
            with _work:
                due = _due(now())
            for moment, rule in due:  # asynchronous, as AWS invokes Lambda targets
                threading.Thread(target=_fire, args=(rule, moment), daemon=True).start()
        except Exception:  # noqa: BLE001  (keep scheduling; the log says what broke)
            log.exception("scheduler: a step failed")


def _rules() -> list:
    """moto's enabled rules that have a schedule, in every region."""
    from moto.events.models import events_backends

    from ecomlib.local.server import MOTO_LOCK

    with MOTO_LOCK:
        return [rule for backend in events_backends[ACCOUNT_ID].values()
                for bus in backend.event_buses.values() for rule in bus.rules.values()
                if rule.scheduled_expression and rule.state == "ENABLED"]


def _due(until: datetime) -> list[tuple[datetime, object]]:
    """Every (firing time, rule) up to ``until``, in time order; moves each rule's next time on."""
    current, due = now(), []
    rules = {(rule.arn, rule.scheduled_expression): rule for rule in _rules()}
    for key in list(_next):
        if key not in rules:  # deleted, disabled or given a new schedule
            del _next[key]
    for key, rule in rules.items():
        try:
            when = schedule.parse(key[1])
        except schedule.ScheduleError:
            continue  # stored before this process refused bad expressions
        moment = _next.setdefault(key, when.next_after(current))
        while moment is not None and moment <= until:
            due.append((moment, rule))
            moment = when.next_after(moment)
            if len(due) > MAX_FIRINGS_PER_ADVANCE:
                break
        if moment is None:
            _next.pop(key)
        else:
            _next[key] = moment
    return sorted(due, key=lambda item: item[0])


def _fire(rule, moment: datetime) -> list[dict]:
    """Deliver one firing of ``rule`` to each of its targets; the outcome per target."""
    event = json.dumps(schedule.scheduled_event(rule.arn, moment, rule.account_id, rule.region_name))
    outcomes = []
    for target in list(rule.targets):
        outcome = {"rule": rule.name, "time": _iso(moment), "target": target["Id"]}
        arn = target["Arn"]
        if ":lambda:" not in arn:
            outcome.update(ok=False, error="only Lambda targets are emulated")
        elif not _permitted(arn, rule.arn):
            outcome.update(ok=False, error=(
                "the function's policy does not let events.amazonaws.com invoke it "
                "(lambda add_permission with this rule as SourceArn)"))
        else:
            try:
                fn = lambda_runtime.get_function(arn)
            except Exception:  # noqa: BLE001  (the function was deleted)
                outcome.update(ok=False, error="function not found")
            else:
                result = lambda_runtime.invoke(fn, target.get("Input") or event)
                outcome.update(ok=result.ok, request_id=result.request_id)
                if result.ok:
                    outcome["response"] = _short(result.payload)
                else:
                    outcome["error"] = (result.error or {}).get("errorMessage", "failed")
                _counts["invocations"] += 1
        if not outcome["ok"]:
            _counts["failed"] += 1
            log.warning("rule %s -> %s: %s", rule.name, target["Id"], outcome["error"])
        outcomes.append(outcome)
        _history.append(outcome)
    _counts["fired"] += 1
    return outcomes


def _permitted(function_arn: str, rule_arn: str) -> bool:
    """Does the function's resource policy let EventBridge invoke it for this rule?"""
    try:
        fn = lambda_runtime.get_function(function_arn)
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


# ---- moto -----------------------------------------------------------------------------


def _patch_moto() -> None:
    """PutRule checks expressions as AWS does; PutEvents reaches Lambda targets."""
    from moto.events import models
    from moto.events.exceptions import ValidationException

    if getattr(models.EventsBackend, "_ecomlib_patched", False):
        return
    original_put_rule = models.EventsBackend.put_rule
    original_send = models.Rule.send_to_targets

    def put_rule(self, name: str, *args, **kwargs):
        expression = kwargs.get("scheduled_expression")
        if expression:
            try:
                schedule.parse(expression)
            except schedule.ScheduleError as exc:
                raise ValidationException(f"Parameter ScheduleExpression is not valid: {exc}") from None
        return original_put_rule(self, name, *args, **kwargs)

    def send_to_targets(self, original_event, transform_input: bool = True) -> None:
        if self.scheduled_expression and not self.event_pattern.get_pattern():
            return  # scheduled rules fire on time, not on events
        if not self.event_pattern.matches_event(original_event):
            return
        targets = list(self.targets)
        for target in targets:
            if ":lambda:" in target["Arn"] and _permitted(target["Arn"], self.arn):
                fn = lambda_runtime.get_function(target["Arn"])
                lambda_runtime.invoke(fn, target.get("Input") or json.dumps(original_event), "Event")
        others = [t for t in targets if ":lambda:" not in t["Arn"]]
        if others:
            self.targets = others
            try:
                original_send(self, original_event, transform_input)
            finally:
                self.targets = targets

    models.EventsBackend.put_rule = put_rule
    models.Rule.send_to_targets = send_to_targets
    models.EventsBackend._ecomlib_patched = True
