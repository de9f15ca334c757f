"""Bulk files in S3, read chunk by chunk: what ``batch_loader`` does not need to show.

- Lines: :func:`split_lines` cuts a chunk of bytes at line ends (a CSV line end inside
  double quotes belongs to the field), :func:`parse_lines` turns lines into rows for
  ``validate_row`` (CSV in the Online Retail layout, or JSON Lines), :func:`read_header`
  reads a CSV header, :func:`hold_back_last_invoice` keeps an invoice in one chunk.
- :class:`Files`: where a file, its staging, its state and its reports live in the bucket;
  :meth:`Files.next_rows` reads the next chunk of a file (a ranged GET cut at a line end
  and an invoice boundary), :meth:`Files.staged_rows` reads a staged chunk back.
- :func:`note_bad_row` counts a bad row in a file's state and lists it for the report.
- :class:`Budget`: what one run may still do (the function's time, optionally chunks).
- :func:`side_by_side`: the waiting files, a few at a time (one thread each).

Only the standard library and boto3 (what the Lambda Python runtime provides).
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator

from shared.aws import client
from shared.rows import FIELDS, MAX_ROW_ID_CHARS

CSV_COLUMNS = tuple(name for name in FIELDS if name != "RowId")  # RowId is optional in a file
MAX_ERRORS_LISTED = 1_000  # the error report lists at most this many bad rows (and counts all)
SAFETY_MS = 10_000  # stop when less than this (or 2x the slowest chunk) is left
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")


class FileRefused(Exception):
    """The file as a whole cannot be read (no header, unknown format, a line too long)."""


def split_lines(data: bytes, at_end: bool, quoted: bool) -> list[tuple[bytes, int]]:
    """The whole lines at the start of ``data``: (line without its line end, bytes it takes).

    Without ``at_end`` the text after the last line end is left for the next chunk.  In
    CSV (``quoted``) a line end inside double quotes belongs to the field, so physical
    lines are joined until their quotes balance.
    """
    end = len(data) if at_end else data.rfind(b"\n") + 1
    lines: list[tuple[bytes, int]] = []
    if end == 0:
        return lines
    pending: list[bytes] = []
    for piece in data[:end].split(b"\n"):
        pending.append(piece)
        if quoted and sum(p.count(b'"') for p in pending) % 2:
            continue  # inside a quoted field: the line goes on
        line = b"\n".join(pending)
        lines.append((line.rstrip(b"\r"), len(line) + 1))
        pending = []
    if at_end and pending:  # an unterminated quote at the end of the file: the CSV reader judges
        line = b"\n".join(pending)
        lines.append((line.rstrip(b"\r"), len(line) + 1))
    if lines and lines[-1][0] == b"" and lines[-1][1] == 1 and data[:end].endswith(b"\n"):
        lines.pop()  # the empty text after the last line end
    if at_end and lines and not data.endswith(b"\n"):
        lines[-1] = (lines[-1][0], lines[-1][1] - 1)  # the file's last line has no line end
    return lines


def decode(line: bytes) -> str:
    """UTF-8, or ISO-8859-1 (the original dataset's encoding) when it is not UTF-8."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("iso-8859-1")


def csv_row(values: list[str], header: list[str]) -> dict | str:
    """A CSV record as a row for ``validate_row`` (numbers parsed), or why it cannot be one."""
    if len(values) != len(header):
        return f"has {len(values)} fields, the header has {len(header)}"
    row: dict[str, Any] = dict(zip(header, values))
    for name in ("Description", "CustomerID", "RowId"):
        if row.get(name) == "":
            row[name] = None
    quantity = row.get("Quantity")
    if isinstance(quantity, str) and _INTEGER.fullmatch(quantity):
        row["Quantity"] = int(quantity)
    price = row.get("UnitPrice")
    if isinstance(price, str):
        try:
            row["UnitPrice"] = Decimal(price.strip())
        except InvalidOperation:
            pass  # validate_row says why
    return row


def parse_lines(lines: list[bytes], kind: str, header: list[str] | None) -> list[dict | str | None]:
    """Each line as a row dict, a string saying why it is not a row, or None if it is blank."""
    parsed: list[dict | str | None] = [None] * len(lines)
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if kind == "csv":
        records = csv.reader([decode(lines[i]) for i in filled])
        for i, values in zip(filled, records):
            parsed[i] = csv_row(values, header or [])
        return parsed
    for i in filled:
        try:
            parsed[i] = json.loads(decode(lines[i]), parse_float=Decimal)
        except ValueError as exc:
            parsed[i] = f"line is not JSON: {exc}"
    return parsed


def read_header(data: bytes, at_end: bool, key: str) -> tuple[list[str], int]:
    """The CSV header's column names and its size in bytes; FileRefused if it is not one."""
    lines = split_lines(data, at_end, quoted=True)
    if not lines:
        raise FileRefused("no header line (is the file empty?)")
    line, size = lines[0]
    header = [name.strip().lstrip("\ufeff") for name in next(csv.reader([decode(line)]), [])]
    missing = [name for name in CSV_COLUMNS if name not in header]
    if missing:
        raise FileRefused(f"{key}: the header has no {', '.join(missing)} "
                          f"(expected the Online Retail layout: {','.join(CSV_COLUMNS)})")
    return header, size


def file_kind(key: str) -> str | None:
    lower = key.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    return None


class Files:
    """Where a file and its staging, state and reports live in the bucket."""

    def __init__(self, settings: Any, name: str) -> None:
        self.s = settings
        self.name = name
        p = settings.prefix
        self.incoming = f"{p}incoming/{name}"
        self.state = f"{p}state/{name}.json"
        self.staging = f"{p}staging/{name}/"
        self.processed = f"{p}processed/{name}"
        self.failed = f"{p}failed/{name}"

    def chunk(self, number: int) -> str:
        return f"{self.staging}{number:05d}.json"

    def next_rows(self, state: dict) -> tuple[list[dict | str | None], int]:
        """The rows of the file's next chunk (from ``state["offset"]``, at most ``chunk_bytes``)
        and the bytes they take.  Each row is as :func:`parse_lines` gives it.  The chunk
        ends at a line end and, unless it is the file's last, before its last invoice (read
        again with the next chunk).  A CSV file's first call reads its header into ``state``
        and gives no rows.  FileRefused if the file cannot be read on."""
        offset, chunk_bytes = state["offset"], self.s.chunk_bytes
        if state["size"] == 0:
            raise FileRefused("the file is empty (no header line)")
        data = client("s3").get_object(Bucket=self.s.bucket, Key=self.incoming,
                                       Range=f"bytes={offset}-{offset + chunk_bytes - 1}")["Body"].read()
        at_end = offset + len(data) >= state["size"]
        if state["kind"] == "csv" and state.get("header") is None:
            state["header"], used = read_header(data, at_end, self.name)
            return [], used
        lines = split_lines(data, at_end, quoted=state["kind"] == "csv")
        if not lines and not at_end:
            raise FileRefused(f"line {state['line'] + 1} is longer than {chunk_bytes} bytes")
        rows = parse_lines([line for line, _ in lines], state["kind"], state.get("header"))
        kept = len(rows) - (0 if at_end else hold_back_last_invoice(rows))
        used = sum(size for _, size in lines[:kept])
        if not used:
            raise FileRefused(f"cannot read past byte {offset}")
        return rows[:kept], used

    def staged_rows(self, number: int) -> list[dict]:
        """The rows of a chunk staged by an earlier run, read back from S3 (money as Decimal)."""
        body = client("s3").get_object(Bucket=self.s.bucket, Key=self.chunk(number))["Body"].read()
        rows = [json.loads(line, parse_float=Decimal) for line in body.decode("utf-8").splitlines() if line]
        for row in rows:
            row["UnitPrice"] = Decimal(row["UnitPrice"])
        return rows

    def get_json(self, key: str) -> dict | None:
        """The JSON document at ``key``, or None when there is none.

        S3 answers a GetObject of a missing key with 404 ``NoSuchKey`` only to a caller
        allowed ``s3:ListBucket`` on the bucket; others get 403 ``AccessDenied``. This
        function's role may list only under its folder (an ``s3:prefix`` condition, which
        a GetObject request does not carry), so a missing state file answers 403: a listing
        of that exact key then tells "missing" from "not allowed".
        """
        s3 = client("s3")
        try:
            return json.loads(s3.get_object(Bucket=self.s.bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None
        except s3.exceptions.ClientError as error:
            if error.response["Error"]["Code"] != "AccessDenied" or self.exists(key):
                raise
            return None

    def exists(self, key: str) -> bool:
        """Whether the object ``key`` exists (by listing it: allowed under the folder)."""
        listed = client("s3").list_objects_v2(Bucket=self.s.bucket, Prefix=key, MaxKeys=1)
        return any(item["Key"] == key for item in listed.get("Contents", []))

    def put_json(self, key: str, value: dict) -> None:
        client("s3").put_object(Bucket=self.s.bucket, Key=key, ContentType="application/json",
                                Body=json.dumps(value, indent=1, default=str).encode())

    def move(self, target: str) -> None:
        """Copy the incoming file to ``target`` and delete it, its staging and its state."""
        s3 = client("s3")
        s3.copy_object(Bucket=self.s.bucket, Key=target,
                       CopySource={"Bucket": self.s.bucket, "Key": self.incoming})
        doomed = [self.incoming, self.state]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.s.bucket, Prefix=self.staging):
            doomed += [item["Key"] for item in page.get("Contents", [])]
        for start in range(0, len(doomed), 1000):
            s3.delete_objects(Bucket=self.s.bucket, Delete={
                "Objects": [{"Key": key} for key in doomed[start:start + 1000]], "Quiet": True})

    def finish(self, state: dict) -> None:
        """A file done or refused: write its report and move it to processed/ or failed/."""
        if state["phase"] == "done":
            report = {key: state[key] for key in ("file", "rows", "chunks", "invocations", "seconds", "started")}
            self.put_json(f"{self.processed}.report.json", {**report, "finished": now()})
            self.move(self.processed)
        elif state["phase"] == "refused":
            self.put_json(f"{self.failed}.errors.json", {
                "file": self.name, "loaded": 0,
                "message": state.get("message") or f"{state['rejected']} bad rows: nothing was loaded",
                "rows_read": state["line"], "rejected": state["rejected"], "errors": state["errors"],
                "errors_listed": len(state["errors"]), "finished": now()})
            self.move(self.failed)


def incoming_files(settings: Any) -> list[tuple[str, str, int]]:
    """(name, ETag, size) of each file waiting in incoming/, in name order."""
    prefix = f"{settings.prefix}incoming/"
    found = []
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=settings.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix):]
            if name and not name.endswith("/"):
                found.append((name, item["ETag"], item["Size"]))
    return sorted(found)


