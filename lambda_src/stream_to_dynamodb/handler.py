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

import decimal
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from shared.aws import client
from shared.invoice_items import (
    CUSTOMER_KEY, INVOICE_KEY, MAX_KEY_CHARS, MAX_ROW_CHARS, customer_items, invoice_items, write_items,
)
from shared.kinesis_batch import batch_response, record_rows, sequence
from shared.rows import FIELDS, PoisonRecord  # noqa: F401
from shared.settings import read_settings

logger = logging.getLogger("stream_to_dynamodb")  # INFO: our lines reach the log, boto3's chatter does not
logger.setLevel(logging.INFO)


@dataclass(frozen=True)
class Settings:
    invoices_table: str
    customers_table: str


def decode_rows(record: dict) -> list[dict]:
    """The rows of a Kinesis record; PoisonRecord if its data cannot be read.  One bad row
    must not make a whole BatchWriteItem call fail, hence the limits on sizes."""
    return record_rows(record, max_chars=MAX_ROW_CHARS, max_key_chars=MAX_KEY_CHARS)


def lambda_handler(event: dict, context: Any) -> dict:
    """Write the batch's invoices and customers; report the records not fully written."""
    started = time.monotonic()
    settings = read_settings(Settings)
    tables = {INVOICE_KEY: settings.invoices_table, CUSTOMER_KEY: settings.customers_table}
    records = event.get("Records") or []
    failed: set[str] = set()
    # Per table: {(partition key, sort key): (item, sequence numbers of its records)}.  A
    # key seen twice (a record replayed within the batch) is written once, the last item
    # winning (they are identical): BatchWriteItem refuses duplicate keys in one call.
    pending: dict[tuple, dict[tuple, tuple[dict, set[str]]]] = {key: {} for key in tables}
    rows = 0
    for record in records:
        seq = sequence(record)
        try:  # 1. parse and validate the record
            rows_of_record = decode_rows(record)
            invoices = invoice_items(rows_of_record)
        except (PoisonRecord, decimal.DecimalException) as exc:  # Inexact: see EXACT
            logger.warning(json.dumps({"poison": seq, "reason": f"{type(exc).__name__}: {exc}"[:200]}))
            failed.add(seq)
            continue
        rows += len(rows_of_record)
        for key, items in ((INVOICE_KEY, invoices), (CUSTOMER_KEY, customer_items(invoices))):
            for item in items:
                item_key = (item[key[0]]["S"], item[key[1]]["S"])
                _, seqs = pending[key].get(item_key, (None, set()))
                pending[key][item_key] = (item, seqs | {seq})
    written = {}
    for key, table in tables.items():  # 2. act: write the items, table by table
        items = [item for item, _ in pending[key].values()]
        written[table], not_written = 0, []
        if items:
            written[table], not_written = write_items(client("dynamodb"), table, items)
        for item in not_written:
            failed |= pending[key][(item[key[0]]["S"], item[key[1]]["S"])][1]
    logger.info(json.dumps({
        "requestId": getattr(context, "aws_request_id", None), "records": len(records),
        "rows": rows, "items_written": written, "failed_records": len(failed),
        "ms": round((time.monotonic() - started) * 1000, 1)}))
    return batch_response(sorted(failed, key=int))
