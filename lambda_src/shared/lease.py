"""One run at a time, without reserved concurrency: a lease object in S3, taken with a
conditional write.

Why not reserved concurrency 1?  AWS keeps at least 10 (``UnreservedConcurrentExecutions``
minimum) of an account's concurrency unreserved, and a new account's quota is 10: any
reservation is refused there (``InvalidParameterValueException: Specified
ReservedConcurrentExecutions for function decreases account's
UnreservedConcurrentExecution below its minimum value of [10].``).  EventBridge does not
serialise a rule's invocations either (an asynchronous invocation may also be retried).

The lease is ``<prefix>lease.json`` (beside the folders, never a file's state): ``{"holder": <request id>, "expires": <epoch s>}``.

- **take**: ``PutObject`` with ``If-None-Match: *`` succeeds for one caller only; the
  others get ``412 PreconditionFailed`` (or ``409 ConditionalRequestConflict`` while
  another conditional write is in flight).  A lease whose ``expires`` has passed (its run
  crashed) is taken over with ``If-Match: <its ETag>``, so two runs cannot both take over.
- **expires**: the run's own deadline (Lambda stops a run at its timeout) plus a margin:
  a live run's lease never expires under it.
- **release**: ``DeleteObject`` at the end of the run.
- **held**: the ``with`` form: take, run the block, release.

S3 conditional writes: Amazon S3 user guide, "Add preconditions to S3 operations with
conditional requests".  Only the standard library and boto3.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Iterator

from botocore.exceptions import ClientError

from shared.aws import client

MARGIN_SECONDS = 60  # clock differences between the run and the next one
LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def lease_key(prefix: str) -> str:
    return f"{prefix}lease.json"


def take(bucket: str, key: str, holder: str, seconds: float) -> bool:
    """True if this run now holds the lease (for ``seconds`` plus the margin)."""
    body = json.dumps({"holder": holder, "expires": round(time.time() + seconds + MARGIN_SECONDS, 3)}).encode()
    s3 = client("s3")
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*", ContentType="application/json")
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in LOST_RACE:
            raise
    try:  # held: take it over only if it has expired (its run ended without releasing it)
        current = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return False  # released meanwhile: the next run takes it
    held = json.loads(current["Body"].read() or b"{}")
    if float(held.get("expires", 0)) > time.time():
        return False
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, IfMatch=current["ETag"], ContentType="application/json")
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in LOST_RACE | {"NoSuchKey"}:
            raise
        return False


def holder(bucket: str, key: str) -> str | None:
    """Who holds the lease (a request id), or None."""
    s3 = client("s3")
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).get("holder")
    except s3.exceptions.NoSuchKey:
        return None


def release(bucket: str, key: str) -> None:
    """Give the lease back (only its holder calls this, before its deadline)."""
    client("s3").delete_object(Bucket=bucket, Key=key)


@contextlib.contextmanager
def held(bucket: str, key: str, holder: str, seconds: float) -> Iterator[bool]:
    """Take the lease for the ``with`` block (yields True) and release it after; yields
    False, taking nothing, when another run holds it."""
    if not take(bucket, key, holder, seconds):
        yield False
        return
    try:
        yield True
    finally:
        release(bucket, key)
