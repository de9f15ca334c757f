"""Rows of the Online Retail data: how every function checks and writes one.

Shared by the functions that take rows from outside (``ingest_api`` from the API,
``batch_loader`` from bulk files), so a row is accepted or rejected for the same reason
whichever way it comes in, and by the functions that read them back from the stream.  ``ecomlib.deploy.package`` copies this ``shared`` folder into
each function's deployment package (as a Lambda layer would).

- :func:`validate_row` checks and normalises one row, or says why it is rejected.
- :func:`encode_row` writes a normalised row as one compact JSON line (the format of the
  stream's records, the raw zone and the warehouse's COPY).
- :func:`check_row` checks a line read back from the stream (``stream_to_s3``,
  ``stream_to_dynamodb``): a line that is not such a row is a :class:`PoisonRecord`.

Only the standard library (what the Lambda Python runtime provides).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_ID_CHARS = 20  # InvoiceNo and StockCode (also the partition key: Kinesis allows 256)
MAX_ROW_ID_CHARS = 64
MAX_ABS_QUANTITY = 2**63 - 1  # fits an int64 downstream
MAX_ABS_PRICE = Decimal(1_000_000_000)
# The warehouse's unit_price is DECIMAL(10,3) and Redshift's COPY silently cuts extra digits,
# while DynamoDB keeps them: refuse more, so that both stores hold the same price.
MAX_PRICE_DECIMALS = 3  # the data has at most 3
YEARS = (2000, 2100)

# The one field list: every row written to the stream has these keys, in this order.
FIELDS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
    "RowId",
)
REQUIRED = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "Country")
TEXT_FIELDS = ("InvoiceNo", "StockCode", "InvoiceDate", "Country", "RowId")  # non-empty strings once written
OPTIONAL_FIELDS = ("Description", "CustomerID")  # strings or null


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?")
_KAGGLE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2})(?::(\d{2}))?")
_TRAILING_ZEROS = re.compile(r"\.0*$")


def _show(value: Any) -> str:
    """A value as a reason quotes it: '6' for a string, 6.5 for a number, true, null, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, (int, Decimal)):
        text = str(value)
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, float):
        return repr(value)
    return f"a JSON {_json_type(value)}"


class _Invalid(Exception):
    """A reason why a row is rejected (internal to validate_row)."""


def _is_integer_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integral(value: Any) -> int | None:
    """value as an int if it is an integer number (6, 6.0, Decimal('6.0')), else None."""
    if _is_integer_number(value):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if (
        isinstance(value, Decimal)
        and value.is_finite()
        and value.adjusted() < 40  # int(Decimal("1E+999999999")) would take forever
        and value == value.to_integral_value()
    ):
        return int(value)
    return None


