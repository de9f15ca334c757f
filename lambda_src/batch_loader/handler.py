"""Lambda ``batch_loader``: bulk files in S3 -> DynamoDB and the warehouse, on a schedule.

An EventBridge rule invokes this function on a schedule (its event does not matter).  A
run loads the files waiting under ``s3://$BUCKET/batch/incoming/``: CSV in the Online
Retail layout (UTF-8 or ISO-8859-1, RowId optional) or JSON Lines (the ingest API's
fields).  A file is loaded whole or not at all:

1. **Validate.**  Read the file in chunks (ranged GETs of ``CHUNK_BYTES``, cut at a line
   end and an invoice boundary), check every row as the ingest API does
   (``shared/rows.py``), stage the valid rows under ``batch/staging/<file>/``.  One bad
   row and nothing is loaded: the file moves to ``batch/failed/`` with
   ``<file>.errors.json`` (line number, RowId, reason of each bad row).
2. **Load.**  Write each staged chunk to the Invoices and Customers tables (the stream
   path's items, ``shared/invoice_items.py``) and merge it into the warehouse in one
   transaction (``shared/warehouse_merge.py``: COPY into a temporary table, DELETE the
   same row_ids, INSERT).  Loading a chunk twice changes nothing.
3. **Finish.**  The file moves to ``batch/processed/`` with ``<file>.report.json``.

Each step is checkpointed in ``batch/state/<file>.json``; a run stops before its time
runs out and the next one carries on, so a crash redoes at most one chunk.  Rows without
a RowId get ``<file name>:<line number>``: a rerun never adds rows.  Runs take turns
through a lease in S3 (``shared/lease.py``).  Nothing is kept in the module between
invocations (but the cached clients); only the standard library and boto3.

Environment variables (``Settings``): ``BUCKET``, ``INVOICES_TABLE``, ``CUSTOMERS_TABLE``,
``CLUSTER_ID``, ``DATABASE``, ``DB_USER``, ``WAREHOUSE_TABLE``, ``JSONPATHS``; optional
``COPY_ROLE_ARN``, ``CHUNK_BYTES`` (8 MiB), ``MAX_CHUNKS_PER_RUN``, ``PREFIX`` (``batch/``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from shared.aws import client
from shared.bulk_files import (  # noqa: F401 - read_header, split_lines ... are used by the tests
    Budget, FileRefused, Files, default_row_id, file_kind, hold_back_last_invoice, incoming_files,
    new_state, note_bad_row, parse_lines, read_header, side_by_side, split_lines,
)
from shared import lease
from shared.invoice_items import customer_items, invoice_items, write_items
from shared.rows import encode_row, validate_row
from shared.settings import read_settings
from shared.warehouse_merge import merge_sql, merging  # noqa: F401 - merge_sql: ecomlib.pipelines.batch

logger = logging.getLogger("batch_loader")
logger.setLevel(logging.INFO)

FILES_AT_ONCE = 4  # files loaded side by side by one run (each file by one thread: while one waits for
# DynamoDB or the warehouse, the others validate or write; 41.7 s -> 32.0 s for the 13 monthly files)
STAGED_KEPT = 4  # staged chunks (of up to CHUNK_BYTES each) a run keeps in memory to load them


@dataclass(frozen=True)
class Settings:
    bucket: str
    invoices_table: str
    customers_table: str
    cluster_id: str
    database: str
    db_user: str  # the Redshift Data API sign-in
    warehouse_table: str
    jsonpaths: str  # s3:// URL of the COPY's jsonpaths file
    copy_role_arn: str | None = None  # the IAM role the cluster reads S3 with
    chunk_bytes: int = 8 * 1024 * 1024
    prefix: str = "batch/"
    max_chunks_per_run: int | None = None  # None: as many as time allows


def load_settings(env: dict[str, str] | None = None) -> Settings:
    return read_settings(Settings, env)


# ---- Step 1: validate and stage one chunk -------------------------------------------------------


def validate_chunk(files: Files, state: dict) -> tuple[int, list[dict]] | None:
    """Read, check and stage the next chunk of the file; updates ``state``.  Returns the
    staged chunk's number and rows, or None when nothing was staged."""
    rows, size = files.next_rows(state)
    good = []
    for row in rows:
        state["line"] += 1
        if row is None:
            continue  # a blank line
        clean, reason = (None, row) if isinstance(row, str) else validate_row(
            row, default_row_id(files.name, state["line"]))
        if clean is not None:
            good.append(clean)
        else:
            note_bad_row(state, row, reason)
    staged = None
    if good and not state["rejected"]:  # once a row is bad nothing will be loaded: stop staging
        client("s3").put_object(Bucket=files.s.bucket, Key=files.chunk(state["chunks"]),
                                Body=b"".join(encode_row(row) for row in good))
        staged = (state["chunks"], good)
        state["chunks"] += 1
        state["rows"] += len(good)
    state["offset"] += size
    if state["offset"] >= state["size"]:
        state["phase"] = "refused" if state["rejected"] else "loading"
    return staged


