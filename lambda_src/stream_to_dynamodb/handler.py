"""Lambda ``stream_to_dynamodb``: Kinesis -> DynamoDB, the tables the API reads.

Each invocation receives a batch of Kinesis records written by ``ingest_api``: a
record's data is JSON Lines, the rows of one invoice.  The rows become items of two
tables, written with BatchWriteItem.  The data model (one item per invoice *part*,
lines keyed by RowId, so a replay writes the same items again) is described and
built in ``lambda_src/shared/invoice_items.py``, shared with ``batch_loader``.

Every write puts a whole item computed from the record alone, so retries and replays
write the same items again.  A record whose data cannot be read, or whose items
DynamoDB still refuses after retries, is reported in ``batchItemFailures`` (the mapping
uses ReportBatchItemFailures) while the other records are still written; Lambda retries
from the first failed record, then sends it to the dead-letter queue.

Environment variables: ``INVOICES_TABLE`` and ``CUSTOMERS_TABLE`` (both required).

Only the standard library and boto3 are used (what the Lambda Python runtime provides).
Locally the runtime sets ``AWS_ENDPOINT_URL``, which boto3 honours: no endpoint here.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import json
import logging
import os
import time
from decimal import Decimal
from typing import Any

import boto3
from botocore.config import Config

# A named logger at INFO: our lines reach the function's log, boto3's chatter (WARNING
# and up only, the root logger's level) does not.
logger = logging.getLogger("stream_to_dynamodb")
logger.setLevel(logging.INFO)

# The data model and the writing of items are shared with batch_loader.
from shared.invoice_items import (  # noqa: E402
    CUSTOMER_KEY, INVOICE_KEY, MAX_KEY_CHARS, MAX_ROW_CHARS, customer_items, invoice_items, write_items,
)

FIELDS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
          "UnitPrice", "CustomerID", "Country", "RowId")
TEXT_FIELDS = ("InvoiceNo", "StockCode", "InvoiceDate", "Country", "RowId")  # non-empty strings
OPTIONAL_FIELDS = ("Description", "CustomerID")  # strings or null

_dynamodb = None  # the only module-level state: the client, reused while the container is warm


def dynamodb_client():
    """The DynamoDB client, created on the first invocation of a container and then reused."""
    global _dynamodb
    if _dynamodb is None:
        # No endpoint_url: boto3 reads AWS_ENDPOINT_URL when it is set (local runs).
        _dynamodb = boto3.client("dynamodb", config=Config(connect_timeout=5, read_timeout=30,
                                                           retries={"mode": "standard"}))
    return _dynamodb


class PoisonRecord(ValueError):
    """A record whose data is not JSON Lines of valid rows: retrying will not help."""


def check_row(line: str) -> dict:
    """One line parsed as a row (UnitPrice as an exact Decimal); PoisonRecord if it is not one."""
    if len(line) > MAX_ROW_CHARS:
        raise PoisonRecord(f"row longer than {MAX_ROW_CHARS} characters")
    try:
        row = json.loads(line, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested too deep
        raise PoisonRecord(f"line is not JSON: {exc}") from None
    if not isinstance(row, dict):
        raise PoisonRecord("line is not a JSON object")
    missing = [name for name in FIELDS if name not in row]
    if missing:
        raise PoisonRecord(f"row has no {', '.join(missing)}")
    if not all(isinstance(row[name], str) and row[name] for name in TEXT_FIELDS):
        raise PoisonRecord("InvoiceNo, StockCode, InvoiceDate, Country and RowId must be strings")
    if any(row[name] is not None and not isinstance(row[name], str) for name in OPTIONAL_FIELDS):
        raise PoisonRecord("Description and CustomerID must be strings or null")
    if type(row["Quantity"]) is not int or type(row["UnitPrice"]) not in (int, Decimal):
        raise PoisonRecord("Quantity must be an integer and UnitPrice a number")
    if any(len(row[name] or "") > MAX_KEY_CHARS for name in ("InvoiceNo", "RowId", "CustomerID")):
        raise PoisonRecord(f"InvoiceNo, RowId or CustomerID over {MAX_KEY_CHARS} characters")
    row["UnitPrice"] = Decimal(row["UnitPrice"])  # 3 -> Decimal("3")
    return row


def decode_rows(record: dict) -> list[dict]:
    """The rows of a Kinesis record; PoisonRecord if its data cannot be read."""
    try:
        text = base64.b64decode(record["kinesis"]["data"], validate=True).decode("utf-8")
    except (KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise PoisonRecord(f"unreadable data: {type(exc).__name__}") from None
    # Split on "\n" only (not splitlines): a Description may hold U+2028 and the like.
    return [check_row(line) for line in text.removesuffix("\n").split("\n")]



def lambda_handler(event: dict, context: Any) -> dict:
    """Write the batch's invoices and customers; report the records not fully written."""
    started = time.monotonic()
    tables = {INVOICE_KEY: os.environ.get("INVOICES_TABLE"),
              CUSTOMER_KEY: os.environ.get("CUSTOMERS_TABLE")}
    if not all(tables.values()):
        raise RuntimeError("function misconfigured: set INVOICES_TABLE and CUSTOMERS_TABLE")
    records = event.get("Records") or []
    failed: set[str] = set()
    # Per table: {(partition key, sort key): (item, sequence numbers of its records)}.  A
    # key seen twice (a record replayed within the batch) is written once, the last item
    # winning (they are identical): BatchWriteItem refuses duplicate keys in one call.
    pending: dict[tuple, dict[tuple, tuple[dict, set[str]]]] = {key: {} for key in tables}
    rows = 0
    for record in records:
        seq = record["kinesis"]["sequenceNumber"]
        try:
            record_rows = decode_rows(record)
            invoices = invoice_items(record_rows)
        except (PoisonRecord, decimal.DecimalException) as exc:  # Inexact: see EXACT
            logger.warning(json.dumps({"poison": seq, "reason": f"{type(exc).__name__}: {exc}"[:200]}))
            failed.add(seq)
            continue
        rows += len(record_rows)
        for key, items in ((INVOICE_KEY, invoices), (CUSTOMER_KEY, customer_items(invoices))):
            for item in items:
                item_key = (item[key[0]]["S"], item[key[1]]["S"])
                _, seqs = pending[key].get(item_key, (None, set()))
                pending[key][item_key] = (item, seqs | {seq})
    written = {}
    for key, table in tables.items():
        items = [item for item, _ in pending[key].values()]
        written[table], not_written = 0, []
        if items:
            written[table], not_written = write_items(dynamodb_client(), table, items)
        for item in not_written:
            failed |= pending[key][(item[key[0]]["S"], item[key[1]]["S"])][1]
    logger.info(json.dumps({
        "requestId": getattr(context, "aws_request_id", None), "records": len(records),
        "rows": rows, "items_written": written, "failed_records": len(failed),
        "ms": round((time.monotonic() - started) * 1000, 1)}))
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in sorted(failed, key=int)]}
