"""Reading the invoice tables back (invoice_api): what the GET API does not need to show.

- :func:`query_all`: every item of one partition, page after page (a ``Query`` answers at
  most 1 MB; ``LastEvaluatedKey`` says where the next page starts), as plain Python
  values: boto3's ``TypeDeserializer`` turns ``{"N": "2.55"}`` into ``Decimal("2.55")``.
- :func:`json_object`: ``Lines`` and ``LineTotals`` are stored as JSON text
  (``shared/invoice_items.py`` says why), money as decimal strings.
- :func:`row_order`: RowIds in a natural order.

Only the standard library and boto3 (what the Lambda Python runtime provides).
"""

from __future__ import annotations

import json
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

_deserializer = TypeDeserializer()  # {"N": "2.55"} -> Decimal("2.55"), {"M": {...}} -> dict, ...


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
