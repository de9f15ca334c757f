"""Lambda ``batch_loader``: bulk files in S3 -> DynamoDB and the warehouse, on a schedule.

An EventBridge rule invokes this function on a schedule (a "Scheduled Event"; its
content does not matter).  Each run loads the files waiting under
``s3://$BUCKET/batch/incoming/``: CSV in the Online Retail layout (a header naming
InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID,
Country, and optionally RowId; UTF-8 or ISO-8859-1) or JSON Lines (one row object per
line, the fields the ingest API takes).  A file is loaded whole or not at all:

1. **Validate.**  The file is read in chunks (ranged GETs of ``CHUNK_BYTES``, cut at a
   line end and at an invoice boundary).  Every row is checked exactly as the ingest API
   checks it (``shared/rows.py``); the valid rows of each chunk are staged as JSON Lines
   under ``batch/staging/<file>/``.  If any row is bad, nothing is loaded: the file
   moves to ``batch/failed/`` with ``<file>.errors.json`` naming each bad row (line
   number, RowId, reason).
2. **Load.**  Each staged chunk is written to the Invoices and Customers tables (the same
   items as the stream path writes, ``shared/invoice_items.py``) and merged into the
   warehouse table in one transaction: COPY into a temporary table, DELETE the rows
   with the same row_id, INSERT.  Loading a chunk twice changes nothing.
3. **Finish.**  The file moves to ``batch/processed/`` with ``<file>.report.json``.

Every step is checkpointed in ``batch/state/<file>.json`` after each chunk.  A run stops
before its time runs out (``context.get_remaining_time_in_millis``) and the next run
carries on from the checkpoint, so a big file is spread over several invocations and
an interrupted run (timeout, crash) redoes at most one chunk, harmlessly.  Rows without
a RowId get ``<file name>:<line number>``, so rerunning a file never adds rows.  The
function is meant to run one at a time (reserved concurrency 1).

Environment variables: ``BUCKET``, ``INVOICES_TABLE``, ``CUSTOMERS_TABLE``,
``CLUSTER_ID``, ``DATABASE``, ``DB_USER`` (the Redshift Data API sign-in),
``WAREHOUSE_TABLE``, ``JSONPATHS`` (s3:// URL of the COPY's jsonpaths file); optional
``COPY_ROLE_ARN`` (the IAM role the cluster uses to read S3), ``CHUNK_BYTES`` (default
8 MiB), ``MAX_CHUNKS_PER_RUN`` (default: as many as time allows) and ``PREFIX`` (default
``batch/``).

Only the standard library and boto3 are used (what the Lambda Python runtime provides).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import boto3
from botocore.config import Config

from shared.invoice_items import customer_items, invoice_items, write_items
from shared.rows import MAX_ROW_ID_CHARS, encode_row, validate_row

logger = logging.getLogger("batch_loader")
logger.setLevel(logging.INFO)

CSV_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
               "UnitPrice", "CustomerID", "Country")
FILES_AT_ONCE = 2  # files loaded side by side by one run (each file by one thread)
MAX_ERRORS_LISTED = 1_000  # the error report lists at most this many bad rows (and counts all)
SAFETY_MS = 10_000  # stop when less than this (or 2x the slowest chunk) is left
STATEMENT_TIMEOUT = 600  # seconds to wait for the warehouse's merge
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")

_clients: dict[str, Any] = {}  # reused while the execution environment is warm
# The rows of the latest staged chunks, kept for loading them in the same run without
# reading them back from S3 (the staged object is the record; this is only a shortcut).
_staged: dict[str, list[dict]] = {}
STAGED_KEPT = 4  # chunks (of up to CHUNK_BYTES each) kept in memory at most
_staged_lock = threading.Lock()


def client(service: str):
    """One boto3 client per service, created on first use (AWS_ENDPOINT_URL is honoured)."""
    if service not in _clients:
        _clients[service] = boto3.client(service, config=Config(retries={"mode": "standard"}))
    return _clients[service]


@dataclass
class Settings:
    bucket: str
    invoices_table: str
    customers_table: str
    cluster_id: str
    database: str
    db_user: str
    warehouse_table: str
    jsonpaths: str
    copy_role_arn: str | None
    chunk_bytes: int
    prefix: str
    max_chunks_per_run: int | None


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    required = ("BUCKET", "INVOICES_TABLE", "CUSTOMERS_TABLE", "CLUSTER_ID", "DATABASE",
                "DB_USER", "WAREHOUSE_TABLE", "JSONPATHS")
    missing = [name for name in required if not env.get(name)]
    if missing:
        raise RuntimeError(f"function misconfigured: set {', '.join(missing)}")
    return Settings(env["BUCKET"], env["INVOICES_TABLE"], env["CUSTOMERS_TABLE"], env["CLUSTER_ID"],
                    env["DATABASE"], env["DB_USER"], env["WAREHOUSE_TABLE"], env["JSONPATHS"],
                    env.get("COPY_ROLE_ARN") or None, int(env.get("CHUNK_BYTES") or 8 * 1024 * 1024),
                    env.get("PREFIX") or "batch/", int(env["MAX_CHUNKS_PER_RUN"]) if env.get("MAX_CHUNKS_PER_RUN") else None)


class FileRefused(Exception):
    """The file as a whole cannot be read (no header, unknown format, a line too long)."""


# ---------------------------------------------------------------------------
# Reading rows from a chunk of bytes
# ---------------------------------------------------------------------------


def split_lines(data: bytes, at_end: bool, quoted: bool) -> list[tuple[bytes, int]]:
    """The whole lines at the start of ``data``: (line without its line end, bytes it takes).

    Without ``at_end`` the text after the last line end is left for the next chunk.  In
    CSV (``quoted``) a line end inside double quotes belongs to the field, so physical
    lines are joined until their quotes balance.
    """
    end = len(data) if at_end else data.rfind(b"\n") + 1
    lines: list[tuple[bytes, int]] = []
    if end == 0:
        return lines
    pending: list[bytes] = []
    for piece in data[:end].split(b"\n"):
        pending.append(piece)
        if quoted and sum(p.count(b'"') for p in pending) % 2:
            continue  # inside a quoted field: the line goes on
        line = b"\n".join(pending)
        lines.append((line.rstrip(b"\r"), len(line) + 1))
        pending = []
    if at_end and pending:  # an unterminated quote at the end of the file: the CSV reader judges
        line = b"\n".join(pending)
        lines.append((line.rstrip(b"\r"), len(line) + 1))
    if lines and lines[-1][0] == b"" and lines[-1][1] == 1 and data[:end].endswith(b"\n"):
        lines.pop()  # the empty text after the last line end
    if at_end and lines and not data.endswith(b"\n"):
        lines[-1] = (lines[-1][0], lines[-1][1] - 1)  # the file's last line has no line end
    return lines


def decode(line: bytes) -> str:
    """UTF-8, or ISO-8859-1 (the original dataset's encoding) when it is not UTF-8."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("iso-8859-1")


def csv_row(values: list[str], header: list[str]) -> dict | str:
    """A CSV record as a row for ``validate_row`` (numbers parsed), or why it cannot be one."""
    if len(values) != len(header):
        return f"has {len(values)} fields, the header has {len(header)}"
    row: dict[str, Any] = dict(zip(header, values))
    for name in ("Description", "CustomerID", "RowId"):
        if row.get(name) == "":
            row[name] = None
    quantity = row.get("Quantity")
    if isinstance(quantity, str) and _INTEGER.fullmatch(quantity):
        row["Quantity"] = int(quantity)
    price = row.get("UnitPrice")
    if isinstance(price, str):
        try:
            row["UnitPrice"] = Decimal(price.strip())
        except InvalidOperation:
            pass  # validate_row says why
    return row


def parse_lines(lines: list[bytes], kind: str, header: list[str] | None) -> list[dict | str | None]:
    """Each line as a row dict, a string saying why it is not a row, or None if it is blank."""
    parsed: list[dict | str | None] = [None] * len(lines)
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if kind == "csv":
        records = csv.reader([decode(lines[i]) for i in filled])
        for i, values in zip(filled, records):
            parsed[i] = csv_row(values, header or [])
        return parsed
    for i in filled:
        try:
            parsed[i] = json.loads(decode(lines[i]), parse_float=Decimal)
        except ValueError as exc:
            parsed[i] = f"line is not JSON: {exc}"
    return parsed


def read_header(data: bytes, at_end: bool, key: str) -> tuple[list[str], int]:
    """The CSV header's column names and its size in bytes; FileRefused if it is not one."""
    lines = split_lines(data, at_end, quoted=True)
    if not lines:
        raise FileRefused("no header line (is the file empty?)")
    line, size = lines[0]
    header = [name.strip().lstrip("\ufeff") for name in next(csv.reader([decode(line)]), [])]
    missing = [name for name in CSV_COLUMNS if name not in header]
    if missing:
        raise FileRefused(f"{key}: the header has no {', '.join(missing)} "
                          f"(expected the Online Retail layout: {','.join(CSV_COLUMNS)})")
    return header, size


# ---------------------------------------------------------------------------
# The files and their state in S3
# ---------------------------------------------------------------------------


def file_kind(key: str) -> str | None:
    lower = key.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    return None


class Files:
    """Where a file and its staging, state and reports live in the bucket."""

    def __init__(self, settings: Settings, name: str) -> None:
        self.s = settings
        self.name = name
        p = settings.prefix
        self.incoming = f"{p}incoming/{name}"
        self.state = f"{p}state/{name}.json"
        self.staging = f"{p}staging/{name}/"
        self.processed = f"{p}processed/{name}"
        self.failed = f"{p}failed/{name}"

    def chunk(self, number: int) -> str:
        return f"{self.staging}{number:05d}.json"

    def get_json(self, key: str) -> dict | None:
        s3 = client("s3")
        try:
            return json.loads(s3.get_object(Bucket=self.s.bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    def put_json(self, key: str, value: dict) -> None:
        client("s3").put_object(Bucket=self.s.bucket, Key=key, ContentType="application/json",
                                Body=json.dumps(value, indent=1, default=str).encode())

    def move(self, target: str) -> None:
        """Copy the incoming file to ``target`` and delete it, its staging and its state."""
        s3 = client("s3")
        s3.copy_object(Bucket=self.s.bucket, Key=target,
                       CopySource={"Bucket": self.s.bucket, "Key": self.incoming})
        doomed = [self.incoming, self.state]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.s.bucket, Prefix=self.staging):
            doomed += [item["Key"] for item in page.get("Contents", [])]
        for start in range(0, len(doomed), 1000):
            s3.delete_objects(Bucket=self.s.bucket, Delete={
                "Objects": [{"Key": key} for key in doomed[start:start + 1000]], "Quiet": True})


def incoming_files(settings: Settings) -> list[tuple[str, str, int]]:
    """(name, ETag, size) of each file waiting in incoming/, in name order."""
    prefix = f"{settings.prefix}incoming/"
    found = []
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=settings.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix):]
            if name and not name.endswith("/"):
                found.append((name, item["ETag"], item["Size"]))
    return sorted(found)


