"""Kinesis event source mappings on the embedded AWS behave as AWS documents them."""

from __future__ import annotations

import json
import textwrap
import time
from datetime import datetime, timezone

import pytest

from botocore.exceptions import ClientError

from ecomlib import aws
from ecomlib import deploy as dp
from ecomlib.local import server
from test_lambda_runtime import create_function, role_arn, zipped

# Records every batch it gets in S3 (one object per invocation), fails on request:
#  "poison"   -> raises for any batch holding it
#  "flaky-N"  -> reported as a batch item failure the first time it is seen
#  "slow"     -> the batch takes a second
HANDLER = textwrap.dedent('''
    import base64, json, os, time, boto3
    s3 = boto3.client("s3")
    BUCKET = os.environ["BUCKET"]

    def lambda_handler(event, context):
        started = time.time()
        records = event["Records"]
        datas = [base64.b64decode(r["kinesis"]["data"]).decode() for r in records]
        if "slow" in datas:
            time.sleep(1)
        if "poison" in datas:
            raise ValueError("poison in batch")
        failures = []
        for record, data in zip(records, datas):
            if data.startswith("flaky") and not seen(data):
                mark(data)
                failures.append({"itemIdentifier": record["kinesis"]["sequenceNumber"]})
        first = records[0]
        s3.put_object(Bucket=BUCKET, Key=f"batches/{context.aws_request_id}", Body=json.dumps({
            "shard": first["eventID"].split(":")[0], "source": first["eventSource"],
            "arn": first["eventSourceARN"], "datas": datas,
            "seqs": [r["kinesis"]["sequenceNumber"] for r in records], "failures": failures,
            "started": started, "ended": time.time()}))
        return {"batchItemFailures": failures}

    def seen(data):
        try:
            s3.head_object(Bucket=BUCKET, Key=f"seen/{data}")
            return True
        except s3.exceptions.ClientError:
            return False

    def mark(data):
        s3.put_object(Bucket=BUCKET, Key=f"seen/{data}", Body=b"1")
    ''')


@pytest.fixture()
def pipeline(request):
    """A stream (1 shard, or ``request.param``), a function recording its batches, a DLQ;
    removed afterwards."""
    kinesis, lam, s3, sqs = (aws.client(n) for n in ("kinesis", "lambda", "s3", "sqs"))
    stream = "ecom-test-esm"
    kinesis.create_stream(StreamName=stream, ShardCount=getattr(request, "param", 1))
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.1})
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    s3.create_bucket(Bucket="ecom-test-esm")
    queue_arn = dp.ensure_queue("ecom-test-esm-dlq")  # waits while the name was deleted recently
    queue_url = sqs.get_queue_url(QueueName="ecom-test-esm-dlq")["QueueUrl"]
    create_function(FunctionName="ecom-test-esm", Runtime="python3.11", Role=role_arn(),
                    Handler="handler.lambda_handler", Code={"ZipFile": zipped(HANDLER)}, Timeout=30,
                    Environment={"Variables": {"BUCKET": "ecom-test-esm"}})
    lam.get_waiter("function_active_v2").wait(FunctionName="ecom-test-esm", WaiterConfig={"Delay": 0.1})
    mappings = []

    class Pipeline:
        def put(self, *datas: str, hash_key: int | None = None) -> None:
            where = {"ExplicitHashKey": str(hash_key)} if hash_key is not None else {}
            kinesis.put_records(StreamName=stream, Records=[{"Data": d.encode(), "PartitionKey": "k", **where}
                                                            for d in datas])

        def map(self, **options) -> str:
            settings = dict(BatchSize=10, StartingPosition="TRIM_HORIZON", MaximumRetryAttempts=10,
                            FunctionResponseTypes=["ReportBatchItemFailures"],
                            DestinationConfig={"OnFailure": {"Destination": queue_arn}})
            settings.update(options)
            uuid = lam.create_event_source_mapping(EventSourceArn=stream_arn, FunctionName="ecom-test-esm",
                                                   **settings)["UUID"]
            mappings.append(uuid)
            dp.wait_for_mapping(uuid)  # Creating, then Enabled (or Disabled)
            return uuid

        def batches(self) -> list[dict]:
            objects = s3.list_objects_v2(Bucket="ecom-test-esm", Prefix="batches/").get("Contents", [])
            found = [json.loads(s3.get_object(Bucket="ecom-test-esm", Key=o["Key"])["Body"].read()) for o in objects]
            return sorted(found, key=lambda b: int(b["seqs"][0]))

        def delivered(self) -> list[str]:
            """Each record's data, once per successful delivery, in sequence order."""
            done = []
            for batch in self.batches():
                failed = {f["itemIdentifier"] for f in batch["failures"]}
                first_failed = min((batch["seqs"].index(s) for s in failed), default=len(batch["seqs"]))
                done += batch["datas"][:first_failed]
            return done

        def dead_letters(self) -> list[dict]:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            return [json.loads(m["Body"]) for m in messages]

    p = Pipeline()
    p.stream_arn = stream_arn
    yield p
    for uuid in mappings:
        dp.delete_mapping(uuid)  # Deleting, then gone
    lam.delete_function(FunctionName="ecom-test-esm")
    kinesis.delete_stream(StreamName=stream)
    sqs.delete_queue(QueueUrl=queue_url)
    for o in s3.list_objects_v2(Bucket="ecom-test-esm").get("Contents", []):
        s3.delete_object(Bucket="ecom-test-esm", Key=o["Key"])
    s3.delete_bucket(Bucket="ecom-test-esm")


