"""Lambda ``ingest_api``: API Gateway (REST, proxy integration, POST /invoices) -> Kinesis.

The client posts Online Retail rows as JSON: one row (an object), a batch (a list of
objects), or ``{"rows": [...]}``.  Every row is validated on its own; valid rows are
grouped by invoice and written to the Kinesis stream ``STREAM_NAME`` as JSON Lines
records whose partition key is the InvoiceNo (so all lines of an invoice land on the
same shard, in order).  The answer says how many rows were accepted and why the others
were rejected.

Only the standard library and boto3 are used (what the AWS Lambda Python 3.11 runtime
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

The code is a set of small pure functions (``parse_body``, ``validate_row``,
``pack_records``, ``chunk_records``) plus ``put_records`` (the only one talking to AWS)
and a thin ``lambda_handler``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# Checking and writing rows is shared with batch_loader (lambda_src/shared/rows.py).
from shared.rows import FIELDS, REQUIRED, _json_type, encode_row, row_id_of, validate_row  # noqa: F401

# A named logger at INFO: our lines reach the function's log, boto3's chatter (WARNING
# and up only, the root logger's level) does not.
logger = logging.getLogger("ingest_api")
logger.setLevel(logging.INFO)

# ---------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------

# At most this many rows in one request.  API Gateway accepts payloads up to 10 MB and
# Lambda (synchronous invocation) up to 6 MB; a row is about 250 bytes of JSON, so 10,000
# rows (~2.5 MB) stay well under both.  Clients should send 500-5,000 rows per request
# (ecomlib.client sends 500 by default): big enough to amortise the HTTP round trip,
# small enough to retry cheaply and to answer within API Gateway's 29 s timeout.
MAX_ROWS_PER_REQUEST = 10_000

DEFAULT_MAX_RECORD_BYTES = 1_000_000  # under Kinesis's 1 MiB per record, partition key included
KINESIS_MAX_RECORD_BYTES = 1_048_576
PUT_MAX_RECORDS = 500  # PutRecords: at most 500 records ...
PUT_MAX_BYTES = 5 * 1024 * 1024  # ... and 5 MiB (data + partition keys) per call
PUT_MAX_ATTEMPTS = 5  # first try + 4 retries of the records Kinesis reports as failed
PUT_FIRST_DELAY = 0.05  # seconds before the first retry, doubled each time (0.75 s in all)
MAX_ERRORS_LISTED = 1_000  # the answer lists at most this many rejected rows


# Whole-call PutRecords errors that are worth retrying (like a per-record failure).
TRANSIENT_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "KMSThrottlingException",
        "ThrottlingException",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
STREAM_UNAVAILABLE = "stream unavailable ({code}): retry later"
JSON_HEADERS = {"Content-Type": "application/json"}

_sleep: Callable[[float], None] = time.sleep  # replaced by the tests
_kinesis = None  # the boto3 client, created on first use and kept while the container lives


def kinesis_client():
    """The Kinesis client, created once per Lambda container (cold start) and then reused."""
    global _kinesis
    if _kinesis is None:
        # No endpoint_url: boto3 reads AWS_ENDPOINT_URL when it is set (local runs).
        _kinesis = boto3.client(
            "kinesis",
            config=Config(connect_timeout=5, read_timeout=15, retries={"mode": "standard"}),
        )
    return _kinesis


# ---------------------------------------------------------------------------
# Errors and settings
# ---------------------------------------------------------------------------


class RequestError(Exception):
    """The request as a whole cannot be processed: answered with ``status`` and ``message``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class StreamError(Exception):
    """Kinesis refused the whole PutRecords call for a reason retrying will not fix."""

    def __init__(self, stream: str, code: str, detail: str) -> None:
        super().__init__(f"cannot write to Kinesis stream '{stream}': {code}: {detail}")
        self.stream = stream
        self.code = code


