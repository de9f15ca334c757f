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

import pandas as pd

from ecomlib.config import settings

CONFIRM_SETTING = "ECOM_AWS_CONFIRM"

# What the notebooks create on a real account (names start with the prefix).
RESOURCES = [
    ("Kinesis data stream", "{p}-invoices", "2 shards, billed per shard-hour"),
    ("API Gateway REST API", "{p}-api", "per request"),
    ("Lambda functions", "{p}-ingest-api, {p}-stream-to-s3, {p}-stream-to-dynamodb, {p}-invoice-api, "
     "{p}-batch-loader", "per request and GB-second"),
    ("IAM roles", "one per function, {p}-firehose-role, {p}-warehouse-copy-role", "free"),
    ("S3 buckets", "{p}-datalake-<account>, {p}-firehose-<account>", "per GB-month and request"),
    ("DynamoDB tables", "{p}-invoices-table, {p}-customers-table", "on demand: per request"),
    ("SQS queues", "dead-letter queues {p}-*-dlq", "per request"),
    ("Kinesis Data Firehose", "{p}-to-warehouse", "per GB ingested"),
    ("Redshift cluster", "{p}-warehouse, one ra3.large node", "per node-hour, the biggest cost"),
    ("EventBridge rule", "{p}-batch-schedule", "free"),
    ("CloudWatch log groups", "/aws/lambda/{p}-*", "per GB ingested"),
]

_confirmed: set[tuple[str, str]] = set()
_lock = threading.Lock()


class NotConfirmed(RuntimeError):
    """The real-account target is chosen but not confirmed for this account."""


def plan(prefix: str | None = None) -> pd.DataFrame:
    """What the course creates on a real account, with how each thing is billed."""
    p = prefix or settings().prefix
    return pd.DataFrame([{"resource": kind, "names": names.format(p=p), "billed": billed}
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


def _identity() -> tuple[str, str]:
    """(account id, region) of the credentials in use."""
    from ecomlib import aws

    from botocore.exceptions import NoCredentialsError, NoRegionError

    try:
        sts = aws.client("sts")
        return sts.get_caller_identity()["Account"], sts.meta.region_name
    except NoCredentialsError:
        raise NotConfirmed("ECOM_TARGET=aws but no AWS credentials were found: run `aws configure` "
                           "(or `aws sso login`), or set AWS_PROFILE to a configured profile") from None
    except NoRegionError:
        raise NotConfirmed("ECOM_TARGET=aws but no region is set: set ECOM_REGION (or AWS_REGION)") from None


def ensure_confirmed() -> None:
    """Return if the target is not a real account, or the account is confirmed; else
    raise :class:`NotConfirmed` with the preflight and how to confirm."""
    if settings().target != "aws":
        return
    account, region = _identity()
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
