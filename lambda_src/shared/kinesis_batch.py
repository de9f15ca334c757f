"""A Kinesis event, as Lambda's event source mapping delivers it, and the answer it expects.

- :func:`record_data` is a record's data (base64-decoded, checked to be UTF-8 JSON Lines
  of rows), or a :class:`~shared.rows.PoisonRecord`.
- :func:`batch_response` is the partial-batch answer of a mapping with
  ``ReportBatchItemFailures``: ``{"batchItemFailures": [{"itemIdentifier": seq}, ...]}``.
  Lambda retries from the first failed record, then sends it to the dead-letter queue.

Only the standard library (what the Lambda Python runtime provides).
"""

from __future__ import annotations

import base64
import binascii
from typing import Iterable

from shared.rows import PoisonRecord, check_row


def sequence(record: dict) -> str:
    """The record's sequence number (a decimal string, up to 56 digits on AWS)."""
    return record["kinesis"]["sequenceNumber"]


def record_data(record: dict) -> bytes:
    """The data of a Kinesis record: raises PoisonRecord if it is not base64 or not UTF-8."""
    try:
        data = base64.b64decode(record["kinesis"]["data"], validate=True)
        data.decode("utf-8")
    except (KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise PoisonRecord(f"unreadable data: {type(exc).__name__}") from None
    return data


def record_rows(record: dict, max_chars: int | None = None, max_key_chars: int | None = None) -> list[dict]:
    """The rows of a record (see :func:`shared.rows.check_row`); PoisonRecord if one line (even
    a blank one) is not a row."""
    text = record_data(record).decode("utf-8")
    # Split on "\n" only (not splitlines): a Description may hold U+2028 and the like.
    return [check_row(line, max_chars, max_key_chars) for line in text.removesuffix("\n").split("\n")]


def batch_response(failed: Iterable[str]) -> dict:
    """The partial-batch response naming the failed records' sequence numbers."""
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}