@pytest.mark.slow
def test_batches_respect_batch_size_order_and_checkpoint(pipeline):
    pipeline.put(*[f"r{i}" for i in range(25)])
    pipeline.map(BatchSize=10, MaximumBatchingWindowInSeconds=300)
    server.drain()
    batches = pipeline.batches()
    assert [len(b["datas"]) for b in batches] == [10, 10, 5]
    assert pipeline.delivered() == [f"r{i}" for i in range(25)]
    assert batches[0]["source"] == "aws:kinesis" and batches[0]["arn"] == pipeline.stream_arn
    assert batches[0]["shard"] == "shardId-000000000000"

    assert server.drain()["records"] == 0, "a checkpoint: nothing is delivered twice"
    pipeline.put("r25", "r26")
    server.drain()
    assert pipeline.delivered() == [f"r{i}" for i in range(27)]


@pytest.mark.parametrize("pipeline", [2], indirect=True)
def test_every_shard_gets_its_batch_at_the_same_time(pipeline):
    """AWS invokes a function once per shard concurrently (order is kept within a shard):
    two shards, a batch of a second in each, processed side by side, not one after the other."""
    pipeline.put("slow", "a", hash_key=0)  # the first shard's hash key range starts at 0
    pipeline.put("slow", "b", hash_key=2 ** 127)  # the second one's starts at 2**127
    pipeline.map(BatchSize=10)
    server.drain()
    batches = pipeline.batches()
    assert sorted(b["shard"] for b in batches) == ["shardId-000000000000", "shardId-000000000001"]
    first, second = sorted(batches, key=lambda b: b["started"])
    assert second["started"] < first["ended"], "the second shard's batch waited for the first one's"


def test_latest_starts_after_what_is_already_there(pipeline):
    pipeline.put("old-1", "old-2")
    pipeline.map(StartingPosition="LATEST")
    server.drain()
    pipeline.put("new-1")
    server.drain()
    assert pipeline.delivered() == ["new-1"]


def test_at_timestamp_starts_at_the_first_record_that_arrived_then(pipeline):
    """AT_TIMESTAMP: the records that arrived at or after StartingPositionTimestamp, not the
    older ones; the description gives the timestamp back; without one the mapping is refused."""
    with pytest.raises(ClientError) as refused:
        aws.client("lambda").create_event_source_mapping(
            EventSourceArn=pipeline.stream_arn, FunctionName="ecom-test-esm", StartingPosition="AT_TIMESTAMP")
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert refused.value.response["Error"]["Message"] == "Need to specify a timestamp"
    pipeline.put("before-1", "before-2")
    time.sleep(1.05 - time.time() % 1)  # the API carries the timestamp in whole seconds
    since = datetime.fromtimestamp(int(time.time()), timezone.utc)
    pipeline.put("after-1", "after-2")
    uuid = pipeline.map(StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=since)
    server.drain()
    assert pipeline.delivered() == ["after-1", "after-2"]
    described = aws.client("lambda").get_event_source_mapping(UUID=uuid)
    assert described["StartingPosition"] == "AT_TIMESTAMP"
    assert described["StartingPositionTimestamp"] == since


def test_partial_batch_failure_retries_from_the_failed_record(pipeline):
    pipeline.put("a", "b", "flaky-1", "c", "d")
    pipeline.map()
    drained = server.drain()
    assert pipeline.delivered() == ["a", "b", "flaky-1", "c", "d"], "each record lands once"
    second = pipeline.batches()[1]
    assert second["datas"] == ["flaky-1", "c", "d"], "the retry starts at the failed record"
    assert drained["retries"] == 1 and drained["dead_lettered"] == 0


