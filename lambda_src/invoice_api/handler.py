"""Lambda ``invoice_api``: API Gateway (REST, proxy integration) -> DynamoDB reads.

Two read-only routes for the dashboard:

- ``GET /invoices?InvoiceNo=536365``   one invoice with its lines.
- ``GET /customers/{CustomerID}``      one customer with the list of their invoices.

The tables are written by another function.  An invoice may be stored as several items
("parts"); a line may appear in two parts when a client re-sent rows grouped differently,
so parts are merged and each line (RowId) is counted once.

Environment variables (both required): ``INVOICES_TABLE`` (key InvoiceNo + Part) and
``CUSTOMERS_TABLE`` (key CustomerID + InvoicePart = "<InvoiceNo>#<Part>").  Reading the
tables (paged Query, stored JSON text) is in ``shared/invoice_reads.py``.  Only the
standard library and boto3 (deploys to AWS unchanged; no endpoint here).

Answers (body always JSON, headers ``Content-Type: application/json`` and
``Access-Control-Allow-Origin: *``; money is exact: Decimal in, plain JSON numbers out):

- 200 invoice  ``{"InvoiceNo", "InvoiceDate", "CustomerID", "Country", "IsCancellation",
  "Lines": [{"RowId", "StockCode", "Description", "Quantity", "UnitPrice", "LineTotal"}],
  "LineCount", "Total"}``
- 200 customer ``{"CustomerID", "Country", "Invoices": [{"InvoiceNo", "InvoiceDate",
  "Amount", "IsCancellation"}], "InvoiceCount", "Total", "FirstPurchase", "LastPurchase"}``
- 400 / 404 ``{"message"}``; 405 the same with header ``Allow: GET``;
  500 ``{"message", "requestId"}`` (never a stack trace: the details go to the log).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.api import ApiError, request_id_of, serve, to_json  # noqa: F401
from shared.aws import client
from shared.invoice_reads import json_object, query_all, row_order  # paged Query, stored JSON, RowId order
from shared.settings import read_settings

logger = logging.getLogger("invoice_api")  # INFO: our lines reach the log, boto3's chatter does not
logger.setLevel(logging.INFO)

INVOICE_ROUTE = "/invoices"
CUSTOMER_ROUTE = "/customers/{CustomerID}"
VALID_ID = re.compile(r"[A-Za-z0-9]{1,20}")  # 536365, C536379, 17850: nothing else reaches DynamoDB
CORS = {"Access-Control-Allow-Origin": "*"}


@dataclass(frozen=True)
class InvoicesTable:  # each route needs only its own table's setting
    invoices_table: str


@dataclass(frozen=True)
class CustomersTable:
    customers_table: str


# ---- 1. parse: which route, which key ------------------------------------------------------


def _valid_id(name: str, value: Any) -> str:
    if not isinstance(value, str) or not VALID_ID.fullmatch(value):
        raise ApiError(400, f"{name} must be 1 to 20 letters or digits, e.g. 536365 or C536379")
    return value


def parse_request(event: dict) -> tuple[str, str]:
    """``(route, key)`` of a GET event, e.g. ``("/invoices", "536365")``; else raises ApiError."""
    route = event.get("resource")
    if route not in (INVOICE_ROUTE, CUSTOMER_ROUTE):
        raise ApiError(404, "no route")
    method = event.get("httpMethod")
    if method != "GET":
        raise ApiError(405, f"method {method or '(none)'} not allowed: use GET", {"Allow": "GET"})
    if route == CUSTOMER_ROUTE:
        return route, _valid_id("CustomerID", (event.get("pathParameters") or {}).get("CustomerID"))
    values = (event.get("multiValueQueryStringParameters") or {}).get("InvoiceNo") or []
    if len(set(values)) > 1:
        raise ApiError(400, "give the query parameter InvoiceNo only once")
    invoice_no = (event.get("queryStringParameters") or {}).get("InvoiceNo")
    if invoice_no is None:
        raise ApiError(400, "missing query parameter InvoiceNo, e.g. /invoices?InvoiceNo=536365")
    return route, _valid_id("InvoiceNo", invoice_no)


# ---- 2. merge an invoice's parts (the items are read page after page by query_all) ------------


def merge_invoice(items: list[dict]) -> dict:
    """One invoice from its parts (non-empty list): each RowId once, lines sorted by RowId."""
    lines: dict[str, dict] = {}
    for item in items:
        for row_id, line in json_object(item.get("Lines")).items():
            lines.setdefault(row_id, line)  # a line stored in two parts counts once
    out = []
    for row_id in row_order(lines):
        line = lines[row_id]
        out.append({"RowId": row_id, "StockCode": line["StockCode"], "Description": line.get("Description"),
                    "Quantity": line["Quantity"], "UnitPrice": Decimal(line["UnitPrice"]),
                    "LineTotal": Decimal(line["LineTotal"])})
    first = items[0]
    return {
        "InvoiceNo": first["InvoiceNo"],
        "InvoiceDate": first["InvoiceDate"],
        "CustomerID": first.get("CustomerID"),
        "Country": first["Country"],
        "IsCancellation": bool(first.get("IsCancellation")),
        "Lines": out,
        "LineCount": len(out),
        "Total": sum((line["LineTotal"] for line in out), Decimal(0)),
    }


def merge_customer(items: list[dict]) -> dict:
    """One customer from their items (non-empty list): parts of an invoice merged, each RowId once."""
    invoices: dict[str, dict] = {}
    for item in items:
        invoice = invoices.setdefault(item["InvoiceNo"], {"item": item, "totals": {}})
        for row_id, total in json_object(item.get("LineTotals")).items():
            invoice["totals"].setdefault(row_id, Decimal(total))
    rows = []
    for number, invoice in invoices.items():
        item = invoice["item"]
        rows.append({"InvoiceNo": number, "InvoiceDate": item["InvoiceDate"],
                     "Amount": sum(invoice["totals"].values(), Decimal(0)),
                     "IsCancellation": bool(item.get("IsCancellation"))})
    rows.sort(key=lambda row: (row["InvoiceDate"], row["InvoiceNo"]))
    purchases = [row["InvoiceDate"] for row in rows if not row["IsCancellation"]]
    latest = invoices[rows[-1]["InvoiceNo"]]["item"]
    return {
        "CustomerID": latest["CustomerID"],
        "Country": latest["Country"],  # the country of the most recent invoice
        "Invoices": rows,
        "InvoiceCount": len(rows),
        "Total": sum((row["Amount"] for row in rows), Decimal(0)),  # cancellations are negative
        "FirstPurchase": min(purchases, default=None),  # cancellations are not purchases
        "LastPurchase": max(purchases, default=None),
    }


# ---- 3. answer ---------------------------------------------------------------------------------


def handle(event: dict, request_id: str, log: dict) -> tuple[int, dict]:
    """GET /invoices?InvoiceNo=... or GET /customers/{CustomerID}: parse -> read -> merge."""
    route, key = parse_request(event)
    log.update(route=route, key=key)
    if route == INVOICE_ROUTE:
        what, key_name, table = "invoice", "InvoiceNo", read_settings(InvoicesTable).invoices_table
    else:
        what, key_name, table = "customer", "CustomerID", read_settings(CustomersTable).customers_table
    items = query_all(client("dynamodb"), table, key_name, key)
    log["items"] = len(items)
    if not items:
        raise ApiError(404, f"{what} {key} not found")
    return 200, merge_invoice(items) if what == "invoice" else merge_customer(items)


def lambda_handler(event: Any, context: Any) -> dict:
    """Lambda entry point: one log line per request, never a stack trace to the client."""
    return serve(event, context, handle, logger, headers=CORS, request_id_in_errors=False)
