"""Lambda ``stream_to_s3``: Kinesis -> S3, the raw zone of the data lake.

Each invocation receives a batch of Kinesis records from the stream written by
``ingest_api``.  A record's data is JSON Lines: the rows of one invoice, one compact JSON
object per line.  The batch becomes ONE S3 object of JSON Lines: the data of every
readable record, in batch order, exactly as received::

    {PREFIX}year=YYYY/month=MM/day=DD/{shardId}-{firstSeq}-{lastSeq}.jsonl

- The date is when the batch's first record reached Kinesis (its
  ``approximateArrivalTimestamp``, UTC), not the invoices' dates.  The raw zone keeps
  data as it arrived: a late or replayed invoice from 2011 lands in today's folder, and
  a day's folder never changes once the day is over.  The curated zones, built from the
  raw zone, re-partition the rows by business date (InvoiceDate).
- The name is made of the shard and the first and last sequence numbers, so it is
  deterministic: a retried or replayed batch overwrites the same object instead of
  storing its rows twice.  (A batch retried from a failed record onwards has other
  boundaries, so the raw zone may still hold a row twice: the curated zones keep one
  row per RowId.)

Failures (the event source mapping uses ``ReportBatchItemFailures``):

- A record whose data cannot be read (bad base64, not UTF-8, a line that is not a valid
  row) is left out of the object and listed in ``batchItemFailures``; the other records
  are stored.  Lambda retries from the first failed record, then sends it to the
  mapping's dead-letter queue.
- If the S3 put fails the function raises: nothing was written, the whole batch is
  retried and will overwrite the same key.

Environment variables:

- ``BUCKET``  (required) the data lake bucket.
- ``PREFIX``  (optional, default ``raw/``) where the raw zone starts in the bucket.

Only the standard library and boto3 are used (what the Lambda Python runtime provides).
Locally the runtime sets ``AWS_ENDPOINT_URL``, which boto3 honours: no endpoint here.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import boto3
from botocore.config import Config

# A named logger at INFO: our lines reach the function's log, boto3's chatter (WARNING
# and up only, the root logger's level) does not.
logger = logging.getLogger("stream_to_s3")
logger.setLevel(logging.INFO)

DEFAULT_PREFIX = "raw/"
CONTENT_TYPE = "application/x-ndjson"  # the usual media type of JSON Lines
# Every row written by ingest_api has these keys (the checks below reject anything else).
FIELDS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
          "UnitPrice", "CustomerID", "Country", "RowId")
TEXT_FIELDS = ("InvoiceNo", "StockCode", "InvoiceDate", "Country", "RowId")  # non-empty strings
OPTIONAL_FIELDS = ("Description", "CustomerID")  # strings or null

# The only module-level state: the client, reused while the container is warm.  Nothing
# else may live between invocations: the seed's S3 function kept the rows in a
# module-level list, which grew with every warm invocation of the same container.
_s3 = None


def s3_client():
    """The S3 client, created on the first invocation of a container and then reused."""
    global _s3
    if _s3 is None:
        # No endpoint_url: boto3 reads AWS_ENDPOINT_URL when it is set (local runs).
        _s3 = boto3.client("s3", config=Config(connect_timeout=5, read_timeout=30,
                                               retries={"mode": "standard"}))
    return _s3


class PoisonRecord(ValueError):
    """A record whose data is not JSON Lines of valid rows: retrying will not help."""


def check_row(line: str) -> dict:
    """One line parsed as a row (UnitPrice as an exact Decimal); PoisonRecord if it is not one."""
    try:
        row = json.loads(line, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested too deep
        raise PoisonRecord(f"line is not JSON: {exc}") from None
    if not isinstance(row, dict):
        raise PoisonRecord("line is not a JSON object")
    missing = [name for name in FIELDS if name not in row]
    if missing:
        raise PoisonRecord(f"row has no {', '.join(missing)}")
    if not all(isinstance(row[name], str) and row[name] for name in TEXT_FIELDS):
        raise PoisonRecord("InvoiceNo, StockCode, InvoiceDate, Country and RowId must be strings")
    if any(row[name] is not None and not isinstance(row[name], str) for name in OPTIONAL_FIELDS):
        raise PoisonRecord("Description and CustomerID must be strings or null")
    if type(row["Quantity"]) is not int or type(row["UnitPrice"]) not in (int, Decimal):
        raise PoisonRecord("Quantity must be an integer and UnitPrice a number")
    return row


def decode_record(record: dict) -> bytes:
    """The data of a Kinesis record: checked JSON Lines, ending with a newline.

    Raises PoisonRecord if it is not base64, not UTF-8, or a line (even blank) is not a row.
    """
    try:
        data = base64.b64decode(record["kinesis"]["data"], validate=True)
        text = data.decode("utf-8")
    except (KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise PoisonRecord(f"unreadable data: {type(exc).__name__}") from None
    # Split on "\n" only (not splitlines): a Description may hold U+2028 and the like.
    for line in text.removesuffix("\n").split("\n"):
        check_row(line)
    return data if data.endswith(b"\n") else data + b"\n"


def sequence(record: dict) -> str:
    """The record's sequence number (a decimal string, up to 56 digits on AWS)."""
    return record["kinesis"]["sequenceNumber"]