def test_poison_record_is_bisected_out_to_the_dead_letter_queue(pipeline):
    datas = [f"ok-{i}" for i in range(8)]
    datas.insert(5, "poison")
    pipeline.put(*datas)
    pipeline.map(BisectBatchOnFunctionError=True, MaximumRetryAttempts=10)
    drained = server.drain()
    assert sorted(pipeline.delivered()) == sorted(d for d in datas if d != "poison")
    assert drained["dead_lettered"] == 1
    [message] = pipeline.dead_letters()
    info = message["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["startSequenceNumber"] == info["endSequenceNumber"]
    assert info["streamArn"] == pipeline.stream_arn and info["shardId"] == "shardId-000000000000"
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["responseContext"]["functionError"] == "Unhandled"


def test_without_bisect_the_whole_batch_goes_to_the_dlq_after_its_retries(pipeline):
    pipeline.put("x", "poison", "y")
    pipeline.map(MaximumRetryAttempts=2)
    drained = server.drain()
    assert drained["retries"] == 2 and drained["dead_lettered"] == 3
    [message] = pipeline.dead_letters()
    assert message["KinesisBatchInfo"]["batchSize"] == 3
    assert message["requestContext"]["approximateInvokeCount"] == 3
    pipeline.put("z")
    server.drain()
    assert pipeline.delivered() == ["z"], "the stream moves on past the records given up on"


@pytest.mark.slow
def test_background_pollers_deliver_without_drain(pipeline):
    pipeline.map()
    pipeline.put("live-1", "live-2")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(pipeline.delivered()) < 2:
        time.sleep(0.2)
    assert pipeline.delivered() == ["live-1", "live-2"]


def test_disabled_mapping_delivers_nothing(pipeline):
    uuid = pipeline.map()
    aws.client("lambda").update_event_source_mapping(UUID=uuid, Enabled=False)
    dp.wait_for_mapping(uuid, ["Disabled"])
    pipeline.put("held")
    server.drain()
    assert pipeline.delivered() == []


# ---- mapping states (Lambda API reference: EventSourceMappingConfiguration State) ---------


@pytest.fixture()
def slow_time():
    """AWS's delays at 0.2 (not 0.01): a mapping stays Creating/Deleting for a second, long
    enough to be seen (restored afterwards)."""
    previous = server.control("time/scale", {"scale": 0.2})["previous"]
    yield
    server.control("time/scale", {"scale": previous})


def _error(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_a_mapping_is_creating_then_enabled_and_refuses_changes_meanwhile(pipeline, slow_time):
    lam = aws.client("lambda")
    pipeline.put("early")
    created = lam.create_event_source_mapping(EventSourceArn=pipeline.stream_arn, FunctionName="ecom-test-esm",
                                              StartingPosition="TRIM_HORIZON", BatchSize=10)
    uuid = created["UUID"]
    try:
        assert created["State"] == "Creating"
        assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Creating"
        server.drain()
        assert pipeline.delivered() == [], "only an Enabled mapping is polled"
        assert _error(lambda: lam.update_event_source_mapping(UUID=uuid, BatchSize=5)) == (
            "ResourceInUseException", "Cannot update the event source mapping because it is in use.")
        assert _error(lambda: lam.delete_event_source_mapping(UUID=uuid)) == (
            "ResourceInUseException", "Cannot delete the event source mapping because it is in use.")
        assert dp.wait_for_mapping(uuid, ["Enabled"], timeout=10)
        server.drain()
        assert pipeline.delivered() == ["early"]

        assert lam.update_event_source_mapping(UUID=uuid, Enabled=False)["State"] == "Disabling"
        dp.wait_for_mapping(uuid, ["Disabled"])
        assert lam.update_event_source_mapping(UUID=uuid, Enabled=True)["State"] == "Enabling"
        dp.wait_for_mapping(uuid, ["Enabled"])
        assert lam.update_event_source_mapping(UUID=uuid, BatchSize=5)["State"] == "Updating"
        dp.wait_for_mapping(uuid)
    finally:
        dp.delete_mapping(uuid)


def test_a_deleting_mapping_is_listed_refuses_changes_and_a_twin(pipeline, slow_time):
    lam = aws.client("lambda")
    uuid = pipeline.map()
    assert lam.delete_event_source_mapping(UUID=uuid)["State"] == "Deleting"
    assert [m["State"] for m in lam.list_event_source_mappings(FunctionName="ecom-test-esm")[
        "EventSourceMappings"]] == ["Deleting"]
    code, message = _error(lambda: lam.update_event_source_mapping(UUID=uuid, Enabled=False))
    assert (code, message) == ("ResourceInUseException", "Cannot update the event source mapping because it is in use.")
    code, message = _error(lambda: lam.create_event_source_mapping(
        EventSourceArn=pipeline.stream_arn, FunctionName="ecom-test-esm", StartingPosition="TRIM_HORIZON"))
    assert code == "ResourceConflictException" and f"existing mapping with UUID {uuid}" in message
    pipeline.put("after-delete")
    server.drain()
    assert pipeline.delivered() == [], "a Deleting mapping is not polled"
    assert dp.wait_for_mapping(uuid, ["Deleted"]) == "Deleted"
    assert lam.list_event_source_mappings(FunctionName="ecom-test-esm")["EventSourceMappings"] == []
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_event_source_mapping(UUID=uuid)


def test_the_course_re_creates_a_mapping_that_is_still_deleting(pipeline, slow_time):
    """Notebook 04's delete-and-re-create: ensure_stream_mapping waits for the old one to go."""
    lam = aws.client("lambda")
    queue_arn = dp.ensure_queue("ecom-test-esm-dlq")
    old = pipeline.map()
    lam.delete_event_source_mapping(UUID=old)
    new = dp.ensure_stream_mapping("test_esm", pipeline.stream_arn, queue_arn, batch_size=10)
    assert new != old and lam.get_event_source_mapping(UUID=new)["State"] == "Enabled"
    pipeline.put("again")
    server.drain()
    assert pipeline.delivered() == ["again"]
    dp.delete_mapping(new)