# ---------------------------------------------------------------------------
# Step 1: validate and stage one chunk
# ---------------------------------------------------------------------------


def default_row_id(name: str, line: int) -> str:
    stem = name.rsplit("/", 1)[-1]
    stem = stem[:MAX_ROW_ID_CHARS - 12]
    return f"{stem}:{line}"


def hold_back_last_invoice(rows: list[dict | str | None]) -> int:
    """How many trailing lines belong to the chunk's last invoice (left for the next chunk,
    so that an invoice is not split between two chunks), or 0 if that would leave nothing."""
    last = rows[-1].get("InvoiceNo") if rows and isinstance(rows[-1], dict) else None  # type: ignore[union-attr]
    if last is None:
        return 0
    count = 0
    for row in reversed(rows):
        if not isinstance(row, dict) or row.get("InvoiceNo") != last:
            break
        count += 1
    return 0 if count == len(rows) else count


def validate_chunk(files: Files, state: dict) -> None:
    """Read, check and stage the next chunk of the file; updates ``state``."""
    s = files.s
    offset = state["offset"]
    if state["size"] == 0:
        raise FileRefused("the file is empty (no header line)")
    answer = client("s3").get_object(Bucket=s.bucket, Key=files.incoming,
                                     Range=f"bytes={offset}-{offset + s.chunk_bytes - 1}")
    data = answer["Body"].read()
    at_end = offset + len(data) >= state["size"]
    kind = state["kind"]
    if kind == "csv" and state.get("header") is None:
        state["header"], used = read_header(data, at_end, files.name)
        state["offset"] = offset + used
        _finish_validation(state)
        return
    lines = split_lines(data, at_end, quoted=kind == "csv")
    if not lines and not at_end:
        raise FileRefused(f"line {state['line'] + 1} is longer than {s.chunk_bytes} bytes")
    rows = parse_lines([line for line, _ in lines], kind, state.get("header"))
    if not at_end:
        held = hold_back_last_invoice(rows)
        if held:
            rows, lines = rows[:-held], lines[:-held]
    good = []
    for row in rows:
        state["line"] += 1
        if row is None:
            continue  # a blank line
        clean, reason = (None, row) if isinstance(row, str) else validate_row(
            row, default_row_id(files.name, state["line"]))
        if clean is None:
            state["rejected"] += 1
            if len(state["errors"]) < MAX_ERRORS_LISTED:
                row_id = row.get("RowId") if isinstance(row, dict) else None
                state["errors"].append({"line": state["line"], "RowId": row_id, "reason": reason})
        else:
            good.append(clean)
    if good and not state["rejected"]:  # once a row is bad nothing will be loaded: stop staging
        key = files.chunk(state["chunks"])
        client("s3").put_object(Bucket=s.bucket, Key=key, Body=b"".join(encode_row(row) for row in good))
        with _staged_lock:
            _staged[key] = good
            while len(_staged) > STAGED_KEPT:
                del _staged[next(iter(_staged))]
        state["chunks"] += 1
        state["rows"] += len(good)
    state["offset"] = offset + sum(size for _, size in lines)
    _finish_validation(state)