# ---- Step 2: load one staged chunk into DynamoDB and the warehouse -------------------------------


def load_chunk(files: Files, number: int, rows: list[dict] | None = None) -> int:
    """Write one staged chunk to DynamoDB and merge it into the warehouse; returns its rows.
    ``rows`` are the chunk's rows if this run staged it, else they are read back from S3.
    The two stores are written at the same time: the cluster merges while the items go out."""
    s = files.s
    with merging(s, f"s3://{s.bucket}/{files.chunk(number)}"):
        rows = files.staged_rows(number) if rows is None else rows
        invoices = invoice_items(rows)
        for table, items in ((s.invoices_table, invoices), (s.customers_table, customer_items(invoices))):
            _, not_written = write_items(client("dynamodb"), table, items)
            if not_written:
                raise RuntimeError(f"{len(not_written)} items not written to {table}: the next run retries")
    return len(rows)


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
            with budget.timing(state):
                if state["phase"] == "validating":
                    chunk = validate_chunk(files, state)
                    if chunk:
                        staged[chunk[0]] = chunk[1]
                        if len(staged) > STAGED_KEPT:
                            del staged[min(staged)]
                elif state["loaded_chunks"] < state["chunks"]:
                    load_chunk(files, state["loaded_chunks"], staged.pop(state["loaded_chunks"], None))
                    state["loaded_chunks"] += 1
                if state["phase"] == "loading" and state["loaded_chunks"] == state["chunks"]:
                    state["phase"] = "done"
            files.put_json(files.state, state)  # the checkpoint
    except FileRefused as exc:
        state["phase"], state["message"] = "refused", str(exc)
    files.finish(state)
    return state


def lambda_handler(event: dict, context: Any) -> dict:
    """Load what waits in incoming/ until time runs short; the next run carries on."""
    settings = load_settings()
    remaining_ms = getattr(context, "get_remaining_time_in_millis", lambda: 900_000)
    request_id = getattr(context, "aws_request_id", None) or "unknown"
    key = lease.lease_key(settings.prefix)
    with lease.held(settings.bucket, key, request_id, remaining_ms() / 1000) as ours:
        if ours:
            answer = load_waiting(settings, Budget(remaining_ms, settings.max_chunks_per_run))
        else:
            answer = {"files": [], "skipped": f"another run holds the lease ({lease.holder(settings.bucket, key)})"}
    answer["scheduled"] = (event or {}).get("time")
    logger.info(json.dumps({"requestId": request_id, **answer}))
    return answer


def load_waiting(settings: Settings, budget: Budget) -> dict:
    """Load the files waiting in incoming/, a few side by side, as far as the budget allows."""

    def one(name: str, etag: str, size: int) -> dict | None:
        if budget.exhausted():
            return None
        state = process_file(Files(settings, name), etag, size, budget)
        return {"file": name, "phase": state["phase"], "rows": state["rows"], "rejected": state["rejected"]}

    return {"files": side_by_side(settings, one, FILES_AT_ONCE), "waiting": len(incoming_files(settings))}
