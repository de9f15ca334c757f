"""The DynamoDB data model of invoices and customers: rows in, items out.

Shared by the functions that write the tables (``stream_to_dynamodb`` from the stream,
``batch_loader`` from bulk files), so both paths write the very same items for the same
rows, and a row loaded twice (a replay, a rerun) overwrites its item with itself.
``ecomlib.deploy.package`` copies this ``shared`` folder into each function's package.

Invoices table, key ``InvoiceNo`` (S) + ``Part`` (S): one item per *part*, the lines of
  one invoice in one record (usually the whole invoice); ``Part`` is the RowId of the
  part's first line and a short hash of all its RowIds ("12#a1b2c3d4"), so the same
  lines always make the same key, and different lines never overwrite each other (a
  client that re-sends only some of an invoice's rows adds a part; it does not shrink
  one).  Attributes: InvoiceNo, Part, InvoiceDate (the part's earliest),
  CustomerID (absent for guests), Country, IsCancellation (BOOL: InvoiceNo starts with
  "C"), LineCount (N), Amount (N = the exact sum of the line totals), and Lines: one
  string holding a JSON object RowId -> {"StockCode", "Description" (null when none),
  "Quantity", "UnitPrice", "LineTotal"}, money as decimal text ("2.55", "15.30").

  Why one JSON string and not a nested DynamoDB map: nothing ever filters on a line's
  fields, we only read whole invoices; a string costs the same storage, is far lighter
  to send and to parse (a map of maps carries a type tag on every value), and keeps
  each item one small, flat record.

  Why Lines is keyed by RowId, not by StockCode: the real data has 10,684 lines
  repeating an (InvoiceNo, StockCode) pair and 5,268 exact duplicate rows; a map keyed
  by StockCode silently keeps only one of them.  RowId keeps every line, and a replayed
  record writes the same key with the same value.  Readers (the GET API) merge an
  invoice's parts and count each RowId once.  A part bigger than ~350 KB (DynamoDB's
  item limit is 400 KB) is split into several parts, each named after its own lines.

Customers table, key ``CustomerID`` (S) + ``InvoicePart`` (S) = "{InvoiceNo}#{Part}":
  one item per invoice part that has a customer.  Attributes: CustomerID, InvoicePart,
  InvoiceNo, InvoiceDate, Country, IsCancellation, Amount, and LineTotals: a JSON object
  RowId -> line total as decimal text.
  Rows without CustomerID (about 25 % of the real data: guest checkouts) are written to
  the Invoices table only, on purpose: there is no customer to file them under.

Only the standard library and boto3 (what the Lambda Python runtime provides).
"""

from __future__ import annotations

import decimal
import hashlib
import json
import logging
from decimal import Decimal
from typing import Any, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from shared.aws import FIRST_DELAY, retries

logger = logging.getLogger("invoice_items")
logger.setLevel(logging.INFO)

BATCH_MAX_ITEMS = 25  # BatchWriteItem takes at most 25 puts (and 16 MB: 25 x 350 KB fits)
MAX_ATTEMPTS = 6  # first call + 5 retries of the UnprocessedItems (throttled writes): 1.55 s of backoff
MAX_PART_BYTES = 350_000  # split an invoice part above this: DynamoDB's item limit is 400 KB
# One bad row must not make a whole BatchWriteItem call fail (25 items of other records):
MAX_ROW_CHARS = 10_000  # a real row is ~200 characters; a bigger one could not fit an item
MAX_KEY_CHARS = 100  # InvoiceNo, RowId, CustomerID are keys (a sort key holds 1,024 bytes)
ITEM_OVERHEAD_BYTES = 4 * MAX_ROW_CHARS + 1_000  # the attributes besides Lines (from one row)
# Money: 38 significant digits as in DynamoDB, and an error (Inexact) rather than rounding.
EXACT = decimal.Context(prec=38, Emax=125, Emin=-130,
                        traps=[decimal.Inexact, decimal.Overflow, decimal.InvalidOperation])
INVOICE_KEY = ("InvoiceNo", "Part")
CUSTOMER_KEY = ("CustomerID", "InvoicePart")


def line_total(quantity: int, unit_price: Decimal) -> Decimal:
    """Quantity x UnitPrice, exactly: 6 x 2.55 = 15.30 (with floats: 15.299999999999999)."""
    return EXACT.multiply(Decimal(quantity), unit_price)


# Items are written in DynamoDB's typed wire format ({"S": "..."}, {"N": "15.30"},
# {"BOOL": true}) by hand rather than with boto3's TypeSerializer: learners see exactly
# what is sent, and numbers visibly travel as exact decimal text, never floats.
def number(value: Decimal | int) -> dict:
    return {"N": str(value)}


CENTS = Decimal("0.01")


def money(value: Decimal) -> str:
    """Exact money as canonical text: at least 2 decimals, no other trailing zeros.

    2.55, 2.550 and 2.5500 all give "2.55"; 0 gives "0.00"; 0.001 stays "0.001".  The
    same amount is written the same way whichever path (API or bulk file) it came by.
    """
    if value.as_tuple().exponent == -2:  # most amounts (2.55, 15.30): already canonical
        return format(value + 0, "f")  # "+ 0" turns -0.00 into 0.00
    value = value.normalize() + 0  # "+ 0" turns -0 into 0
    if value.as_tuple().exponent > -2:
        value = value.quantize(CENTS)
    return format(value, "f")