def _code(row: dict, name: str) -> str:
    """InvoiceNo / StockCode: a non-empty string or an integer, at most 20 characters."""
    value = row.get(name)
    if value is None:
        raise _Invalid(f"missing required field '{name}'")
    if _is_integer_number(value):
        value = str(value)
    elif not isinstance(value, str):
        raise _Invalid(f"{name} must be a string or an integer, got {_show(value)}")
    if not value.strip():
        raise _Invalid(f"{name} must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise _Invalid(f"{name} is too long (at most {MAX_ID_CHARS} characters)")
    return value


def _quantity(value: Any) -> int:
    number = _integral(value)
    if number is None:
        raise _Invalid(f"Quantity must be an integer, got {_show(value)}")
    if abs(number) > MAX_ABS_QUANTITY:
        raise _Invalid("Quantity is out of range")
    return number


def _price(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise _Invalid(f"UnitPrice must be a number, got {_show(value)}")
    if isinstance(value, float):
        value = Decimal(repr(value))  # the shortest text of the float: 2.55, not 2.5499999...
    elif isinstance(value, int):
        value = Decimal(value)
    if not value.is_finite():
        raise _Invalid("UnitPrice must be a finite number")
    if abs(value) >= MAX_ABS_PRICE:
        raise _Invalid("UnitPrice is out of range")
    if value.normalize().as_tuple().exponent < -MAX_PRICE_DECIMALS:  # 2.5000 is 2.5
        raise _Invalid(f"UnitPrice has more than {MAX_PRICE_DECIMALS} decimal places")
    return value


def _date(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"InvoiceDate must be a string, got {_show(value)}")
    text = value.strip()
    iso, kaggle = _ISO.fullmatch(text), _KAGGLE.fullmatch(text)
    if iso:
        year, month, day, hour, minute, second = iso.groups()
    elif kaggle:
        month, day, year, hour, minute, second = kaggle.groups()
    else:
        raise _Invalid(
            f"InvoiceDate must look like YYYY-MM-DDTHH:MM:SS or M/D/YYYY H:MM, got {_show(value)}"
        )
    try:
        when = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        raise _Invalid(f"InvoiceDate is not a real date and time: {_show(value)}") from None
    if not YEARS[0] <= when.year <= YEARS[1]:
        raise _Invalid(f"InvoiceDate out of range (years {YEARS[0]}-{YEARS[1]}): {_show(value)}")
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _customer(value: Any) -> str | None:
    if value is None or value == "":
        return None
    number = _integral(value) if not isinstance(value, (bool, str)) else None
    if number is not None:
        return str(number)  # 17850.0 -> "17850"
    if not isinstance(value, str):
        raise _Invalid(f"CustomerID must be a string, an integer or null, got {_show(value)}")
    if not value.strip():
        return None
    return _TRAILING_ZEROS.sub("", value) if value[:1].isdigit() else value  # "17850.0" -> "17850"


def _description(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Invalid(f"Description must be a string or null, got {_show(value)}")
    return value


def _country(value: Any) -> str:
    if value is None:
        raise _Invalid("missing required field 'Country'")
    if not isinstance(value, str):
        raise _Invalid(f"Country must be a string, got {_show(value)}")
    if not value.strip():
        raise _Invalid("Country must not be empty")
    return value


def _row_id(value: Any, default: str | None) -> str | None:
    if value is None or value == "":
        return default
    if _is_integer_number(value):
        value = str(value)
    if not isinstance(value, str) or len(value) > MAX_ROW_ID_CHARS:
        raise _Invalid(
            f"RowId must be a string or an integer of at most {MAX_ROW_ID_CHARS} characters, "
            f"got {_show(value)}"
        )
    return value


def validate_row(row: Any, default_row_id: str | None = None) -> tuple[dict | None, str | None]:
    """Check and normalise one row: ``(normalised_row, None)`` or ``(None, reason)``.

    The normalised row has exactly the keys of ``FIELDS`` in that order: codes as str,
    Quantity int, InvoiceDate "YYYY-MM-DDTHH:MM:SS", UnitPrice Decimal, Description and
    CustomerID str or None, RowId str (``default_row_id`` when the row has none).
    Unknown fields are dropped.
    """
    if not isinstance(row, dict):
        return None, f"row must be a JSON object, got {_json_type(row)}"
    try:
        for name in REQUIRED:
            if row.get(name) is None:
                raise _Invalid(f"missing required field '{name}'")
        clean = {
            "InvoiceNo": _code(row, "InvoiceNo"),
            "StockCode": _code(row, "StockCode"),
            "Description": _description(row.get("Description")),
            "Quantity": _quantity(row["Quantity"]),
            "InvoiceDate": _date(row["InvoiceDate"]),
            "UnitPrice": _price(row["UnitPrice"]),
            "CustomerID": _customer(row.get("CustomerID")),
            "Country": _country(row["Country"]),
            "RowId": _row_id(row.get("RowId"), default_row_id),
        }
    except _Invalid as exc:
        return None, str(exc)
    except (InvalidOperation, OverflowError):
        return None, "a number in the row is out of range"
    return clean, None


def row_id_of(row: Any) -> str | None:
    """The RowId a (possibly invalid) row carries, as str, or None."""
    if isinstance(row, dict):
        value = row.get("RowId")
        if _is_integer_number(value):
            return str(value)
        if isinstance(value, str) and 0 < len(value) <= MAX_ROW_ID_CHARS:
            return value
    return None


_json_string = json.encoder.encode_basestring  # str -> JSON string literal, non-ASCII kept (fast, in C)
_KEYS = tuple(f"{_json_string(name)}:" for name in FIELDS)


def _json_value(value: Any) -> str:
    """One value of a normalised row as JSON text (our small custom encoder)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, Decimal):
        return format(value, "f")  # exact, plain digits: 2.55, 0.001, -11062.06
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def encode_row(row: dict) -> bytes:
    """One normalised row as a compact JSON line (``\\n``-terminated, UTF-8, FIELDS order).

    Decimals are written as their exact digits (a JSON number), never through float.
    """
    parts = [key + _json_value(row.get(name)) for key, name in zip(_KEYS, FIELDS)]
    return ("{" + ",".join(parts) + "}\n").encode("utf-8")


class PoisonRecord(ValueError):
    """A record whose data is not JSON Lines of valid rows: retrying will not help."""


_DECODE = json.JSONDecoder(parse_float=Decimal).decode  # one decoder for every line
_FIELD_SET = frozenset(FIELDS)


def check_row(line: str, max_chars: int | None = None, max_key_chars: int | None = None) -> dict:
    """One line read back from the stream, parsed as a row (UnitPrice an exact Decimal).

    Raises PoisonRecord if it is not a row as :func:`encode_row` writes them, if it is
    longer than ``max_chars``, or if InvoiceNo, RowId or CustomerID is longer than
    ``max_key_chars`` (when given).
    """
    if max_chars is not None and len(line) > max_chars:
        raise PoisonRecord(f"row longer than {max_chars} characters")
    try:
        row = _DECODE(line)
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested too deep
        raise PoisonRecord(f"line is not JSON: {exc}") from None
    if type(row) is not dict:
        raise PoisonRecord("line is not a JSON object")
    if not _FIELD_SET.issubset(row):
        raise PoisonRecord(f"row has no {', '.join(name for name in FIELDS if name not in row)}")
    # Plain loops and exact types (what a JSON decoder gives): this runs for every row.
    for name in TEXT_FIELDS:
        value = row[name]
        if type(value) is not str or not value:
            raise PoisonRecord("InvoiceNo, StockCode, InvoiceDate, Country and RowId must be strings")
    for name in OPTIONAL_FIELDS:
        value = row[name]
        if value is not None and type(value) is not str:
            raise PoisonRecord("Description and CustomerID must be strings or null")
    if type(row["Quantity"]) is not int or type(row["UnitPrice"]) not in (int, Decimal):
        raise PoisonRecord("Quantity must be an integer and UnitPrice a number")
    if max_key_chars is not None and (len(row["InvoiceNo"]) > max_key_chars or len(row["RowId"]) > max_key_chars
                                      or len(row["CustomerID"] or "") > max_key_chars):
        raise PoisonRecord(f"InvoiceNo, RowId or CustomerID over {max_key_chars} characters")
    row["UnitPrice"] = Decimal(row["UnitPrice"])  # 3 -> Decimal("3")
    return row
