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
a RowId get ``<file name>:<line number>``, so rerunning a file never adds rows.  Runs
take turns: a run first takes a lease in S3 (``shared/lease.py``, a conditional write)
and one that finds the lease held ends at once; the next scheduled run carries on.

Environment variables: ``BUCKET``, ``INVOICES_TABLE``, ``CUSTOMERS_TABLE``,
``CLUSTER_ID``, ``DATABASE``, ``DB_USER`` (the Redshift Data API sign-in),
``WAREHOUSE_TABLE``, ``JSONPATHS`` (s3:// URL of the COPY's jsonpaths file); optional
``COPY_ROLE_ARN`` (the IAM role the cluster uses to read S3), ``CHUNK_BYTES`` (default
8 MiB), ``MAX_CHUNKS_PER_RUN`` (default: as many as time allows) and ``PREFIX`` (default
``batch/``).

Nothing is kept in the module between invocations (but the cached clients): the state
of a file lives in S3, and a chunk's rows are handed from validation to loading within
one run only.  Reading files line by line is in ``shared/bulk_files.py``.  Only the
standard library and boto3 are used (what the Lambda Python runtime provides).
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.aws import client, retries
from shared.bulk_files import (  # noqa: F401 - read_header, split_lines ... are used by the tests
    MAX_ERRORS_LISTED, Budget, FileRefused, Files, default_row_id, file_kind, hold_back_last_invoice,
    incoming_files, new_state, parse_lines, read_header, split_lines,
)
from shared import lease
from shared.invoice_items import customer_items, invoice_items, write_items
from shared.rows import encode_row, validate_row
from shared.settings import read_settings

logger = logging.getLogger("batch_loader")
logger.setLevel(logging.INFO)

FILES_AT_ONCE = 2  # files loaded side by side by one run (each file by one thread)
STATEMENT_TIMEOUT = 600  # seconds to wait for the warehouse's merge
STAGED_KEPT = 4  # staged chunks (of up to CHUNK_BYTES each) a run keeps in memory to load them


@dataclass(frozen=True)
class Settings:
    bucket: str
    invoices_table: str
    customers_table: str
    cluster_id: str
    database: str
    db_user: str
    warehouse_table: str
    jsonpaths: str
    copy_role_arn: str | None = None
    chunk_bytes: int = 8 * 1024 * 1024
    prefix: str = "batch/"
    max_chunks_per_run: int | None = None


def load_settings(env: dict[str, str] | None = None) -> Settings:
    return read_settings(Settings, env)


# ---- Step 1: validate and stage one chunk -------------------------------------------------------


def validate_chunk(files: Files, state: dict) -> tuple[int, list[dict]] | None:
    """Read, check and stage the next chunk of the file; updates ``state``.  Returns the
    staged chunk's number and rows, or None when nothing was staged."""
    s, offset, kind = files.s, state["offset"], state["kind"]
    if state["size"] == 0:
        raise FileRefused("the file is empty (no header line)")
    data = client("s3").get_object(Bucket=s.bucket, Key=files.incoming,
                                   Range=f"bytes={offset}-{offset + s.chunk_bytes - 1}")["Body"].read()
    at_end = offset + len(data) >= state["size"]
    staged = None
    if kind == "csv" and state.get("header") is None:
        state["header"], used = read_header(data, at_end, files.name)
        lines = [(b"", used)]
    else:
        lines = split_lines(data, at_end, quoted=kind == "csv")
        if not lines and not at_end:
            raise FileRefused(f"line {state['line'] + 1} is longer than {s.chunk_bytes} bytes")
        rows = parse_lines([line for line, _ in lines], kind, state.get("header"))
        held = 0 if at_end else hold_back_last_invoice(rows)
        rows, lines = rows[:len(rows) - held], lines[:len(lines) - held]
        good = []
        for row in rows:
            state["line"] += 1
            if row is None:
                continue  # a blank line
            clean, reason = (None, row) if isinstance(row, str) else validate_row(
                row, default_row_id(files.name, state["line"]))
            if clean is not None:
                good.append(clean)
                continue
            state["rejected"] += 1
            if len(state["errors"]) < MAX_ERRORS_LISTED:
                row_id = row.get("RowId") if isinstance(row, dict) else None
                state["errors"].append({"line": state["line"], "RowId": row_id, "reason": reason})
        if good and not state["rejected"]:  # once a row is bad nothing will be loaded: stop staging
            client("s3").put_object(Bucket=s.bucket, Key=files.chunk(state["chunks"]),
                                    Body=b"".join(encode_row(row) for row in good))
            staged = (state["chunks"], good)
            state["chunks"] += 1
            state["rows"] += len(good)
    state["offset"] = offset + sum(size for _, size in lines)
    if state["offset"] >= state["size"]:
        state["phase"] = "refused" if state["rejected"] else "loading"
    return staged


# ---- Step 2: load one staged chunk into DynamoDB and the warehouse -------------------------------


def load_chunk(files: Files, number: int, rows: list[dict] | None = None) -> int:
    """Write one staged chunk to DynamoDB and merge it into the warehouse; returns its rows.
    ``rows`` are the chunk's rows if this run staged it, else they are read back from S3.

    The two stores are written at the same time: the merge runs on the cluster while this
    function sends the items to DynamoDB.
    """
    s, key = files.s, files.chunk(number)
    data, dynamodb = client("redshift-data"), client("dynamodb")  # created here, used by both threads
    with ThreadPoolExecutor(max_workers=1) as pool:
        merged = pool.submit(merge_into_warehouse, s, f"s3://{s.bucket}/{key}", data)
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
    deadline = time.monotonic() + STATEMENT_TIMEOUT
    for _ in retries(None, max_delay=2.0):
        described = data.describe_statement(Id=statement["Id"])
        if described["Status"] == "FINISHED":
            return
        if described["Status"] in ("FAILED", "ABORTED"):
            raise RuntimeError(f"warehouse merge {described['Status']}: {described.get('Error')}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"warehouse merge still {described['Status']} after {STATEMENT_TIMEOUT} s")


# ---- One file, one run ---------------------------------------------------------------------------


def process_file(files: Files, etag: str, size: int, budget: Budget) -> dict:
    """Advance one file as far as the budget allows; returns its state (``phase`` says where it is)."""
    state = files.get_json(files.state)
    if state is None or state.get("etag") != etag:  # new, or replaced by a different file
        state = new_state(files.name, etag, size)
    state["invocations"] += 1
    staged: dict[int, list[dict]] = {}  # rows of chunks staged by this run (at most STAGED_KEPT)
    try:
        if state["kind"] is None:
            raise FileRefused(f"{files.name}: not a .csv or .jsonl file")
        while state["phase"] in ("validating", "loading") and budget.allows_another_chunk():
            started, before = time.monotonic(), (state["phase"], state["offset"], state["loaded_chunks"])
            if state["phase"] == "validating":
                chunk = validate_chunk(files, state)
                if chunk:
                    staged[chunk[0]] = chunk[1]
                    if len(staged) > STAGED_KEPT:
                        del staged[min(staged)]
                if (state["phase"], state["offset"], state["loaded_chunks"]) == before:
                    raise FileRefused(f"cannot read past byte {state['offset']}")
            elif state["loaded_chunks"] < state["chunks"]:
                load_chunk(files, state["loaded_chunks"], staged.pop(state["loaded_chunks"], None))
                state["loaded_chunks"] += 1
            if state["phase"] == "loading" and state["loaded_chunks"] == state["chunks"]:
                state["phase"] = "done"
            took = time.monotonic() - started
            state["seconds"][before[0]] = round(state["seconds"][before[0]] + took, 3)
            budget.spent(took)
            files.put_json(files.state, state)  # the checkpoint
    except FileRefused as exc:
        state["phase"], state["message"] = "refused", str(exc)
    files.finish(state)
    return state


def lambda_handler(event: dict, context: Any) -> dict:
    """Load what waits in incoming/ until time runs short; the next run carries on."""
    settings = load_settings()
    remaining_ms = getattr(context, "get_remaining_time_in_millis", lambda: 900_000)
    budget = Budget(remaining_ms, settings.max_chunks_per_run)
    request_id = getattr(context, "aws_request_id", None) or "unknown"
    key = lease.lease_key(settings.prefix)
    if not lease.take(settings.bucket, key, request_id, remaining_ms() / 1000):
        answer = {"files": [], "skipped": f"another run holds the lease ({lease.holder(settings.bucket, key)})",
                  "scheduled": (event or {}).get("time")}
        logger.info(json.dumps({"requestId": request_id, **answer}))
        return answer
    try:
        return load_waiting(settings, budget, event, request_id)
    finally:
        lease.release(settings.bucket, key)


def load_waiting(settings: Settings, budget: Budget, event: dict, request_id: str) -> dict:
    """Load the files waiting in incoming/, as far as the budget allows."""

    def one(name: str, etag: str, size: int) -> dict | None:
        if budget.exhausted():
            return None
        state = process_file(Files(settings, name), etag, size, budget)
        return {"file": name, "phase": state["phase"], "rows": state["rows"], "rejected": state["rejected"]}

    # Two files at a time: while one waits for DynamoDB or the warehouse, the other is read.
    with ThreadPoolExecutor(max_workers=FILES_AT_ONCE) as pool:
        outcome = [done for done in pool.map(lambda f: one(*f), incoming_files(settings)) if done]
    answer = {"files": outcome, "waiting": len(incoming_files(settings)), "scheduled": (event or {}).get("time")}
    logger.info(json.dumps({"requestId": request_id, **answer}))
    return answer
