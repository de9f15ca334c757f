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
import os
import re
import time
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

# A named logger at INFO: our lines reach the function's log, boto3's chatter (WARNING
# and up only, the root logger's level) does not.
logger = logging.getLogger("invoice_api")
logger.setLevel(logging.INFO)

INVOICE_ROUTE = "/invoices"
CUSTOMER_ROUTE = "/customers/{CustomerID}"
VALID_ID = re.compile(r"[A-Za-z0-9]{1,20}")  # 536365, C536379, 17850: nothing else reaches DynamoDB
HEADERS = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}

_deserializer = TypeDeserializer()  # {"N": "2.55"} -> Decimal("2.55"), {"M": {...}} -> dict, ...
_dynamodb = None  # the boto3 client, created on first use and kept while the container lives


def dynamodb_client():
    """The DynamoDB client, created once per Lambda container (cold start) and then reused."""
    global _dynamodb
    if _dynamodb is None:
        _dynamodb = boto3.client("dynamodb")  # no endpoint_url: boto3 reads AWS_ENDPOINT_URL
    return _dynamodb


class ApiError(Exception):
    """A request we answer with ``status`` and ``{"message": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


# ---------------------------------------------------------------------------
# JSON out: Decimals written as their exact digits, never through float
# ---------------------------------------------------------------------------


def to_json(value: Any) -> str:
    """JSON text of dicts, lists, str, bool, None, int and Decimal (15.30 -> 15.3, 1E+2 -> 100)."""
    if isinstance(value, Decimal):
        text = format(value, "f")  # plain digits, exact: no float, no exponent
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, dict):
        pairs = (f"{json.dumps(str(k), ensure_ascii=False)}: {to_json(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def response(status: int, body: dict, headers: dict[str, str] | None = None) -> dict:
    """An API Gateway proxy response with a JSON body."""
    return {"statusCode": status, "headers": {**HEADERS, **(headers or {})}, "body": to_json(body)}


# ---------------------------------------------------------------------------
# The request
# ---------------------------------------------------------------------------


def request_id_of(event: Any, context: Any = None) -> str:
    """API Gateway's request id (requestContext.requestId), else Lambda's."""
    request = event.get("requestContext") if isinstance(event, dict) else None
    if isinstance(request, dict) and request.get("requestId"):
        return str(request["requestId"])
    return str(getattr(context, "aws_request_id", None) or "unknown")


def _valid_id(name: str, value: Any) -> str:
    if not isinstance(value, str) or not VALID_ID.fullmatch(value):
        raise ApiError(400, f"{name} must be 1 to 20 letters or digits, e.g. 536365 or C536379")
    return value


def parse_request(event: Any) -> tuple[str, str]:
    """``(route, key)`` of a GET event, e.g. ``("/invoices", "536365")``; else raises ApiError."""
    if not isinstance(event, dict):
        raise ApiError(400, "expected an API Gateway proxy event")
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


# ---------------------------------------------------------------------------
# Reading and merging the items
# ---------------------------------------------------------------------------


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


def table_name(variable: str) -> str:
    name = os.environ.get(variable, "").strip()
    if not name:
        raise RuntimeError(f"function misconfigured: environment variable {variable} is not set")
    return name


def lambda_handler(event: Any, context: Any) -> dict:
    """Lambda entry point: one log line per request, never a stack trace to the client."""
    started = time.monotonic()
    request_id = request_id_of(event, context)
    log: dict[str, Any] = {"requestId": request_id}
    try:
        route, key = parse_request(event)
        log.update(route=route, key=key)
        if route == INVOICE_ROUTE:
            items = query_all(dynamodb_client(), table_name("INVOICES_TABLE"), "InvoiceNo", key)
            if not items:
                raise ApiError(404, f"invoice {key} not found")
            answer = response(200, merge_invoice(items))
        else:
            items = query_all(dynamodb_client(), table_name("CUSTOMERS_TABLE"), "CustomerID", key)
            if not items:
                raise ApiError(404, f"customer {key} not found")
            answer = response(200, merge_customer(items))
        log["items"] = len(items)
    except ApiError as exc:
        log["message"] = exc.message
        answer = response(exc.status, {"message": exc.message}, exc.headers)
    except Exception:  # noqa: BLE001 - the last line of defence: details in the log only
        logger.exception("request %s failed", request_id)
        answer = response(500, {"message": "internal error", "requestId": request_id})
    log.update(status=answer["statusCode"], ms=round((time.monotonic() - started) * 1000, 1))
    logger.info(json.dumps(log))
    return answer