def default_row_id(name: str, line: int) -> str:
    stem = name.rsplit("/", 1)[-1]
    stem = stem[:MAX_ROW_ID_CHARS - 12]
    return f"{stem}:{line}"


def note_bad_row(state: dict, row: dict | str, reason: str) -> None:
    """Count a bad row (at ``state["line"]``) and list it for the error report (the first
    ``MAX_ERRORS_LISTED``: line number, RowId, reason)."""
    state["rejected"] += 1
    if len(state["errors"]) < MAX_ERRORS_LISTED:
        row_id = row.get("RowId") if isinstance(row, dict) else None
        state["errors"].append({"line": state["line"], "RowId": row_id, "reason": reason})


def hold_back_last_invoice(rows: list[dict | str | None]) -> int:
    """How many trailing lines belong to the chunk's last invoice (left for the next chunk,
    so that an invoice is not split between two chunks), or 0 if that would leave nothing."""
    last = rows[-1].get("InvoiceNo") if rows and isinstance(rows[-1], dict) else None  # type: ignore[union-attr]
    if last is None:
        return 0
    count = 0
    for row in reversed(rows):
        if not isinstance(row, dict) or row.get("InvoiceNo") != last:
            break
        count += 1
    return 0 if count == len(rows) else count


class Budget:
    """What one run may still do: time (the function's timeout) and, optionally, chunks."""

    def __init__(self, time_left_ms, max_chunks: int | None) -> None:
        self.time_left_ms = time_left_ms
        self.chunks_left = max_chunks
        self.slowest = 0.0  # seconds taken by the slowest chunk so far
        self.lock = threading.Lock()  # files are processed by several threads

    def allows_another_chunk(self) -> bool:
        """True (and one chunk counted) if there is room for one more chunk."""
        with self.lock:
            if self.chunks_left is not None:
                if self.chunks_left <= 0:
                    return False
            if self.time_left_ms() < max(SAFETY_MS, 2000 * self.slowest):
                return False
            if self.chunks_left is not None:
                self.chunks_left -= 1
            return True

    def exhausted(self) -> bool:
        """No room for another chunk (nothing is counted)."""
        with self.lock:
            return ((self.chunks_left is not None and self.chunks_left <= 0)
                    or self.time_left_ms() < max(SAFETY_MS, 2000 * self.slowest))

    def spent(self, seconds: float) -> None:
        with self.lock:
            self.slowest = max(self.slowest, seconds)

    @contextlib.contextmanager
    def timing(self, state: dict) -> Iterator[None]:
        """Time one step of a file: its seconds are added to ``state["seconds"]`` under the
        phase it began in, and counted as spent (the slowest step sets the safety margin)."""
        phase, started = state["phase"], time.monotonic()
        yield
        took = time.monotonic() - started
        state["seconds"][phase] = round(state["seconds"][phase] + took, 3)
        self.spent(took)


def side_by_side(settings: Any, process: Callable[[str, str, int], Any], at_once: int) -> list:
    """``process(name, etag, size)`` of each file waiting in incoming/, ``at_once`` files at a
    time (while one waits for DynamoDB or the warehouse, another is read); the results that
    are not None, in name order."""
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        return [done for done in pool.map(lambda f: process(*f), incoming_files(settings)) if done is not None]


def new_state(name: str, etag: str, size: int) -> dict:
    """The state of a file not seen before (saved in batch/state/ after each chunk)."""
    return {"file": name, "etag": etag, "size": size, "kind": file_kind(name), "phase": "validating",
            "offset": 0, "line": 0, "header": None, "chunks": 0, "rows": 0, "rejected": 0,
            "errors": [], "loaded_chunks": 0, "invocations": 0, "started": now(),
            "seconds": {"validating": 0.0, "loading": 0.0}}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
