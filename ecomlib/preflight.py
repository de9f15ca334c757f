"""Before anything is created on a real AWS account: who, where, what, and how much.

On the embedded AWS and on the ``endpoint`` target nothing costs money and nothing is
asked. With ``ECOM_TARGET=aws``, the first AWS client ecomlib builds (``ecomlib.aws``)
runs this preflight: it shows the account, the region, what the course creates and what
that costs per hour and per day, and goes on only when the setting ``ECOM_AWS_CONFIRM``
holds *that account's id*. Confirming names the account, so a terminal that points at
the wrong profile cannot be confirmed by habit, and no default ever confirms.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

import pandas as pd

from ecomlib import registry
from ecomlib.config import settings

CONFIRM_SETTING = "ECOM_AWS_CONFIRM"

# How each kind of resource is billed, in the order the preflight lists them (the names
# come from ecomlib.registry). Summaries: "glob" lists the names as one pattern
# ("{p}-*-dlq"); a text is written before the names.
KINDS: list[tuple[str, str, str]] = [
    ("Kinesis data stream", "2 shards, billed per shard-hour", ""),
    ("API Gateway REST API", "per request", ""),
    ("Lambda functions", "per request and GB-second", ""),
    ("IAM roles", "free", "one per function, "),
    ("S3 buckets", "per GB-month and request", ""),
    ("DynamoDB tables", "on demand: per request", ""),
    ("SQS queues", "per request", "dead-letter queues glob"),
    ("Kinesis Data Firehose", "per GB ingested", ""),
    ("Redshift cluster", "per node-hour, the biggest cost", ""),
    ("EventBridge rule", "free", ""),
    ("CloudWatch log groups", "per GB ingested", "glob"),
]


def _glob(names: list[str]) -> str:
    """Several names as one pattern: their common start and end around a ``*``."""
    if len(names) == 1:
        return names[0]
    start = os.path.commonprefix(names)
    end = os.path.commonprefix([n[len(start):][::-1] for n in names])[::-1]
    return f"{start}*{end}"


def _resources() -> list[tuple[str, str, str]]:
    """(kind, names, how it is billed) of everything the pipelines of the registry create."""
    names: dict[str, list[str]] = {kind: [] for kind, _, _ in KINDS}
    for pipeline in registry.PIPELINES:
        for function in pipeline.functions:
            names["Lambda functions"].append(f"{{p}}-{function.name}")
            names["CloudWatch log groups"].append(f"/aws/lambda/{{p}}-{function.name}")
        for resource in pipeline.resources:
            shown = f"{resource.name}, {resource.note}" if resource.note else resource.name
            if shown not in names[resource.kind]:
                names[resource.kind].append(shown)
    rows = []
    for kind, billed, summary in KINDS:
        if names[kind]:
            listed = _glob(names[kind]) if summary.endswith("glob") else ", ".join(names[kind])
            rows.append((kind, summary.removesuffix("glob") + listed, billed))
    return rows


# What the notebooks create on a real account (names start with the prefix).
RESOURCES = _resources()

_confirmed: set[tuple[str, str]] = set()
_lock = threading.Lock()


class NotConfirmed(RuntimeError):
    """The real-account target is chosen but not confirmed for this account."""


def plan(prefix: str | None = None) -> pd.DataFrame:
    """What the course creates on a real account, with how each thing is billed."""
    p = prefix or settings().prefix
    return pd.DataFrame([{"resource": kind, "names": registry.name(names, p), "billed": billed}
                         for kind, names, billed in RESOURCES])


def report(account: str, region: str) -> str:
    """The preflight as text: account, region, resources, estimated cost."""
    from ecomlib import cost

    estimate = cost.stack_cost_per_hour()
    lines = [
        "Preflight: the course is about to use a REAL AWS account.",
        f"  account: {account}    region: {region}    prefix: {settings().prefix}",
        "  it creates:",
        *[f"    - {row.resource}: {row.names} ({row.billed})" for row in plan().itertuples()],
        f"  estimated cost: {estimate}",
        "  (prices change: see ecomlib/cost.py for the figures and their date; free tier not counted)",
        "  Delete everything afterwards with: python -m ecomlib teardown",
    ]
    return "\n".join(lines)


def ensure_confirmed(identity: Callable[[], tuple[str, str]] | None = None) -> None:
    """Return if the target is not a real account, or the account is confirmed; else
    raise :class:`NotConfirmed` with the preflight and how to confirm.

    ``identity()`` answers (account id, region) of the credentials in use: ``ecomlib.aws``
    passes its own, so this module needs no AWS client (and ``aws`` is the layer below).
    """
    if settings().target != "aws":
        return
    if identity is None:
        from_aws = "ensure_confirmed(identity) needs the identity of the credentials: see ecomlib.aws.identity"
        raise TypeError(from_aws)
    account, region = identity()
    with _lock:
        if (account, region) in _confirmed:
            return
        given = os.environ.get(CONFIRM_SETTING, "").strip()
        if given != account:
            why = (f"{CONFIRM_SETTING} is not set" if not given
                   else f"{CONFIRM_SETTING}={given} does not name this account")
            raise NotConfirmed(
                f"{report(account, region)}\n\nNothing was created: {why}. If this is the account you "
                f"mean to use and you accept the cost, set {CONFIRM_SETTING}={account} and run again.")
        _confirmed.add((account, region))
        print(report(account, region) + "\n  Confirmed: going on.")
