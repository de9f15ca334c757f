"""Writing rows to a Kinesis stream: records packed by invoice, PutRecords with retries.

- :func:`pack_records` groups rows into records, one or more per invoice, the invoice's
  rows as JSON Lines, the InvoiceNo as partition key (all lines of an invoice land on the
  same shard, in order).
- :func:`put_records` writes them (calls of at most 500 records and 5 MiB) and sends
  again only the records Kinesis reports as failed, with the backoff of ``shared.aws``.

Only the standard library and boto3 (what the Lambda Python runtime provides).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from shared.aws import FIRST_DELAY, retries
from shared.rows import encode_row

PUT_MAX_RECORDS = 500  # PutRecords: at most 500 records ...
PUT_MAX_BYTES = 5 * 1024 * 1024  # ... and 5 MiB (data + partition keys) per call
PUT_MAX_ATTEMPTS = 5  # first try + 4 retries of the records Kinesis reports as failed
PUT_FIRST_DELAY = FIRST_DELAY  # doubled each time (0.75 s in all)
DEADLINE_NEAR = "DeadlineNear"  # a record not sent: too little time left in the invocation
# Whole-call PutRecords errors that are worth retrying (like a per-record failure).
TRANSIENT_ERRORS = frozenset({
    "ProvisionedThroughputExceededException", "LimitExceededException", "KMSThrottlingException",
    "ThrottlingException", "InternalFailure", "InternalServerError", "ServiceUnavailable",
    "ServiceUnavailableException",
})


class StreamError(Exception):
    """Kinesis refused the whole PutRecords call for a reason retrying will not fix."""

    def __init__(self, stream: str, code: str, detail: str) -> None:
        super().__init__(f"cannot write to Kinesis stream '{stream}': {code}: {detail}")
        self.stream = stream
        self.code = code


def pack_records(rows: list[dict], max_bytes: int, *, encoded: list[bytes] | None = None) -> list[dict]:
    """Group normalised rows into Kinesis records, one or more per invoice.

    Returns ``[{"PartitionKey": InvoiceNo, "Data": bytes, "rows": n, "positions": [...]}]``:
    ``Data`` is the invoice's rows as JSON Lines; ``positions`` are the rows' positions in
    ``rows``.  Invoices keep their first-seen order and rows their order within the
    invoice, even when the invoice's rows are not adjacent.  An invoice larger than
    ``max_bytes`` (Data + partition key) is split into several records with the same key,
    in order.  A single row larger than ``max_bytes`` raises ValueError (check rows with
    :func:`encode_row` first).  ``encoded`` are the rows already encoded with :func:`encode_row`
    (optional: saves encoding them twice).
    """
    groups: dict[str, list[int]] = {}
    for position, row in enumerate(rows):
        groups.setdefault(row["InvoiceNo"], []).append(position)
    records: list[dict] = []
    for key, positions in groups.items():
        key_bytes = len(key.encode("utf-8"))
        lines: list[bytes] = []
        members: list[int] = []
        size = key_bytes
        for position in positions:
            line = encoded[position] if encoded is not None else encode_row(rows[position])
            if key_bytes + len(line) > max_bytes:
                raise ValueError(f"row {position} is larger than a Kinesis record ({max_bytes} bytes)")
            if lines and size + len(line) > max_bytes:
                records.append(_record(key, lines, members))
                lines, members, size = [], [], key_bytes
            lines.append(line)
            members.append(position)
            size += len(line)
        records.append(_record(key, lines, members))
    return records


def _record(key: str, lines: list[bytes], positions: list[int]) -> dict:
    return {"PartitionKey": key, "Data": b"".join(lines), "rows": len(lines), "positions": positions}


def record_size(record: dict) -> int:
    """Bytes a record counts against Kinesis limits: data plus partition key."""
    return len(record["Data"]) + len(record["PartitionKey"].encode("utf-8"))


def chunk_records(records: list[dict], max_records: int = PUT_MAX_RECORDS,
                  max_bytes: int = PUT_MAX_BYTES) -> list[list[int]]:
    """Split records (by position in ``records``) into PutRecords calls of at most
    ``max_records`` records and ``max_bytes`` bytes, keeping their order."""
    chunks: list[list[int]] = []
    current: list[int] = []
    size = 0
    for position, record in enumerate(records):
        bytes_ = record_size(record)
        if current and (len(current) >= max_records or size + bytes_ > max_bytes):
            chunks.append(current)
            current, size = [], 0
        current.append(position)
        size += bytes_
    if current:
        chunks.append(current)
    return chunks


@dataclass
class PutResult:
    """Outcome of :func:`put_records`: per record, None (written) or the last ErrorCode."""

    failed: list[str | None]
    calls: int = 0
    retried: int = 0  # record puts repeated because Kinesis reported them as failed


def put_records(client: Any, stream_name: str, records: list[dict], *,
                max_attempts: int = PUT_MAX_ATTEMPTS, first_delay: float = PUT_FIRST_DELAY,
                time_left_ms: Callable[[], int] | None = None, call_reserve_ms: int = 0) -> PutResult:
    """Write records with PutRecords (chunks of <= 500 records and <= 5 MiB).

    Only the records a response reports as failed (``ErrorCode``) are sent again, after
    0.05 s, 0.1 s, 0.2 s, ... up to ``max_attempts`` tries.  Throttling-like errors of a
    whole call count as a failure of each of its records.  Other errors of a whole call
    (no such stream, no permission, ...) raise StreamError.

    A retried record may land after a later record of the same invoice (only possible
    when an invoice is split over several records): consumers order by RowId if needed.

    ``time_left_ms`` (the Lambda context's ``get_remaining_time_in_millis``): no call is
    started with less than ``call_reserve_ms`` left; the records not written by then fail
    with ``DeadlineNear``, so the function answers before its own timeout (and API
    Gateway's) and says which rows to send again, instead of being cut off mid-way.
    """
    result = PutResult(failed=[None] * len(records))
    pending = list(range(len(records)))
    for attempt in retries(max_attempts, first_delay):
        if attempt:
            result.retried += len(pending)
        still_failing: list[int] = []
        for chunk in chunk_records([records[i] for i in pending]):
            targets = [pending[i] for i in chunk]
            if time_left_ms is not None and time_left_ms() < call_reserve_ms:
                for target in targets:
                    result.failed[target] = DEADLINE_NEAR
                still_failing += targets
                continue
            entries = [{"Data": records[i]["Data"], "PartitionKey": records[i]["PartitionKey"]} for i in targets]
            result.calls += 1
            try:
                answer = client.put_records(StreamName=stream_name, Records=entries)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = error.get("Code") or "ClientError"
                if code not in TRANSIENT_ERRORS:
                    raise StreamError(stream_name, code, error.get("Message") or "") from None
                codes = [code] * len(targets)
            except BotoCoreError as exc:  # connection trouble, timeouts
                codes = [type(exc).__name__] * len(targets)
            else:
                if answer.get("FailedRecordCount", 0) == 0:
                    codes = [None] * len(targets)
                else:
                    codes = [entry.get("ErrorCode") for entry in answer.get("Records", [])]
                    codes += ["MissingResult"] * (len(targets) - len(codes))
            for target, code in zip(targets, codes):
                result.failed[target] = code
                if code:
                    still_failing.append(target)
        pending = still_failing
        if not pending or (time_left_ms is not None and time_left_ms() < call_reserve_ms):
            break
    return result
