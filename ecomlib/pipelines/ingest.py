"""Pipeline 1, Connect + Buffer: client -> API Gateway (POST /invoices) -> Lambda -> Kinesis.

``deploy()`` builds it with the ordinary AWS APIs (the notebook shows each call);
``read_stream()`` reads back what reached the stream; ``teardown()`` removes it all.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Iterator

from ecomlib import aws, deploy as dp, registry
from ecomlib.config import resource_name

PIPELINE = registry.get("ingest")
FUNCTION = "ingest_api"
STAGE = "dev"


def stream_name() -> str:
    """The Kinesis stream every pipeline reads from: ``ecom-invoices``."""
    return resource_name("invoices")


def api_name() -> str:
    """The REST API of the course: ``ecom-api``."""
    return resource_name("api")


def ensure_stream(shards: int = 2) -> str:
    """Create the stream if needed (``shards`` provisioned shards) and return its ARN."""
    kinesis = aws.client("kinesis")
    name = stream_name()
    try:
        kinesis.create_stream(StreamName=name, ShardCount=shards, Tags=dp.tags())
    except kinesis.exceptions.ResourceInUseException:
        pass
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def ingest_policy(stream_arn: str) -> list[dict]:
    """What the ingest function may do: put records on this one stream, nothing else."""
    return [{
        "Sid": "PutToTheInvoiceStream",
        "Effect": "Allow",
        "Action": ["kinesis:PutRecords"],
        "Resource": stream_arn,
    }]


def deploy(shards: int = 2) -> str:
    """Create (or update) stream, role, function and API; return the POST URL."""
    stream_arn = ensure_stream(shards)
    role = dp.ensure_role(FUNCTION, ingest_policy(stream_arn))
    dp.deploy_function(FUNCTION, role, {"STREAM_NAME": stream_name()})
    api_id = dp.ensure_rest_api(api_name())
    dp.add_lambda_route(api_id, "/invoices", "POST", FUNCTION)
    # Every other method on /invoices reaches the function too, which answers 405.
    dp.add_lambda_route(api_id, "/invoices", "ANY", FUNCTION)
    return invoices_url(dp.deploy_stage(api_id, STAGE))


def invoices_url(base_url: str | None = None) -> str:
    """The URL of ``/invoices`` on the deployed stage."""
    if base_url is None:
        base_url = dp.api_url(dp.ensure_rest_api(api_name()), STAGE)
    return base_url + "/invoices"


def iter_records(start: str = "TRIM_HORIZON", after: dict[str, str] | None = None) -> Iterator[dict]:
    """Every record in the stream, shard by shard (decoded ``Data`` as bytes); ``after``:
    {shard id: sequence number} to read those shards only past that record (a checkpoint)."""
    kinesis = aws.client("kinesis")
    for shard in kinesis.list_shards(StreamName=stream_name())["Shards"]:
        where = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after[shard["ShardId"]]}
                 if after and shard["ShardId"] in after else {"ShardIteratorType": start})
        iterator = kinesis.get_shard_iterator(
            StreamName=stream_name(), ShardId=shard["ShardId"], **where)["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            yield from ({**r, "ShardId": shard["ShardId"]} for r in page["Records"])
            if page.get("MillisBehindLatest", 0) == 0 and len(page["Records"]) < 10_000:
                break  # reached the tip of the shard
            iterator = page.get("NextShardIterator")


def rows_of(record: dict) -> list[dict]:
    """The rows packed in one record (JSON Lines: one row per line). A line that is not
    JSON (nothing the ingest function writes, but anyone may put records on a stream)
    comes back as ``{"RowId": None, "Unreadable": <the text>}``."""
    lines = [line for line in record["Data"].splitlines() if line.strip()]
    try:  # the whole record at once (2.4x faster than line by line): a record of rows
        rows = _DECODER.decode("[" + ",".join(line.decode("utf-8") for line in lines) + "]")
        if len(rows) == len(lines) and all(type(row) is dict for row in rows):
            return rows
    except ValueError:  # UnicodeDecodeError too
        pass
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:
            rows.append({"RowId": None, "Unreadable": line.decode("utf-8", "replace")})
    return rows


_DECODER = json.JSONDecoder()


def read_stream() -> list[dict]:
    """All rows in the stream, in stream order within each shard."""
    return [row for record in iter_records() for row in rows_of(record)]


class StreamLog:
    """The stream's rows read so far, and where reading stopped in each shard: the next read
    reads only the records that arrived since, as a consumer resumes from its checkpoint (a
    stream only grows; a stream deleted and created again starts afresh). ``drain()``,
    ``reconcile`` and :func:`stream_stats` share one (:data:`STREAM_LOG`): the stream is
    read once, however often it is asked about."""

    def __init__(self) -> None:
        self._start(None)

    def _start(self, stream: tuple | None) -> None:
        self.stream = stream
        self.after: dict[str, str] = {}
        self.rows: dict[str, datetime] = {}
        self.counts: dict[str, int] = {}  # RowId -> how many times it is in the stream
        self.unreadable = 0  # rows without a RowId (lines that are not JSON rows)
        self.records = 0
        self.rows_per_shard: Counter = Counter()

    def read(self) -> None:
        """Read what arrived since the last read (all of it the first time)."""
        summary = aws.client("kinesis").describe_stream_summary(
            StreamName=stream_name())["StreamDescriptionSummary"]
        stream = (aws.endpoint_url(), summary["StreamARN"], summary["StreamCreationTimestamp"])
        if stream != self.stream:
            self._start(stream)
        rows, counts = self.rows, self.counts
        for record in iter_records(after=self.after):
            arrived = record["ApproximateArrivalTimestamp"]
            record_rows = rows_of(record)
            for row in record_rows:
                row_id = row.get("RowId")
                if row_id is None:
                    self.unreadable += 1
                    continue
                counts[row_id] = counts.get(row_id, 0) + 1
                if row_id not in rows or arrived < rows[row_id]:
                    rows[row_id] = arrived  # the first time, whichever shard it is in
            self.records += 1
            self.rows_per_shard[record["ShardId"]] += len(record_rows)
            self.after[record["ShardId"]] = record["SequenceNumber"]

    def arrivals(self) -> dict[str, datetime]:
        """Every row of the stream (by RowId) with when its record arrived (the first time)."""
        self.read()
        return dict(self.rows)

    def row_counts(self) -> Counter:
        """Every RowId of the stream with how many times it is in it (a row sent twice: 2)."""
        self.read()
        return Counter(self.counts)

    def stats(self) -> dict:
        """Records and rows in the stream, and rows per shard (a row sent twice counts twice)."""
        self.read()
        return {"records": self.records, "rows": sum(self.rows_per_shard.values()),
                "rows_per_shard": dict(sorted(self.rows_per_shard.items()))}


STREAM_LOG = StreamLog()  # what drain() and stream_stats() read of the stream, kept for the next read


def stream_stats() -> dict:
    """Records and rows in the stream, and rows per shard (read on from where the last read
    of :data:`STREAM_LOG` stopped)."""
    return STREAM_LOG.stats()


def row_counts() -> Counter:
    """Every RowId in the stream with how many times it is in it. The stream's records are
    fetched by :data:`STREAM_LOG`, each once: after a ``drain()`` only the records that
    arrived since are fetched; the counts cover every record read so far."""
    return STREAM_LOG.row_counts()


def teardown() -> None:
    """Delete the API, the function and its role, and the stream."""
    dp.delete_rest_api(api_name())
    dp.delete_function(FUNCTION)
    kinesis = aws.client("kinesis")
    try:
        kinesis.delete_stream(StreamName=stream_name(), EnforceConsumerDeletion=True)
    except kinesis.exceptions.ResourceNotFoundException:
        return
    kinesis.get_waiter("stream_not_exists").wait(StreamName=stream_name(), WaiterConfig={"Delay": 2, "MaxAttempts": 150})

