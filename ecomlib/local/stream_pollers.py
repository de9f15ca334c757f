"""Kinesis event source mappings: read each shard and invoke the function with batches.

AWS: for a mapping created with ``create_event_source_mapping``, Lambda polls every shard
of the stream, keeps a checkpoint per shard, and invokes the function with up to
``BatchSize`` records (waiting up to ``MaximumBatchingWindowInSeconds`` to fill a batch),
one batch at a time per shard, so order is kept within a shard, and every shard (of every
mapping) at the same time, each its own concurrent invocation. When the function fails,
the batch is retried (``MaximumRetryAttempts``; ``-1`` means until the records expire),
split in two first if ``BisectBatchOnFunctionError`` is set; with
``FunctionResponseTypes=["ReportBatchItemFailures"]`` the function may instead return
``{"batchItemFailures": [{"itemIdentifier": <sequence number>}]}`` and only the records
from the first failed one on are retried. Records that exhaust their retries are skipped
and described in a message to the ``DestinationConfig.OnFailure`` destination (SQS).

moto 5.2: stores mappings but invokes the function itself, inside each put, one record
at a time, through Docker (turned off in ``patches``).

A mapping is not ready when the call returns: it is ``Creating`` (then ``Enabled`` or
``Disabled``), ``Enabling``/``Disabling`` after ``Enabled`` changes, ``Updating`` after
other changes, and ``Deleting`` until it is gone; an update or delete in one of those
states is refused with ``ResourceInUseException``, and only ``Enabled`` mappings are
polled (Lambda API reference, EventSourceMappingConfiguration ``State``,
UpdateEventSourceMapping). moto 5.2: a mapping is Enabled at once and gone at once.

Here: a background thread does what AWS's pollers do, with the same event and failure
message shapes, each round giving every shard of every enabled mapping its next batch at
once (a thread per shard, so two shards keep two execution environments busy);
:class:`StreamPollers` keeps each mapping's state transition (for ``aws_time``'s
``mapping_transition``, see ``patches._patch_mapping_states``).
``StreamPollers.drain()`` (``POST /_ecomlib/drain``) processes everything pending right
away, ignoring batching windows, so notebooks and tests are deterministic.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from moto.core import DEFAULT_ACCOUNT_ID

from ecomlib.local import aws_time
from ecomlib.local.component import Route, Worker, WorkerComponent
from ecomlib.local.lambda_runtime import LambdaRuntime, get_function

log = logging.getLogger("ecomlib.pollers")

POLL_INTERVAL = 0.25  # seconds between polling rounds (AWS: about once a second per shard)
INFINITE_RETRY_CAP = 10_000  # MaximumRetryAttempts=-1: stop somewhere, as records would expire


# States a mapping passes through; in each of them AWS refuses an update or a delete.
TRANSITIONS = ("Creating", "Enabling", "Disabling", "Updating", "Deleting")


@dataclass
class _Transition:
    state: str  # one of TRANSITIONS
    pending: aws_time.Pending


@dataclass
class _Shard:
    mapping: object  # moto's EventSourceMapping
    stream: object  # moto's Stream
    shard: object  # moto's Shard


def _start(mapping, shard) -> int:
    """The checkpoint a new mapping starts from in a shard (records after it are read):
    TRIM_HORIZON the oldest record, LATEST the records put from now on, AT_TIMESTAMP the
    first record that arrived at or after ``StartingPositionTimestamp`` (Unix seconds)."""
    if mapping.starting_position == "LATEST":
        return shard.get_max_sequence_number()
    if mapping.starting_position == "AT_TIMESTAMP" and mapping.starting_position_timestamp is not None:
        return int(shard.get_sequence_number_at(float(mapping.starting_position_timestamp)))
    return 0


class StreamPollers(WorkerComponent):
    """Every Kinesis event source mapping's pollers: a checkpoint per shard, and counters."""

    name = "pollers"

    def __init__(self, runtime: LambdaRuntime) -> None:
        self.runtime = runtime
        self.checkpoints: dict[tuple[str, str], int] = {}  # (mapping uuid, shard id) -> last sequence done
        self.stats = {"invocations": 0, "records": 0, "retries": 0, "dead_lettered": 0}
        self._count_lock = threading.Lock()  # the shards' threads add to the same counters
        self.transitions: dict[str, _Transition] = {}  # mapping uuid -> the state it is passing through
        # one round at a time: the background loop or a drain
        self._worker = Worker("stream-pollers", POLL_INTERVAL, lambda: self._round(respect_window=True))

    # ---- lifecycle --------------------------------------------------------------------

    def reset(self) -> None:
        with self._worker.lock:
            self.checkpoints.clear()
            self.transitions.clear()
            for key in self.stats:
                self.stats[key] = 0

    def status(self) -> dict:
        return {"pollers": {**self.stats, "running": self._worker.running}}

    def routes(self) -> dict[str, Route]:
        """``faults/stop``: stop polling (records wait in the stream); ``faults/start``: resume
        from the checkpoints."""
        return {"faults/stop": self._fault_stop, "faults/start": self._fault_start}

    def _fault_stop(self, body: dict) -> dict:  # noqa: ARG002
        self.stop()
        return {"pollers": "stopped"}

    def _fault_start(self, body: dict) -> dict:  # noqa: ARG002
        self._worker.start()  # once the stopped loop has finished its round
        return {"pollers": "started"}

    def drain(self, timeout: float = 300) -> dict:
        """Process every pending record of every enabled mapping; returns what was done."""
        deadline = time.monotonic() + timeout
        before = dict(self.stats)
        with self._worker.lock:
            while self._round(respect_window=False):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"records still pending after {timeout:.0f} s (a function keeps failing?)")
        return {key: self.stats[key] - before[key] for key in self.stats}

    # ---- mapping states ---------------------------------------------------------------

    def begin(self, uuid: str, state: str) -> None:
        """The mapping starts passing through ``state`` (one of :data:`TRANSITIONS`)."""
        self.transitions[uuid] = _Transition(state, aws_time.Pending("mapping_transition"))

    def state(self, mapping) -> str:
        """The mapping's ``State`` as AWS reports it (``Deleted`` once a deletion is over)."""
        transition = self.transitions.get(mapping.uuid)
        if transition and not transition.pending.ready:
            return transition.state
        if transition and transition.state == "Deleting":
            return "Deleted"
        return "Enabled" if mapping.enabled else "Disabled"

    # ---- one polling round ------------------------------------------------------------

    def _round(self, respect_window: bool) -> int:
        """Give every shard of every mapping one batch; returns how many records were handled."""
        from ecomlib.local.component import MOTO_LOCK

        with MOTO_LOCK:
            work = [s for m in _mappings() if self.state(m) == "Enabled" for s in _shards(m)]
        if len(work) < 2:
            return sum(self._poll_shard(item, respect_window) for item in work)
        handled = [0] * len(work)

        def poll(index: int) -> None:
            handled[index] = self._poll_shard(work[index], respect_window)

        threads = [threading.Thread(target=poll, args=(i,), name=f"poller-{i}", daemon=True)
                   for i in range(len(work))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(handled)

    def _poll_shard(self, item: _Shard, respect_window: bool) -> int:
        from ecomlib.local.component import MOTO_LOCK

        mapping, shard = item.mapping, item.shard
        key = (mapping.uuid, shard.shard_id)
        batch_size = mapping.batch_size or 100
        with MOTO_LOCK:
            if key not in self.checkpoints:
                self.checkpoints[key] = _start(mapping, shard)
            records, _, _ = shard.get_records(str(self.checkpoints[key]), batch_size)
        if not records:
            return 0
        window = float(mapping.max_batch_window or 0)
        if respect_window and len(records) < batch_size and time.time() - records[0].created_at < window:
            return 0  # wait for a fuller batch, as AWS does within the batching window
        self._deliver(item, records)
        return len(records)

    def _count(self, key: str, n: int) -> None:
        with self._count_lock:
            self.stats[key] += n

    def _deliver(self, item: _Shard, records: list) -> None:
        """Invoke until the batch succeeds or its records are given up on; move the checkpoint."""
        mapping = item.mapping
        key = (mapping.uuid, item.shard.shard_id)
        fn = get_function(mapping.function_arn)
        max_retries = mapping.max_retry_attempts
        max_retries = INFINITE_RETRY_CAP if max_retries in (None, -1) else int(max_retries)
        reports_items = "ReportBatchItemFailures" in (mapping.function_response_types or [])
        checkpoints = self.checkpoints
        pending = [(records, 0)]  # batches still to deliver, with the retries they already had
        while pending:
            batch, retries = pending.pop(0)
            result = self.runtime.invoke(fn, json.dumps(_event(item, batch, fn)))
            self._count("invocations", 1)
            failed_from = _first_failure(result, batch) if reports_items and result.ok else None
            if result.ok and failed_from is None:
                self._count("records", len(batch))
                checkpoints[key] = int(batch[-1].sequence_number)
                continue
            if failed_from is not None and failed_from > 0:  # the records before it are done
                self._count("records", failed_from)
                checkpoints[key] = int(batch[failed_from - 1].sequence_number)
                batch = batch[failed_from:]
            if retries >= max_retries:
                self._count("dead_lettered", len(batch))
                _dead_letter(item, batch, result, retries + 1)
                checkpoints[key] = int(batch[-1].sequence_number)
                continue
            self._count("retries", 1)
            if not result.ok and mapping.bisect_on_error and len(batch) > 1:
                half = len(batch) // 2
                pending[:0] = [(batch[:half], retries + 1), (batch[half:], retries + 1)]
            else:
                pending.insert(0, (batch, retries + 1))
            time.sleep(0.01)


def _mappings() -> list:
    from moto.awslambda.models import lambda_backends

    found = []
    for region in list(lambda_backends[DEFAULT_ACCOUNT_ID].keys()):
        backend = lambda_backends[DEFAULT_ACCOUNT_ID][region]
        found += [m for m in list(backend._event_source_mappings.values())  # noqa: SLF001
                  if ":kinesis:" in m.event_source_arn]
    return found


def _shards(mapping) -> list[_Shard]:
    from moto.kinesis.models import kinesis_backends

    region, name = mapping.event_source_arn.split(":")[3], mapping.event_source_arn.split("/")[-1]
    stream = kinesis_backends[DEFAULT_ACCOUNT_ID][region].streams.get(name)
    if stream is None:
        return []
    return [_Shard(mapping, stream, shard) for shard in list(stream.shards.values())]


def _first_failure(result, batch: list) -> int | None:
    """Index of the first record the function reported as failed (None: all succeeded).

    As on AWS, a malformed report fails the whole batch (index 0).
    """
    try:
        response = json.loads(result.payload or b"null")
    except ValueError:
        return None
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return None
    positions = {str(r.sequence_number): i for i, r in enumerate(batch)}
    found = []
    for failure in response["batchItemFailures"]:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if identifier not in positions:
            return 0
        found.append(positions[identifier])
    return min(found)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _event(item: _Shard, batch: list, fn) -> dict:
    """The event AWS gives a function for a batch of Kinesis records."""
    region = item.mapping.event_source_arn.split(":")[3]
    return {"Records": [{
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": r.partition_key,
            "sequenceNumber": str(r.sequence_number),
            "data": r.data if isinstance(r.data, str) else base64.b64encode(r.data).decode(),
            "approximateArrivalTimestamp": round(r.created_at, 3),  # AWS: seconds, to the millisecond
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{item.shard.shard_id}:{r.sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": fn.role,
        "awsRegion": region,
        "eventSourceARN": item.mapping.event_source_arn,
    } for r in batch]}


def _dead_letter(item: _Shard, batch: list, result, invoke_count: int) -> None:
    """Describe records given up on to the mapping's on-failure destination (as AWS)."""
    from ecomlib.local.component import MOTO_LOCK

    mapping = item.mapping
    destination = ((mapping.destination_config or {}).get("OnFailure") or {}).get("Destination")
    log.warning("mapping %s: giving up on %d records of %s", mapping.uuid, len(batch), item.shard.shard_id)
    if not destination or ":sqs:" not in destination:
        return
    message = {
        "requestContext": {
            "requestId": result.request_id,
            "functionArn": mapping.function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled" if result.error else "",
        },
        "version": "1.0",
        "timestamp": _iso(time.time()),
        "KinesisBatchInfo": {
            "shardId": item.shard.shard_id,
            "startSequenceNumber": str(batch[0].sequence_number),
            "endSequenceNumber": str(batch[-1].sequence_number),
            "approximateArrivalOfFirstRecord": _iso(batch[0].created_at),
            "approximateArrivalOfLastRecord": _iso(batch[-1].created_at),
            "batchSize": len(batch),
            "streamArn": mapping.event_source_arn,
        },
    }
    from moto.sqs.models import sqs_backends

    region, queue = destination.split(":")[3], destination.split(":")[5]
    with MOTO_LOCK:
        sqs_backends[DEFAULT_ACCOUNT_ID][region].send_message(queue, json.dumps(message))