def _finish_validation(state: dict) -> None:
    if state["offset"] >= state["size"]:
        state["phase"] = "refused" if state["rejected"] else "loading"


# ---------------------------------------------------------------------------
# Step 2: load one staged chunk
# ---------------------------------------------------------------------------


def load_chunk(files: Files, number: int) -> int:
    """Write one staged chunk to DynamoDB and merge it into the warehouse; returns its rows.

    The two stores are written at the same time: the merge runs on the cluster while this
    function sends the items to DynamoDB.
    """
    s = files.s
    key = files.chunk(number)
    data, dynamodb = client("redshift-data"), client("dynamodb")  # created here, used by both threads
    with ThreadPoolExecutor(max_workers=1) as pool:
        merged = pool.submit(merge_into_warehouse, s, f"s3://{s.bucket}/{key}", data)
        with _staged_lock:
            rows = _staged.pop(key, None)
        if rows is None:  # staged by an earlier run
            body = client("s3").get_object(Bucket=s.bucket, Key=key)["Body"].read().decode("utf-8")
            rows = [json.loads(line, parse_float=Decimal) for line in body.splitlines() if line]
            for row in rows:
                row["UnitPrice"] = Decimal(row["UnitPrice"])
        invoices = invoice_items(rows)
        for table, items in ((s.invoices_table, invoices), (s.customers_table, customer_items(invoices))):
            _, not_written = write_items(dynamodb, table, items)
            if not_written:
                raise RuntimeError(f"{len(not_written)} items not written to {table}: the next run retries")
        merged.result()  # raises what the merge raised
    return len(rows)


