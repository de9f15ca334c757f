"""Lambda ``ingest_api``: API Gateway (REST, proxy integration, POST /invoices) -> Kinesis.

The client posts Online Retail rows as JSON: one row (an object), a batch (a list of
objects), or ``{"rows": [...]}``.  Every row is validated on its own; valid rows are
grouped by invoice and written to the Kinesis stream ``STREAM_NAME`` as JSON Lines
records whose partition key is the InvoiceNo (so all lines of an invoice land on the
same shard, in order).  The answer says how many rows were accepted and why the others
were rejected.

Only the standard library and boto3 are used (what the AWS Lambda Python runtime
provides), so this file deploys to AWS unchanged.  Locally the runtime sets
``AWS_ENDPOINT_URL``, which boto3 honours: no endpoint appears in this code.

Environment variables:

- ``STREAM_NAME``       (required) the Kinesis data stream to write to.
- ``MAX_RECORD_BYTES``  (optional, default 1,000,000) largest Kinesis record written,
  partition key included; Kinesis allows 1 MiB (1,048,576 bytes) per record.

Answers (API Gateway proxy responses, body always JSON, never a stack trace):

- 200 ``{"accepted", "rejected", "records", "errors": [{"index", "RowId", "reason"}], "requestId"}``
- 503 the same body plus ``"message"`` when some rows could not be written to the stream
  (their reason starts with "stream unavailable"): the client retries just those rows.
- 400 / 405 / 413 / 500 ``{"message": ..., "requestId": ...}``.

The lesson reads top to bottom: parse the body (``parse_rows``), validate each row
(``check_rows``), act (``ingest``: pack the valid rows into records and put them).  The
plumbing (API Gateway, Kinesis PutRecords with retries, settings, clients) is in ``shared/``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from shared.api import ApiError, body_text, method_of, parse_json, serve
from shared.aws import client
from shared.kinesis_put import PutResult, StreamError, chunk_records, pack_records, put_records, record_size  # noqa: F401
from shared.rows import FIELDS, _json_type, encode_row, row_id_of, validate_row  # noqa: F401
from shared.settings import Misconfigured, read_settings

logger = logging.getLogger("ingest_api")  # INFO: our lines reach the log, boto3's chatter does not
logger.setLevel(logging.INFO)

# At most this many rows in one request.  API Gateway accepts payloads up to 10 MB and
# Lambda (synchronous invocation) up to 6 MB; a row is about 250 bytes of JSON, so 10,000
# rows (~2.5 MB) stay well under both.  Clients should send 500-5,000 rows per request
# (ecomlib.client sends 500 by default): big enough to amortise the HTTP round trip,
# small enough to retry cheaply and to answer within API Gateway's 29 s timeout.
MAX_ROWS_PER_REQUEST = 10_000
KINESIS_MAX_RECORD_BYTES = 1_048_576  # per record, partition key included
MAX_ERRORS_LISTED = 1_000  # the answer lists at most this many rejected rows
STREAM_UNAVAILABLE = "stream unavailable ({code}): retry later"
# The answer must leave before the function's timeout (20 s, under API Gateway's 29 s
# integration timeout): a PutRecords call is given at most 2 s to connect and 5 s to
# answer, tried once by boto3 (put_records retries the failed records itself), and none
# is started with less than CALL_RESERVE_MS left.  Rows not written by then are answered
# 503 "stream unavailable (DeadlineNear)": the client sends just those again.  Were the
# function cut off instead, API Gateway would answer 502/504 with no counts, the client
# would send every row again, and the rows already written would be in the stream twice.
KINESIS_CLIENT = {"read_timeout": 5, "connect_timeout": 2, "max_attempts": 1}
CALL_RESERVE_MS = 8_000


@dataclass(frozen=True)
class Settings:
    """STREAM_NAME and MAX_RECORD_BYTES (read by shared.settings.read_settings)."""

    stream_name: str
    max_record_bytes: int = 1_000_000  # under Kinesis's 1 MiB per record

    def __post_init__(self) -> None:
        if not 1_000 <= self.max_record_bytes <= KINESIS_MAX_RECORD_BYTES:
            raise Misconfigured(f"function misconfigured: MAX_RECORD_BYTES={self.max_record_bytes} must be "
                                f"an integer from 1000 to {KINESIS_MAX_RECORD_BYTES}")


# ---- 1. parse: the body is one row, a list of rows, or {"rows": [...]} ----------------


def parse_rows(text: str) -> list[Any]:
    """The items of a JSON body: one object -> [object]; a list -> itself; {"rows": [...]} -> the list."""
    if not text.strip():
        raise ApiError(400, "body is empty: send a JSON object (one row) or a list of objects")
    value = parse_json(text)
    if isinstance(value, dict) and "rows" in value:
        value = value["rows"]
        if not isinstance(value, list):
            raise ApiError(400, f"'rows' must be a list of objects, got {_json_type(value)}")
    elif isinstance(value, dict):
        value = [value]
    elif not isinstance(value, list):
        raise ApiError(400, f"body must be a JSON object or a list of objects, got {_json_type(value)}")
    if len(value) > MAX_ROWS_PER_REQUEST:
        raise ApiError(413, f"too many rows in one request: {len(value)} > {MAX_ROWS_PER_REQUEST}; "
                            "send batches of 500 to 5,000 rows")
    return value


# ---- 2. validate: every row on its own --------------------------------------------------


def check_rows(items: list[Any], request_id: str, max_bytes: int) -> tuple[list[dict], list[bytes], list[int], list[dict]]:
    """(valid rows, their JSON lines, their positions in the request, errors of the others)."""
    valid, lines, index_of, errors = [], [], [], []
    for index, item in enumerate(items):
        row, reason = validate_row(item, default_row_id=f"{request_id}:{index}")
        if row is not None:
            line = encode_row(row)
            size = len(line) + len(row["InvoiceNo"].encode("utf-8"))
            if size > max_bytes:
                row, reason = None, f"row is too large for one Kinesis record ({size} > {max_bytes} bytes)"
        if row is None:
            errors.append({"index": index, "RowId": row_id_of(item), "reason": reason})
        else:
            valid.append(row)
            lines.append(line)
            index_of.append(index)
    return valid, lines, index_of, errors


# ---- 3. act: pack the valid rows into records (one per invoice) and put them -------------


def ingest(items: list[Any], request_id: str, settings: Settings, log: dict,
           time_left_ms: Callable[[], int] | None = None) -> tuple[int, dict]:
    """Validate, pack and write the rows of one request: (200 or 503, the answer's body).
    ``time_left_ms``: the invocation's remaining time (no call started too close to the end)."""
    valid, lines, index_of, errors = check_rows(items, request_id, settings.max_record_bytes)
    accepted = written = 0
    result = PutResult(failed=[])
    if valid:
        records = pack_records(valid, settings.max_record_bytes, encoded=lines)
        result = put_records(client("kinesis", **KINESIS_CLIENT), settings.stream_name, records,
                             time_left_ms=time_left_ms, call_reserve_ms=CALL_RESERVE_MS)
        for record, code in zip(records, result.failed):
            if code is None:
                written, accepted = written + 1, accepted + record["rows"]
            for position in record["positions"] if code else ():
                errors.append({"index": index_of[position], "RowId": valid[position]["RowId"],
                               "reason": STREAM_UNAVAILABLE.format(code=code)})
    errors.sort(key=lambda error: error["index"])
    body: dict[str, Any] = {"accepted": accepted, "rejected": len(errors), "records": written,
                            "errors": errors[:MAX_ERRORS_LISTED]}
    if len(errors) > MAX_ERRORS_LISTED:
        body["errors_truncated"] = True
    body["requestId"] = request_id
    unavailable = len(valid) - accepted
    log.update(status=503 if unavailable else 200, rows=len(items), accepted=accepted, rejected=len(errors),
               stream_failures=unavailable, records=written, put_calls=result.calls, retried_records=result.retried)
    if not unavailable:
        return 200, body
    body["message"] = (f"{unavailable} rows could not be written to the stream: "
                       "send the rows whose reason starts with 'stream unavailable' again")
    return 503, body


def handle(event: dict, request_id: str, log: dict, time_left_ms: Callable[[], int] | None = None) -> tuple[int, dict]:
    """POST /invoices: parse -> validate -> act."""
    log["method"] = method = method_of(event)
    if method != "POST":
        raise ApiError(405, f"method {method or '(none)'} not allowed: POST rows to this URL", {"Allow": "POST"})
    settings = read_settings(Settings)
    try:
        return ingest(parse_rows(body_text(event)), request_id, settings, log, time_left_ms)
    except StreamError as exc:
        log["error"] = str(exc)
        raise ApiError(500, f"cannot write to Kinesis stream '{exc.stream}' ({exc.code})") from None


def lambda_handler(event: Any, context: Any) -> dict:
    """Lambda entry point: never lets an exception (or a stack trace) reach the client."""
    time_left_ms = getattr(context, "get_remaining_time_in_millis", None)
    return serve(event, context, lambda e, request_id, log: handle(e, request_id, log, time_left_ms), logger)