def object_key(records: list[dict], prefix: str = DEFAULT_PREFIX) -> str:
    """Where the batch is stored: ingestion date of its first record, shard, sequence range."""
    arrived = datetime.fromtimestamp(float(records[0]["kinesis"]["approximateArrivalTimestamp"]),
                                     timezone.utc)
    shard = records[0]["eventID"].split(":", 1)[0]  # "shardId-000000000006:4959..." -> shard
    # A batch comes from one shard in order; compare as integers anyway ("17" < "9" as text).
    numbers = sorted((sequence(r) for r in records), key=int)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return (f"{prefix}year={arrived:%Y}/month={arrived:%m}/day={arrived:%d}/"
            f"{shard}-{numbers[0]}-{numbers[-1]}.jsonl")


def build_object(records: list[dict]) -> tuple[bytes, list[str], int]:
    """The object body, the sequence numbers of unreadable records, and the number of rows."""
    parts: list[bytes] = []
    failed: list[str] = []
    for record in records:
        try:
            parts.append(decode_record(record))
        except PoisonRecord as exc:
            logger.warning(json.dumps({"poison": sequence(record), "reason": str(exc)[:200]}))
            failed.append(sequence(record))
    body = b"".join(parts)
    return body, failed, body.count(b"\n")


def lambda_handler(event: dict, context: Any) -> dict:
    """Store the batch as one object; report unreadable records; raise if S3 fails."""
    started = time.monotonic()
    bucket = os.environ.get("BUCKET")
    if not bucket:
        raise RuntimeError("function misconfigured: environment variable BUCKET is not set")
    records = event.get("Records") or []
    body, failed, rows = build_object(records)
    key = object_key(records, os.environ.get("PREFIX", DEFAULT_PREFIX)) if rows else None
    summary = {"requestId": getattr(context, "aws_request_id", None), "records": len(records),
               "rows": rows, "failed": len(failed), "bucket": bucket, "key": key}
    try:
        if key:  # a batch without a readable record writes nothing
            s3_client().put_object(
                Bucket=bucket, Key=key, Body=body, ContentType=CONTENT_TYPE,
                Metadata={"rows": str(rows), "records": str(len(records) - len(failed))},
            )
    except Exception as exc:
        summary["error"] = type(exc).__name__
        logger.error(json.dumps(summary))
        raise  # the whole batch is retried: nothing was written
    summary["ms"] = round((time.monotonic() - started) * 1000, 1)
    logger.info(json.dumps(summary))
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}