def merge_sql(s: Settings, source_url: str) -> list[str]:
    """Redshift's staging-table merge: rows already there (same row_id) are replaced."""
    credentials = f" IAM_ROLE '{s.copy_role_arn}'" if s.copy_role_arn else ""
    table = s.warehouse_table
    return [
        f"CREATE TEMP TABLE batch_stage (LIKE {table})",
        f"COPY batch_stage FROM '{source_url}'{credentials} JSON '{s.jsonpaths}' "
        "TIMEFORMAT 'auto' TRUNCATECOLUMNS BLANKSASNULL EMPTYASNULL",
        f"DELETE FROM {table} USING batch_stage WHERE {table}.row_id = batch_stage.row_id",
        f"INSERT INTO {table} SELECT * FROM batch_stage",
        "DROP TABLE batch_stage",
    ]


def merge_into_warehouse(s: Settings, source_url: str, data: Any) -> None:
    """Run the merge as one transaction (BatchExecuteStatement) and wait for it."""
    statement = data.batch_execute_statement(ClusterIdentifier=s.cluster_id, Database=s.database,
                                             DbUser=s.db_user, Sqls=merge_sql(s, source_url))
    deadline, delay = time.monotonic() + STATEMENT_TIMEOUT, 0.05
    while True:
        described = data.describe_statement(Id=statement["Id"])
        if described["Status"] == "FINISHED":
            return
        if described["Status"] in ("FAILED", "ABORTED"):
            raise RuntimeError(f"warehouse merge {described['Status']}: {described.get('Error')}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"warehouse merge still {described['Status']} after {STATEMENT_TIMEOUT} s")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


# ---------------------------------------------------------------------------
# One file, one run
# ---------------------------------------------------------------------------


def new_state(name: str, etag: str, size: int) -> dict:
    return {"file": name, "etag": etag, "size": size, "kind": file_kind(name), "phase": "validating",
            "offset": 0, "line": 0, "header": None, "chunks": 0, "rows": 0, "rejected": 0,
            "errors": [], "loaded_chunks": 0, "invocations": 0, "started": _now(),
            "seconds": {"validating": 0.0, "loading": 0.0}}


class Budget:
    """What one run may still do: time (the function's timeout) and, optionally, chunks."""

    def __init__(self, time_left_ms, max_chunks: int | None) -> None:
        self.time_left_ms = time_left_ms
        self.chunks_left = max_chunks
        self.slowest = 0.0  # seconds taken by the slowest chunk so far
        self.lock = threading.Lock()  # files are processed by several threads

    def allows_another_chunk(self) -> bool:
        """True (and one chunk counted) if there is room for one more chunk."""
        with self.lock:
            if self.chunks_left is not None:
                if self.chunks_left <= 0:
                    return False
            if self.time_left_ms() < max(SAFETY_MS, 2000 * self.slowest):
                return False
            if self.chunks_left is not None:
                self.chunks_left -= 1
            return True

    def exhausted(self) -> bool:
        """No room for another chunk (nothing is counted)."""
        with self.lock:
            return ((self.chunks_left is not None and self.chunks_left <= 0)
                    or self.time_left_ms() < max(SAFETY_MS, 2000 * self.slowest))

    def spent(self, seconds: float) -> None:
        with self.lock:
            self.slowest = max(self.slowest, seconds)


def process_file(files: Files, etag: str, size: int, budget: Budget) -> dict:
    """Advance one file as far as the budget allows; returns its state (``phase`` says where it is)."""
    state = files.get_json(files.state)
    if state is None or state.get("etag") != etag:  # new, or replaced by a different file
        state = new_state(files.name, etag, size)
    state["invocations"] += 1
    try:
        if state["kind"] is None:
            raise FileRefused(f"{files.name}: not a .csv or .jsonl file")
        while state["phase"] in ("validating", "loading") and budget.allows_another_chunk():
            started, before = time.monotonic(), (state["phase"], state["offset"], state["loaded_chunks"])
            if state["phase"] == "validating":
                validate_chunk(files, state)
                if (state["phase"], state["offset"], state["loaded_chunks"]) == before:
                    raise FileRefused(f"cannot read past byte {state['offset']}")
            elif state["loaded_chunks"] < state["chunks"]:
                load_chunk(files, state["loaded_chunks"])
                state["loaded_chunks"] += 1
            if state["phase"] == "loading" and state["loaded_chunks"] == state["chunks"]:
                state["phase"] = "done"
            took = time.monotonic() - started
            state["seconds"][before[0]] = round(state["seconds"][before[0]] + took, 3)
            budget.spent(took)
            files.put_json(files.state, state)  # the checkpoint
    except FileRefused as exc:
        state["phase"], state["message"] = "refused", str(exc)
    if state["phase"] == "done":
        report = {key: state[key] for key in ("file", "rows", "chunks", "invocations", "seconds", "started")}
        files.put_json(f"{files.processed}.report.json", {**report, "finished": _now()})
        files.move(files.processed)
    elif state["phase"] == "refused":
        files.put_json(f"{files.failed}.errors.json", {
            "file": files.name, "loaded": 0,
            "message": state.get("message") or f"{state['rejected']} bad rows: nothing was loaded",
            "rows_read": state["line"], "rejected": state["rejected"], "errors": state["errors"],
            "errors_listed": len(state["errors"]), "finished": _now()})
        files.move(files.failed)
    return state


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def lambda_handler(event: dict, context: Any) -> dict:
    """Load what waits in incoming/ until time runs short; the next run carries on."""
    settings = load_settings()
    budget = Budget(getattr(context, "get_remaining_time_in_millis", lambda: 900_000),
                    settings.max_chunks_per_run)

    def one(name: str, etag: str, size: int) -> dict | None:
        if budget.exhausted():
            return None
        state = process_file(Files(settings, name), etag, size, budget)
        return {"file": name, "phase": state["phase"], "rows": state["rows"], "rejected": state["rejected"]}

    # Two files at a time: while one waits for DynamoDB or the warehouse, the other is read.
    with ThreadPoolExecutor(max_workers=FILES_AT_ONCE) as pool:
        outcome = [done for done in pool.map(lambda f: one(*f), incoming_files(settings)) if done]
    waiting = len(incoming_files(settings))
    answer = {"files": outcome, "waiting": waiting, "scheduled": (event or {}).get("time")}
    logger.info(json.dumps({"requestId": getattr(context, "aws_request_id", None), **answer}))
    return answer
