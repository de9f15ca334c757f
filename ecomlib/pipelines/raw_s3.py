"""Pipeline 2, the data lake's raw zone: Kinesis -> Lambda (stream_to_s3) -> S3.

Each batch of stream records becomes one JSON Lines object under
``raw/year=YYYY/month=MM/day=DD/`` (ingestion date), named after its shard and sequence
numbers so that a retried batch overwrites its object instead of duplicating it.
"""

from __future__ import annotations

import io
import json

import pandas as pd

from ecomlib import aws, deploy as dp, registry
from ecomlib.config import resource_name, settings
from ecomlib.pipelines import ingest

PIPELINE = registry.get("raw_s3")
FUNCTION = "stream_to_s3"
MAPPING = PIPELINE.mapping(FUNCTION)
PREFIX = "raw/"


def bucket_name() -> str:
    """The data lake bucket: ``ecom-datalake-<account id>`` (bucket names are global on AWS)."""
    return resource_name("datalake", aws.account_id())


def dead_letter_queue() -> str:
    return registry.name(PIPELINE.dead_letter_queue, settings().prefix)


def policy(stream_arn: str, bucket_arn: str, queue_arn: str) -> list[dict]:
    """Read the stream, write objects under raw/ in the one bucket, report failures."""
    return [
        dp.stream_reader_policy(stream_arn),
        {"Sid": "WriteRawObjects", "Effect": "Allow", "Action": ["s3:PutObject"],
         "Resource": f"{bucket_arn}/{PREFIX}*"},
        dp.dead_letter_policy(queue_arn),
    ]


def deploy(batch_size: int = MAPPING.batch_size, window_seconds: int = MAPPING.window_seconds,
           enabled: bool = True) -> str:
    """Create bucket, dead-letter queue, role, function and mapping (``enabled=False``: the
    mapping waits, switched off); returns the bucket name."""
    stream_arn = ingest.ensure_stream()
    bucket = bucket_name()
    bucket_arn = dp.ensure_bucket(bucket)
    queue_arn = dp.ensure_queue(dead_letter_queue())
    role = dp.ensure_role(FUNCTION, policy(stream_arn, bucket_arn, queue_arn))
    dp.deploy_function(FUNCTION, role, {"BUCKET": bucket, "PREFIX": PREFIX})
    dp.ensure_stream_mapping(FUNCTION, stream_arn, queue_arn, batch_size=batch_size,
                             window_seconds=window_seconds, bisect=MAPPING.bisect, enabled=enabled)
    return bucket


def list_objects() -> list[dict]:
    """Every raw object: key, size and last modified."""
    s3 = aws.client("s3")
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket_name(), Prefix=PREFIX):
        found += page.get("Contents", [])
    return found


def read_rows() -> pd.DataFrame:
    """All rows in the raw zone as one frame (one row per line of every object)."""
    s3 = aws.client("s3")
    frames = []
    for obj in list_objects():
        body = s3.get_object(Bucket=bucket_name(), Key=obj["Key"])["Body"].read()
        if body:
            frames.append(pd.read_json(io.BytesIO(body), lines=True, dtype={
                "InvoiceNo": str, "StockCode": str, "CustomerID": str, "RowId": str}))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def row_ids() -> list[str]:
    """The RowId of every line in the raw zone (a line stored twice appears twice)."""
    s3 = aws.client("s3")
    ids = []
    for obj in list_objects():
        for line in s3.get_object(Bucket=bucket_name(), Key=obj["Key"])["Body"].iter_lines():
            if line.strip():
                ids.append(json.loads(line)["RowId"])
    return ids


def teardown() -> None:
    """Delete the mapping, function, role, queue and the bucket with its objects."""
    dp.delete_stream_mappings(FUNCTION)
    dp.delete_function(FUNCTION)
    dp.delete_queue(dead_letter_queue())
    dp.empty_and_delete_bucket(bucket_name())