def compact(value: Any) -> str:
    """JSON text without spaces (what Lines and LineTotals hold)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_text = json.encoder.encode_basestring  # str -> JSON string literal, non-ASCII kept (what compact writes)


def line_entry(row: dict) -> str:
    """The row's entry in a Lines object, as compact JSON text (what :func:`compact` writes,
    put together directly: this runs for every row):
    '"RowId":{"StockCode":..,"Description":..,"Quantity":..,"UnitPrice":"2.55","LineTotal":"15.30"}'."""
    description = row["Description"]
    return (f'{_text(row["RowId"])}:{{"StockCode":{_text(row["StockCode"])},'
            f'"Description":{"null" if description is None else _text(description)},'
            f'"Quantity":{int(row["Quantity"])},"UnitPrice":"{money(row["UnitPrice"])}",'
            f'"LineTotal":"{money(line_total(row["Quantity"], row["UnitPrice"]))}"}}')


def split_part(rows: list[dict], entries: list[str] | None = None) -> list[list[int]]:
    """The positions of one invoice's rows in parts small enough for one item (usually a
    single part).  A line costs the UTF-8 size of its entry.  Same rows -> same parts."""
    entries = entries if entries is not None else [line_entry(row) for row in rows]
    parts: list[list[int]] = [[]]
    size = ITEM_OVERHEAD_BYTES
    for position, entry in enumerate(entries):
        cost = len(entry.encode()) + 1
        if parts[-1] and size + cost > MAX_PART_BYTES:
            parts.append([])
            size = ITEM_OVERHEAD_BYTES
        parts[-1].append(position)
        size += cost
    return parts


def part_key(part: list[dict]) -> str:
    """The sort key of a part: its first RowId and a hash of all its RowIds."""
    digest = hashlib.sha1("\n".join(row["RowId"] for row in part).encode()).hexdigest()[:8]
    return f'{part[0]["RowId"]}#{digest}'


def invoice_items(rows: list[dict]) -> list[dict]:
    """Items of the Invoices table for the rows of one record (grouped by InvoiceNo).

    A RowId seen twice (a row resent by a client) counts once.  InvoiceDate is the part's
    earliest: a few real invoices have lines a minute apart.  Raises decimal.Inexact if
    an amount would need more than 38 digits.
    """
    invoices: dict[str, dict[str, dict]] = {}  # InvoiceNo -> RowId -> row, in first-seen order
    for row in rows:
        invoices.setdefault(row["InvoiceNo"], {})[row["RowId"]] = row
    items = []
    for invoice_no, by_row_id in invoices.items():
        invoice_rows = list(by_row_id.values())
        entries = [line_entry(row) for row in invoice_rows]
        for positions in split_part(invoice_rows, entries):
            part = [invoice_rows[i] for i in positions]
            first, amount = part[0], Decimal(0)
            for row in part:
                amount = EXACT.add(amount, line_total(row["Quantity"], row["UnitPrice"]))
            item = {"InvoiceNo": {"S": invoice_no}, "Part": {"S": part_key(part)},
                    "InvoiceDate": {"S": min(row["InvoiceDate"] for row in part)}}
            if first["CustomerID"]:
                item["CustomerID"] = {"S": first["CustomerID"]}
            item["Country"] = {"S": first["Country"]}
            item["IsCancellation"] = {"BOOL": invoice_no.startswith("C")}
            item["Lines"] = {"S": "{" + ",".join(entries[i] for i in positions) + "}"}
            item["LineCount"] = number(len(part))
            item["Amount"] = {"N": money(amount)}
            items.append(item)
    return items


def customer_items(invoice_items: list[dict]) -> list[dict]:
    """Items of the Customers table: one per invoice item that has a CustomerID."""
    return [{
        "CustomerID": invoice["CustomerID"],
        "InvoicePart": {"S": f'{invoice["InvoiceNo"]["S"]}#{invoice["Part"]["S"]}'},
        "InvoiceNo": invoice["InvoiceNo"],
        "InvoiceDate": invoice["InvoiceDate"],
        "Country": invoice["Country"],
        "IsCancellation": invoice["IsCancellation"],
        "LineTotals": {"S": compact({row_id: line["LineTotal"]
                                     for row_id, line in json.loads(invoice["Lines"]["S"]).items()})},
        "Amount": invoice["Amount"],
    } for invoice in invoice_items if "CustomerID" in invoice]  # guests: Invoices table only


def chunks(items: list, size: int = BATCH_MAX_ITEMS) -> Iterator[list]:
    """items in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def write_items(client: Any, table: str, items: list[dict]) -> tuple[int, list[dict]]:
    """Put items (with distinct keys) by BatchWriteItem: (number written, items not written).

    UnprocessedItems (throttling) are sent again after 0.05 s, 0.1 s, ... up to
    MAX_ATTEMPTS calls.  A call refused as a whole (no such table, no permission, ...)
    is logged and all its items count as not written.
    """
    written, failed = 0, []
    for chunk in chunks(items, BATCH_MAX_ITEMS):
        pending = chunk
        for _ in retries(MAX_ATTEMPTS, FIRST_DELAY):
            try:
                answer = client.batch_write_item(
                    RequestItems={table: [{"PutRequest": {"Item": item}} for item in pending]})
            except (ClientError, BotoCoreError) as exc:
                code = exc.response["Error"].get("Code") if isinstance(exc, ClientError) else None
                logger.error(json.dumps({"table": table, "items": len(pending),
                                         "error": code or type(exc).__name__}))
                break
            left = answer.get("UnprocessedItems", {}).get(table, [])
            written += len(pending) - len(left)
            pending = [request["PutRequest"]["Item"] for request in left]
            if not pending:
                break
        failed += pending
    return written, failed