@dataclass(frozen=True)
class Settings:
    """What the function reads from its environment variables."""

    stream_name: str
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read STREAM_NAME and MAX_RECORD_BYTES; a bad setting is a RequestError(500)."""
    env = os.environ if env is None else env
    stream = (env.get("STREAM_NAME") or "").strip()
    if not stream:
        raise RequestError(500, "function misconfigured: environment variable STREAM_NAME is not set")
    raw = (env.get("MAX_RECORD_BYTES") or "").strip()
    if not raw:
        return Settings(stream)
    try:
        max_bytes = int(raw)
    except ValueError:
        max_bytes = 0
    if not 1_000 <= max_bytes <= KINESIS_MAX_RECORD_BYTES:
        raise RequestError(
            500,
            f"function misconfigured: MAX_RECORD_BYTES={raw!r} must be an integer "
            f"from 1000 to {KINESIS_MAX_RECORD_BYTES}",
        )
    return Settings(stream, max_bytes)


# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------


def response(status: int, body: dict, headers: dict[str, str] | None = None) -> dict:
    """An API Gateway proxy response with a JSON body."""
    return {
        "statusCode": status,
        "headers": {**JSON_HEADERS, **(headers or {})},
        "body": json.dumps(body, ensure_ascii=False),
    }


def request_id_of(event: Any, context: Any = None) -> str:
    """API Gateway's request id (requestContext.requestId), else Lambda's, else a new uuid."""
    if isinstance(event, dict):
        ctx = event.get("requestContext")
        if isinstance(ctx, dict) and isinstance(ctx.get("requestId"), str) and ctx["requestId"]:
            return ctx["requestId"]
    return getattr(context, "aws_request_id", None) or str(uuid.uuid4())


def method_of(event: Any) -> str | None:
    """The HTTP method of a REST (v1) proxy event (HTTP API v2 events work too)."""
    if not isinstance(event, dict):
        return None
    method = event.get("httpMethod")
    if method is None:
        http = (event.get("requestContext") or {}).get("http") or {}
        method = http.get("method") if isinstance(http, dict) else None
    return method.upper() if isinstance(method, str) else None


# ---------------------------------------------------------------------------
# Parsing the body
# ---------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")




def body_text(event: dict) -> str:
    """The request body as text: base64-decoded when isBase64Encoded, checked to be UTF-8."""
    body = event.get("body")
    if body is None:
        body = ""
    if event.get("isBase64Encoded") and body:
        try:
            body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise RequestError(400, "body is marked base64 but is not valid base64") from None
    if isinstance(body, (bytes, bytearray)):
        try:
            return bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RequestError(400, f"body is not valid UTF-8 (bad byte at position {exc.start})") from None
    if not isinstance(body, str):
        raise RequestError(400, "body must be text")
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(400, "body is not valid UTF-8") from None
    return body.lstrip("\ufeff")


def parse_rows(text: str) -> list[Any]:
    """The items of a JSON body: one object -> [object]; a list -> itself; {"rows": [...]} -> the list.

    Numbers with a fraction become Decimal, so 2.55 stays exactly 2.55.  Raises
    RequestError(400) for an empty body or bad JSON, RequestError(413) for too many rows.
    """
    if not text.strip():
        raise RequestError(400, "body is empty: send a JSON object (one row) or a list of objects")
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise RequestError(
            400, f"body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError as exc:  # NaN / Infinity, integers with thousands of digits
        raise RequestError(400, f"body is not valid JSON: {str(exc).split(':')[0]}") from None
    except RecursionError:
        raise RequestError(400, "body is not valid JSON: nested too deeply") from None
    if isinstance(value, dict) and "rows" in value:
        value = value["rows"]
        if not isinstance(value, list):
            raise RequestError(400, f"'rows' must be a list of objects, got {_json_type(value)}")
    elif isinstance(value, dict):
        value = [value]
    elif not isinstance(value, list):
        raise RequestError(
            400, f"body must be a JSON object or a list of objects, got {_json_type(value)}"
        )
    if len(value) > MAX_ROWS_PER_REQUEST:
        raise RequestError(
            413,
            f"too many rows in one request: {len(value)} > {MAX_ROWS_PER_REQUEST}; "
            "send batches of 500 to 5,000 rows",
        )
    return value


# ---------------------------------------------------------------------------
# Packing rows into Kinesis records
# ---------------------------------------------------------------------------


def pack_records(
    rows: list[dict], max_bytes: int = DEFAULT_MAX_RECORD_BYTES, *, encoded: list[bytes] | None = None
) -> list[dict]:
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


def chunk_records(
    records: list[dict], max_records: int = PUT_MAX_RECORDS, max_bytes: int = PUT_MAX_BYTES
) -> list[list[int]]:
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


# ---------------------------------------------------------------------------
# Writing to Kinesis
# ---------------------------------------------------------------------------


@dataclass
class PutResult:
    """Outcome of :func:`put_records`: per record, None (written) or the last ErrorCode."""

    failed: list[str | None]
    calls: int = 0
    retried: int = 0  # record puts repeated because Kinesis reported them as failed

    @property
    def written(self) -> int:
        return sum(code is None for code in self.failed)


def put_records(
    client: Any,
    stream_name: str,
    records: list[dict],
    *,
    max_attempts: int = PUT_MAX_ATTEMPTS,
    first_delay: float = PUT_FIRST_DELAY,
) -> PutResult:
    """Write records with PutRecords (chunks of <= 500 records and <= 5 MiB).

    Only the records a response reports as failed (``ErrorCode``) are sent again, after
    0.05 s, 0.1 s, 0.2 s, ... up to ``max_attempts`` tries.  Throttling-like errors of a
    whole call count as a failure of each of its records.  Other errors of a whole call
    (no such stream, no permission, ...) raise StreamError.

    A retried record may land after a later record of the same invoice (only possible
    when an invoice is split over several records): consumers order by RowId if needed.
    """
    result = PutResult(failed=[None] * len(records))
    pending = list(range(len(records)))
    delay = first_delay
    for attempt in range(1, max_attempts + 1):
        if attempt > 1:
            _sleep(delay)
            delay *= 2
            result.retried += len(pending)
        still_failing: list[int] = []
        sub = [records[i] for i in pending]
        for chunk in chunk_records(sub):
            targets = [pending[i] for i in chunk]
            entries = [
                {"Data": records[i]["Data"], "PartitionKey": records[i]["PartitionKey"]}
                for i in targets
            ]
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
        if not pending:
            break
    return result


# ---------------------------------------------------------------------------
# The request
# ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """Counts for one request (the body of a 200/503 answer, plus log-only numbers)."""

    rows: int = 0
    accepted: int = 0
    records: int = 0
    errors: list[dict] = field(default_factory=list)
    stream_failures: int = 0
    put_calls: int = 0
    retried: int = 0

    def body(self, request_id: str) -> dict:
        errors = sorted(self.errors, key=lambda e: e["index"])
        body: dict[str, Any] = {
            "accepted": self.accepted,
            "rejected": len(errors),
            "records": self.records,
            "errors": errors[:MAX_ERRORS_LISTED],
        }
        if len(errors) > MAX_ERRORS_LISTED:
            body["errors_truncated"] = True
        body["requestId"] = request_id
        return body


def ingest(items: list[Any], request_id: str, settings: Settings, client: Any = None) -> Outcome:
    """Validate, pack and write the rows of one request."""
    outcome = Outcome(rows=len(items))
    valid: list[dict] = []
    lines: list[bytes] = []  # each valid row as its JSON line
    index_of: list[int] = []  # position in the request of each valid row
    for index, item in enumerate(items):
        row, reason = validate_row(item, default_row_id=f"{request_id}:{index}")
        if row is not None:
            line = encode_row(row)
            size = len(line) + len(row["InvoiceNo"].encode("utf-8"))
            if size > settings.max_record_bytes:
                row, reason = None, (
                    f"row is too large for one Kinesis record ({size} > {settings.max_record_bytes} bytes)"
                )
        if row is None:
            outcome.errors.append({"index": index, "RowId": row_id_of(item), "reason": reason})
        else:
            valid.append(row)
            lines.append(line)
            index_of.append(index)
    if not valid:
        return outcome
    records = pack_records(valid, settings.max_record_bytes, encoded=lines)
    result = put_records(client or kinesis_client(), settings.stream_name, records)
    outcome.put_calls, outcome.retried = result.calls, result.retried
    for record, code in zip(records, result.failed):
        if code is None:
            outcome.records += 1
            outcome.accepted += record["rows"]
            continue
        for position in record["positions"]:
            outcome.stream_failures += 1
            outcome.errors.append(
                {
                    "index": index_of[position],
                    "RowId": valid[position]["RowId"],
                    "reason": STREAM_UNAVAILABLE.format(code=code),
                }
            )
    return outcome


def handle(event: Any, context: Any = None) -> dict:
    """Answer one API Gateway proxy event (may raise for unexpected errors: see lambda_handler)."""
    started = time.monotonic()
    request_id = request_id_of(event, context)
    log = {"requestId": request_id}
    try:
        if not isinstance(event, dict):
            raise RequestError(400, "expected an API Gateway proxy event")
        method = method_of(event)
        log["method"] = method
        if method != "POST":
            raise RequestError(
                405, f"method {method or '(none)'} not allowed: POST rows to this URL", {"Allow": "POST"}
            )
        settings = load_settings()
        items = parse_rows(body_text(event))
        outcome = ingest(items, request_id, settings)
    except RequestError as exc:
        log.update(status=exc.status, message=exc.message)
        answer = response(exc.status, {"message": exc.message, "requestId": request_id}, exc.headers)
    except StreamError as exc:
        log.update(status=500, message=str(exc))
        message = f"cannot write to Kinesis stream '{exc.stream}' ({exc.code})"
        answer = response(500, {"message": message, "requestId": request_id})
    else:
        body = outcome.body(request_id)
        status = 200
        if outcome.stream_failures:
            status = 503
            body["message"] = (
                f"{outcome.stream_failures} rows could not be written to the stream: "
                "send the rows whose reason starts with 'stream unavailable' again"
            )
        log.update(
            status=status,
            rows=outcome.rows,
            accepted=outcome.accepted,
            rejected=body["rejected"],
            stream_failures=outcome.stream_failures,
            records=outcome.records,
            put_calls=outcome.put_calls,
            retried_records=outcome.retried,
        )
        answer = response(status, body)
    log["ms"] = round((time.monotonic() - started) * 1000, 1)
    logger.info(json.dumps(log))
    return answer


def lambda_handler(event: Any, context: Any) -> dict:
    """Lambda entry point: never lets an exception (or a stack trace) reach the client."""
    try:
        return handle(event, context)
    except Exception:  # noqa: BLE001 - the last line of defence
        request_id = request_id_of(event, context)
        logger.exception(json.dumps({"requestId": request_id, "status": 500, "message": "internal error"}))
        return response(500, {"message": "internal error", "requestId": request_id})
