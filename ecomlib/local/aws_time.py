"""How long AWS makes you wait, and how the embedded AWS reproduces it, compressed.

AWS: many changes are not finished when the call that asks for them returns. A new
function is ``Pending`` for a moment, an event source mapping is ``Creating``, a delivery
stream ``CREATING``, a cluster ``creating`` for minutes; a new role or policy is not
usable at once (IAM is eventually consistent); a deleted queue's name is refused for
60 seconds. Code that works on AWS waits on those states (waiters, ``describe_*``
loops), never on a fixed sleep.

The embedded AWS goes through the same states in the same order, for
``AWS seconds x ECOM_TIME_SCALE`` (default 0.01: a minute on AWS is 0.6 s here). Each
delay lives in :data:`AWS_SECONDS` with where AWS says so; components ask
:func:`seconds` and compare with :func:`now`, never sleep themselves. A scale of 0 turns
every delay off (a test that needs the lenient behaviour); the scale never makes a
delay longer than AWS's.
"""

from __future__ import annotations

import os
import time

# Typical seconds on AWS, each with where AWS documents it (or what users measure).
AWS_SECONDS = {
    # IAM is eventually consistent: "changes ... take time to become visible"; a role used
    # at once gives "The role defined for the function cannot be assumed by Lambda."
    # (IAM user guide, troubleshoot / eventual consistency; ~10 s is what users see).
    "iam_propagation": 10.0,
    # Lambda function states: Pending after CreateFunction, LastUpdateStatus InProgress
    # after an update (Lambda developer guide, "Lambda function states").
    "lambda_pending": 2.0,
    "lambda_update": 2.0,
    # Event source mappings: Creating -> Enabled, Disabling/Deleting (Lambda API reference).
    "mapping_transition": 5.0,
    # Kinesis CreateStream: CREATING -> ACTIVE (Kinesis API reference, CreateStream).
    "kinesis_creating": 10.0,
    # Firehose CreateDeliveryStream: CREATING -> ACTIVE; DeleteDeliveryStream is
    # asynchronous, DELETING until gone (Firehose API reference).
    "firehose_creating": 30.0,
    "firehose_deleting": 30.0,
    # Redshift CreateCluster: creating -> available (minutes; the waiter polls 60 s).
    "redshift_creating": 300.0,
    "redshift_deleting": 120.0,
    # SQS: "You must wait 60 seconds after deleting a queue before you can create another
    # queue with the same name." (SQS API reference, DeleteQueue / CreateQueue).
    "sqs_deleted_recently": 60.0,
}

DEFAULT_SCALE = 0.01


def scale() -> float:
    """``ECOM_TIME_SCALE`` (0 to 1): the fraction of AWS's delays the embedded AWS waits."""
    raw = os.environ.get("ECOM_TIME_SCALE", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_SCALE
    except ValueError:
        raise ValueError(f"ECOM_TIME_SCALE={raw!r}: a number from 0 to 1") from None
    if not 0 <= value <= 1:
        raise ValueError(f"ECOM_TIME_SCALE={raw!r}: a number from 0 to 1")
    return value


def set_scale(value: float) -> float:
    """Set ``ECOM_TIME_SCALE`` in this process (the embedded AWS's ``POST
    /_ecomlib/time/scale``, for a test that must see a state last); returns the old scale."""
    old = scale()
    if not 0 <= float(value) <= 1:
        raise ValueError(f"time scale {value!r}: a number from 0 to 1")
    os.environ["ECOM_TIME_SCALE"] = repr(float(value))
    return old


def seconds(delay: str) -> float:
    """How long the embedded AWS waits for ``delay`` (a key of :data:`AWS_SECONDS`)."""
    return AWS_SECONDS[delay] * scale()


def now() -> float:
    """The clock the delays are measured with (monotonic seconds)."""
    return time.monotonic()


class Pending:
    """Something that becomes ready ``delay`` after it was started: ``Pending("lambda_pending")``
    then ``.ready`` says whether that time has passed (a state, not a sleep)."""

    def __init__(self, delay: str):
        self.delay = delay
        self.until = now() + seconds(delay)

    @property
    def ready(self) -> bool:
        return now() >= self.until

    @property
    def remaining(self) -> float:
        return max(0.0, self.until - now())
