"""Lambda ``invoice_api``: API Gateway (REST, proxy integration) -> DynamoDB reads.

Two read-only routes for the dashboard:

- ``GET /invoices?InvoiceNo=536365``   one invoice with its lines.
- ``GET /customers/{CustomerID}``      one customer with the list of their invoices.

The tables are written by another function.  An invoice may be stored as several items
("parts"); a line may appear in two parts when a client re-sent rows grouped differently,
so parts are merged and each line (RowId) is counted once.

Only the standard library and boto3 are used, so this file deploys to AWS unchanged.
Locally the runtime sets ``AWS_ENDPOINT_URL``, which boto3 honours: no endpoint here.

Environment variables:

- ``INVOICES_TABLE``   (required) key InvoiceNo (S) + Part (S).
- ``CUSTOMERS_TABLE``  (required) key CustomerID (S) + InvoicePart (S) = "<InvoiceNo>#<Part>".

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

import json
import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from shared.api import ApiError, request_id_of, serve, to_json  # noqa: F401
from shared.aws import client
from shared.settings import read_settings

logger = logging.getLogger("invoice_api")  # INFO: our lines reach the log, boto3's chatter does not
logger.setLevel(logging.INFO)

INVOICE_ROUTE = "/invoices"
CUSTOMER_ROUTE = "/customers/{CustomerID}"
VALID_ID = re.compile(r"[A-Za-z0-9]{1,20}")  # 536365, C536379, 17850: nothing else reaches DynamoDB
CORS = {"Access-Control-Allow-Origin": "*"}
_deserializer = TypeDeserializer()  # {"N": "2.55"} -> Decimal("2.55"), {"M": {...}} -> dict, ...


@dataclass(frozen=True)
class InvoicesTable:
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


# ---- 2. read the items and merge an invoice's parts ------------------------------------------


def query_all(client: Any, table: str, key_name: str, key: str) -> list[dict]:
    """All items of one partition as plain Python values (Decimal for numbers), page after page."""
    args = {
        "TableName": table,
        "KeyConditionExpression": "#k = :v",
        "ExpressionAttributeNames": {"#k": key_name},
        "ExpressionAttributeValues": {":v": {"S": key}},
    }
    items: list[dict] = []
    while True:
        page = client.query(**args)
        for item in page.get("Items", []):
            items.append({name: _deserializer.deserialize(value) for name, value in item.items()})
        if not page.get("LastEvaluatedKey"):
            return items
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def row_order(row_ids: Any) -> list[str]:
    """RowIds sorted numerically when they are all digits, else as text."""
    row_ids = list(row_ids)
    if all(r.isascii() and r.isdigit() for r in row_ids):
        return sorted(row_ids, key=int)
    return sorted(row_ids)


def json_object(text: str | None) -> dict:
    """Lines and LineTotals are stored as JSON text (money as decimal strings)."""
    return json.loads(text) if text else {}


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
        items = query_all(client("dynamodb"), read_settings(InvoicesTable).invoices_table, "InvoiceNo", key)
        log["items"] = len(items)
        if not items:
            raise ApiError(404, f"invoice {key} not found")
        return 200, merge_invoice(items)
    items = query_all(client("dynamodb"), read_settings(CustomersTable).customers_table, "CustomerID", key)
    log["items"] = len(items)
    if not items:
        raise ApiError(404, f"customer {key} not found")
    return 200, merge_customer(items)


def lambda_handler(event: Any, context: Any) -> dict:
    """Lambda entry point: one log line per request, never a stack trace to the client."""
    return serve(event, context, handle, logger, headers=CORS, request_id_in_errors=False)
