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

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from shared.aws import client
from shared.kinesis_batch import batch_response, record_data, record_rows, sequence
from shared.rows import PoisonRecord
from shared.settings import read_settings

logger = logging.getLogger("stream_to_s3")  # INFO: our lines reach the log, boto3's chatter does not
logger.setLevel(logging.INFO)

CONTENT_TYPE = "application/x-ndjson"  # the usual media type of JSON Lines
# The only module-level state is the S3 client, cached by shared.aws.client and reused
# while the container is warm.  Nothing else may live between invocations: the seed's S3
# function kept the rows in a module-level list, which grew with every warm invocation of
# the same container.


@dataclass(frozen=True)
class Settings:
    bucket: str
    prefix: str = "raw/"


def decode_record(record: dict) -> bytes:
    """The data of a Kinesis record: checked JSON Lines, ending with a newline.

    Raises PoisonRecord if it is not base64, not UTF-8, or a line (even blank) is not a row.
    """
    record_rows(record)  # checks every line
    data = record_data(record)
    return data if data.endswith(b"\n") else data + b"\n"


def object_key(records: list[dict], prefix: str = Settings.prefix) -> str:
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
    settings = read_settings(Settings)
    records = event.get("Records") or []
    body, failed, rows = build_object(records)
    key = object_key(records, settings.prefix) if rows else None
    summary = {"requestId": getattr(context, "aws_request_id", None), "records": len(records),
               "rows": rows, "failed": len(failed), "bucket": settings.bucket, "key": key}
    try:
        if key:  # a batch without a readable record writes nothing
            client("s3").put_object(
                Bucket=settings.bucket, Key=key, Body=body, ContentType=CONTENT_TYPE,
                Metadata={"rows": str(rows), "records": str(len(records) - len(failed))},
            )
    except Exception as exc:
        summary["error"] = type(exc).__name__
        logger.error(json.dumps(summary))
        raise  # the whole batch is retried: nothing was written
    summary["ms"] = round((time.monotonic() - started) * 1000, 1)
    logger.info(json.dumps(summary))
    return batch_response(failed)
