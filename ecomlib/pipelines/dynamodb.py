"""Pipeline 3, the serving tables: Kinesis -> Lambda (stream_to_dynamodb) -> DynamoDB.

Two tables, one per access pattern:

- Invoices (``InvoiceNo`` + ``Part``): "show me invoice X with its lines".
- Customers (``CustomerID`` + ``InvoicePart``): "show me customer Y's purchases".

Lines are kept in a JSON object keyed by ``RowId``, the line's identity: every line of the source
is kept (repeated stock codes and duplicate rows included) and a replayed batch writes the
same keys with the same values, so it changes nothing.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from decimal import Decimal

from tqdm.std import tqdm  # a text bar: a saved notebook shows its final state, not a widget's 0%

from ecomlib import aws, deploy as dp, registry
from ecomlib.config import resource_name, settings
from ecomlib.pipelines import ingest

PIPELINE = registry.get("dynamodb")
FUNCTION = "stream_to_dynamodb"
MAPPING = PIPELINE.mapping(FUNCTION)


def invoices_table() -> str:
    return resource_name("invoices-table")


def customers_table() -> str:
    return resource_name("customers-table")


def dead_letter_queue() -> str:
    return registry.name(PIPELINE.dead_letter_queue, settings().prefix)


def policy(stream_arn: str, table_arns: list[str], queue_arn: str) -> list[dict]:
    """Read the stream, batch-write to the two tables, report failures."""
    return [
        dp.stream_reader_policy(stream_arn),
        {"Sid": "WriteTheServingTables", "Effect": "Allow", "Action": ["dynamodb:BatchWriteItem"],
         "Resource": table_arns},
        dp.dead_letter_policy(queue_arn),
    ]


def ensure_tables() -> list[str]:
    """Create both tables if needed; returns their ARNs."""
    return [dp.ensure_table(invoices_table(), "InvoiceNo", "Part"),
            dp.ensure_table(customers_table(), "CustomerID", "InvoicePart")]


def deploy(batch_size: int = MAPPING.batch_size, window_seconds: int = MAPPING.window_seconds,
           enabled: bool = True) -> list[str]:
    """Create tables, dead-letter queue, role, function and mapping (``enabled=False``: the
    mapping waits, switched off); returns the table names."""
    stream_arn = ingest.ensure_stream()
    table_arns = ensure_tables()
    queue_arn = dp.ensure_queue(dead_letter_queue())
    role = dp.ensure_role(FUNCTION, policy(stream_arn, table_arns, queue_arn))
    env = {"INVOICES_TABLE": invoices_table(), "CUSTOMERS_TABLE": customers_table()}
    dp.deploy_function(FUNCTION, role, env)
    dp.ensure_stream_mapping(FUNCTION, stream_arn, queue_arn, batch_size=batch_size,
                             window_seconds=window_seconds, bisect=MAPPING.bisect, enabled=enabled)
    return [invoices_table(), customers_table()]


def scan(table: str, attributes: tuple[str, ...] = (), progress: bool = False) -> list[dict]:
    """Every item of a table (low-level typed values); ``attributes``: only these (a
    projection: smaller pages on the wire, though a Scan is billed for every item it reads);
    ``progress``: a bar counting the items read, page by page (a big table takes a while)."""
    ddb = aws.client("dynamodb")
    projection = ({"ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(attributes))),
                   "ExpressionAttributeNames": {f"#a{i}": name for i, name in enumerate(attributes)}}
                  if attributes else {})
    items: list[dict] = []
    with tqdm(unit=" items", desc=f"Scan {table}", disable=not progress, file=sys.stdout) as bar:
        for page in ddb.get_paginator("scan").paginate(TableName=table, **projection):
            items += page["Items"]
            bar.update(len(page["Items"]))
    return items


def count_items(table: str, **scan) -> int:
    """How many items a table holds: a paginated Scan with ``Select="COUNT"``, whose pages send
    back counts, not items (notebook 04 writes it by hand); ``scan``: more Scan arguments (a
    ``FilterExpression``: the items counted are those it keeps). It still reads, and bills,
    every item."""
    pages = aws.client("dynamodb").get_paginator("scan").paginate(TableName=table, Select="COUNT", **scan)
    return sum(page["Count"] for page in pages)


def line_ids(items: list[dict] | None = None) -> Counter:
    """How many times each RowId is stored in the Invoices table (1 when all is well).
    ``items``: Invoices items already read with their ``Lines`` (read once, use twice);
    by default the table is scanned for them."""
    counts: Counter = Counter()
    for item in scan(invoices_table(), ("Lines",)) if items is None else items:
        counts.update(json.loads(item["Lines"]["S"]).keys())
    return counts


def invoice_totals(items: list[dict] | None = None) -> dict[str, Decimal]:
    """Each invoice's total from the Invoices table, counting every RowId once.
    ``items``: Invoices items already read with ``InvoiceNo`` and ``Lines``; by default the
    table is scanned for them."""
    totals: dict[str, dict[str, Decimal]] = {}
    for item in scan(invoices_table(), ("InvoiceNo", "Lines")) if items is None else items:
        lines = totals.setdefault(item["InvoiceNo"]["S"], {})
        for row_id, line in json.loads(item["Lines"]["S"]).items():
            lines[row_id] = Decimal(line["LineTotal"])
    return {invoice: sum(lines.values(), Decimal(0)) for invoice, lines in totals.items()}


def teardown() -> None:
    """Delete the mapping, function, role, queue and both tables."""
    dp.delete_stream_mappings(FUNCTION)
    dp.delete_function(FUNCTION)
    dp.delete_queue(dead_letter_queue())
    dp.delete_table(invoices_table())
    dp.delete_table(customers_table())
