"""What each pipeline's store holds, and what ``pipelines.drain()`` waits for.

Counting: the RowIds a store holds (its pipeline's declared counting function, see
``ecomlib.registry``), the rows described in a dead-letter queue, and the rows of the
objects Firehose gave up on. ``ecomlib.reconcile`` compares them with the stream;
:func:`fed_stores` and :func:`outstanding` tell ``drain()`` which stores a consumer is
feeding and which rows each still lacks.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

from botocore.exceptions import ClientError

from ecomlib import aws, registry
from ecomlib import deploy as dp
from ecomlib.config import settings
from ecomlib.pipelines import ingest, warehouse


def dead_letters(queue_name: str) -> list[dict]:
    """The failure descriptions waiting in a dead-letter queue (left in the queue)."""
    sqs = aws.client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return []
    found: dict[str, dict] = {}
    for _ in range(100):  # receive until every message was seen once
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                   WaitTimeSeconds=0).get("Messages", [])
        new = [m for m in page if m["MessageId"] not in found]
        if not new:
            break
        found.update({m["MessageId"]: json.loads(m["Body"]) for m in new})
    return list(found.values())


def dead_lettered_rows(queue_name: str) -> list[dict]:
    """The rows of the stream records described in a dead-letter queue."""
    kinesis = aws.client("kinesis")
    rows = []
    for message in dead_letters(queue_name):
        info = message["KinesisBatchInfo"]
        stream = info["streamArn"].split("/")[-1]
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=info["shardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=info["startSequenceNumber"])["ShardIterator"]
        last = int(info["endSequenceNumber"])
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            for record in page["Records"]:
                if int(record["SequenceNumber"]) > last:
                    return rows
                rows += ingest.rows_of(record)
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return rows


def exists(store: registry.Resource) -> bool:
    """Whether a pipeline's store exists (a pipeline not deployed has nothing to reconcile)."""
    name = registry.name(store.name, settings().prefix, aws.account_id() if "{account}" in store.name else "")
    check = {"S3 buckets": lambda: aws.client("s3").head_bucket(Bucket=name),
             "DynamoDB tables": lambda: aws.client("dynamodb").describe_table(TableName=name),
             "Redshift cluster": lambda: aws.client("redshift").describe_clusters(ClusterIdentifier=name)}
    try:
        check[store.kind]()
    except ClientError:
        return False
    return True


def stored_ids(pipeline: str) -> Counter:
    """How many times each RowId is stored by ``pipeline`` (its declared counting function)."""
    declared = registry.get(pipeline)
    return Counter(getattr(declared.module, declared.count)())


def stream_arrivals() -> dict[str, datetime]:
    """Every row of the stream (by RowId) with when its record arrived (the first time)."""
    return ingest.STREAM_LOG.arrivals()


ON = ("Enabled", "Creating", "Enabling", "Updating")  # a mapping that delivers, or soon will


def fed_stores() -> dict[str, datetime | None]:
    """The stores a consumer is feeding now, each with the time from which it gets the
    stream's rows (None: all of them): a pipeline whose stream mapping is ``Enabled`` (or
    becoming so) and starts at TRIM_HORIZON, and the warehouse once its delivery stream is ``ACTIVE``
    (Firehose reads from LATEST: rows that arrived before it was created never reach it).
    A store whose consumer is switched off (or being deleted) or not deployed is left out:
    its rows wait in the stream."""
    lam, firehose = aws.client("lambda"), aws.client("firehose")
    try:
        stream_arn = aws.client("kinesis").describe_stream_summary(
            StreamName=ingest.stream_name())["StreamDescriptionSummary"]["StreamARN"]
    except ClientError:
        return {}
    fed: dict[str, datetime | None] = {}
    for stage in registry.stores():
        pipeline = registry.get(stage)
        if not exists(pipeline.stores):
            continue
        for mapping in pipeline.mappings:
            try:
                found = lam.list_event_source_mappings(
                    FunctionName=dp.function_name(mapping.function), EventSourceArn=stream_arn)["EventSourceMappings"]
            except lam.exceptions.ResourceNotFoundException:
                found = []
            if any(m["State"] in ON and m.get("StartingPosition") == "TRIM_HORIZON" for m in found):
                fed[stage] = None
        if any(r.kind == "Kinesis Data Firehose" for r in pipeline.resources):
            try:
                described = firehose.describe_delivery_stream(
                    DeliveryStreamName=warehouse.delivery_stream_name())["DeliveryStreamDescription"]
            except firehose.exceptions.ResourceNotFoundException:
                continue
            if described["DeliveryStreamStatus"] == "ACTIVE":
                fed[stage] = described["CreateTimestamp"]
    return fed


def warehouse_given_up_ids() -> set[str]:
    """RowIds in the objects of the manifests Firehose gave up on (under ``errors/`` in its
    bucket): delivered by Firehose, not loaded; they are for you to load later."""
    s3 = aws.client("s3")
    bucket = warehouse.bucket_name()
    ids: set[str] = set()
    try:
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for o in page.get("Contents", []) if "errors/" in o["Key"]]
    except s3.exceptions.NoSuchBucket:
        return ids
    for key in keys:
        try:
            entries = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).get("entries", [])
        except (ValueError, AttributeError):
            continue  # not a manifest
        for entry in entries:
            source_bucket, _, source_key = entry["url"].removeprefix("s3://").partition("/")
            try:
                body = s3.get_object(Bucket=source_bucket, Key=source_key)["Body"].read()
            except s3.exceptions.NoSuchKey:
                continue
            ids.update(row.get("RowId") for row in ingest.rows_of({"Data": body}))
    ids.discard(None)
    return ids


def outstanding(expected: set[str], stage: str) -> dict:
    """Of the ``expected`` RowIds, how many ``stage`` holds, how many it gave up on
    (dead-lettered, or in a manifest Firehose gave up on), and which it has not yet."""
    pipeline = registry.get(stage)
    stored = set(stored_ids(stage)) & expected
    if pipeline.dead_letter_queue:
        given_up = {r.get("RowId") for r in dead_lettered_rows(registry.name(pipeline.dead_letter_queue,
                                                                                settings().prefix))}
    elif any(r.kind == "Kinesis Data Firehose" for r in pipeline.resources):
        given_up = warehouse_given_up_ids()
    else:
        given_up = set()
    rejected = (given_up & expected) - stored
    return {"in": len(expected), "stored": len(stored), "rejected": len(rejected),
            "waiting": sorted(expected - stored - rejected)}
