"""Send Online Retail rows to the ingestion API (API Gateway -> Lambda ``ingest_api`` -> Kinesis).

The API takes ``POST /invoices`` with one row (a JSON object) or a batch (a JSON list)
and answers with counts::

    {"accepted": 498, "rejected": 2, "records": 37, "requestId": "...",
     "errors": [{"index": 12, "RowId": "1012", "reason": "Quantity must be an integer, got '6'"}]}

Typical use in a notebook::

    from ecomlib import client, data

    df = data.load()
    rows = client.select_rows(df, start="2011-01-01", end="2011-02-01")
    summary = client.send(url, rows)          # url: ".../dev/invoices"
    print(summary)

Main entry points:

- :func:`select_rows`      pick rows by position, by count or by date range
- :func:`to_payload_rows`  a frame as JSON-ready dicts, each with a ``RowId``
- :func:`send`             send many rows: batches, threads, retries, progress bar
- :func:`post_rows`        one raw POST (to show a single call)

Every row carries a ``RowId`` (its index label in the source frame): when a request is
retried, downstream consumers can drop the rows they have already seen.

Retries and duplicates: a 503 from the ingest function lists the rows it could not write,
and only those are sent again. A whole request is sent again only after an answer that
says nothing about its rows (429, 502, 504, a lost connection). The function times out
(20 s) before API Gateway does (29 s, then 504) and stops calling Kinesis in time to
answer 503 itself, so a 504 does not happen and a 502 only when the function crashed:
then rows it had already written arrive twice, with the same RowId.
"""

from __future__ import annotations

import json
import math
import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterator, Sequence

import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from tqdm.std import tqdm  # a text bar: a saved notebook shows its final state, not a widget's 0%

from ecomlib import data

DEFAULT_BATCH_SIZE = 500  # rows per request: see MAX_ROWS_PER_REQUEST in the ingest function
MAX_BATCH_SIZE = 10_000  # the ingest function answers 413 above this
RETRY_STATUSES = frozenset({429, 502, 503, 504})  # worth trying again (after a pause)
WRONG_URL_STATUSES = frozenset({401, 403, 404, 405})  # the URL (or the API) is not the right one
STREAM_UNAVAILABLE = "stream unavailable"  # reason prefix of rows the API asks us to send again
BACKOFF_BASE = 0.25  # seconds before the first retry; doubled for each further retry
BACKOFF_CAP = 10.0  # longest pause between two tries
LOCAL_HINT = (
    "Check the URL (it ends with /<stage>/invoices). Running locally? Check that the "
    "embedded AWS is running: `python -m ecomlib local status` "
    "(start it with `python -m ecomlib local start`)."
)
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}



class IngestError(RuntimeError):
    """The API cannot be used at all (unreachable, wrong URL).

    ``summary`` holds what was sent before the problem (a :class:`SendSummary`) or None.
    """

    def __init__(self, message: str, summary: SendSummary | None = None) -> None:
        super().__init__(message)
        self.summary = summary


# ---------------------------------------------------------------------------
# Choosing rows
# ---------------------------------------------------------------------------


def select_rows(
    df: pd.DataFrame,
    *,
    index: int | Sequence[int] | slice | None = None,
    first: int | None = None,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
) -> pd.DataFrame:
    """Pick rows: by position (``index``: an int, a list of ints or a slice), the first N
    (``first``), or by date range on InvoiceDate (``start`` inclusive, ``end`` exclusive;
    strings like "2011-01-01" or datetimes; either may be left out).

    Use exactly one kind of selector, or none for all rows.  The index labels are kept, so
    ``RowId`` still names the row's position in the source file.
    """
    chosen = [
        name
        for name, used in (
            ("index", index is not None),
            ("first", first is not None),
            ("start/end", start is not None or end is not None),
        )
        if used
    ]
    if len(chosen) > 1:
        raise ValueError(f"choose one selector, not {' and '.join(chosen)}")
    if index is not None:
        if isinstance(index, slice):
            return df.iloc[index]
        if pd.api.types.is_integer(index):  # one position (int or numpy integer)
            return df.iloc[[index]]
        return df.iloc[list(index)]
    if first is not None:
        if isinstance(first, bool) or not isinstance(first, int) or first < 0:
            raise ValueError(f"first must be a whole number >= 0, got {first!r}")
        return df.iloc[:first]
    if start is not None or end is not None:
        dates = df["InvoiceDate"]
        if not pd.api.types.is_datetime64_any_dtype(dates):
            dates = pd.to_datetime(dates, format="mixed")
        keep = pd.Series(True, index=df.index)
        if start is not None:
            keep &= dates >= pd.Timestamp(start)
        if end is not None:
            keep &= dates < pd.Timestamp(end)
        return df[keep]
    return df


def to_payload_rows(df: pd.DataFrame, row_ids: bool = True) -> list[dict]:
    """The rows of a frame as JSON-ready dicts (plain str/int/float/None values, dates as
    "YYYY-MM-DDTHH:MM:SS"), plus ``RowId`` = the row's index label as text when ``row_ids``.
    """
    rows = data.to_records(df)
    if row_ids:
        for row, label in zip(rows, df.index):
            row["RowId"] = str(label)
    return rows


# ---------------------------------------------------------------------------
# One request
# ---------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    """JSON for values the json module does not know (numpy numbers, timestamps, NA)."""
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (datetime, pd.Timestamp)):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot send a value of type {type(value).__name__} as JSON")


def _clean(row: Any) -> Any:
    """A row with NaN/inf floats replaced by None (JSON has no NaN: the API would refuse the body)."""
    if not isinstance(row, dict):
        return row
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


def encode_body(rows: dict | list[dict]) -> bytes:
    """The request body: one row (dict) or a list of rows as compact UTF-8 JSON."""
    payload = _clean(rows) if isinstance(rows, dict) else [_clean(r) for r in rows]
    text = json.dumps(payload, default=_json_default, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")


def make_session(pool_size: int = 10) -> requests.Session:
    """A requests Session that keeps up to ``pool_size`` connections open per host."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(pool_size, 10))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(HEADERS)
    return session


def post_rows(
    url: str,
    rows: dict | list[dict] | pd.DataFrame,
    session: requests.Session | None = None,
    timeout: float = 60,
) -> requests.Response:
    """One POST of one row (a dict) or a list of rows; returns the raw response (no retries)."""
    if isinstance(rows, pd.DataFrame):
        rows = to_payload_rows(rows)
    http = session or requests
    return http.post(url, data=encode_body(rows), headers=HEADERS, timeout=timeout)


# ---------------------------------------------------------------------------
# Many requests
# ---------------------------------------------------------------------------


@dataclass
class SendSummary:
    """What :func:`send` did.

    ``errors`` has one entry per rejected row: ``{"index": position in the rows sent,
    "RowId": its RowId or None, "reason": why}``.  ``requests`` counts every HTTP request
    that got an answer (retries included); ``statuses`` counts them by HTTP status.
    """

    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    requests: int = 0
    errors: list[dict] = field(default_factory=list, repr=False)
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    retries: int = 0

    @property
    def rows_per_s(self) -> float:
        """Rows sent per second of wall time."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"sent {self.sent:,} rows in {self.requests:,} requests ({self.seconds:.1f} s, "
            f"{self.rows_per_s:,.0f} rows/s): {self.accepted:,} accepted, "
            f"{self.rejected:,} rejected; HTTP statuses {dict(sorted(self.statuses.items()))}"
            + (f"; {self.retries} retries" if self.retries else "")
        )


@dataclass
class _BatchResult:
    rows: int
    accepted: int = 0
    rejected: int = 0
    requests: int = 0
    retries: int = 0
    errors: list[dict] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)


class _Stopped(Exception):
    """send() is giving up: the other workers stop too."""


@dataclass
class _Job:
    url: str
    rows: list
    one_per_request: bool
    retries: int
    timeout: float
    session: requests.Session
    stop: threading.Event = field(default_factory=threading.Event)


def _message(response: requests.Response, body: Any) -> str:
    """A short text for an error answer: its JSON "message", else the start of the body."""
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])[:300]
    return (response.text or response.reason or "").strip()[:300]


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _is_ingest_answer(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("accepted"), int)


def _pause(job: _Job, failures: int, response: requests.Response | None = None) -> None:
    """Wait before the next try: exponential backoff with jitter (or Retry-After)."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (failures - 1))
    delay = random.uniform(delay / 2, delay)
    if response is not None:
        try:
            delay = max(delay, min(float(response.headers.get("Retry-After", "")), 30.0))
        except ValueError:
            pass
    if job.stop.wait(delay):
        raise _Stopped


def _row_id(row: Any) -> Any:
    return row.get("RowId") if isinstance(row, dict) else None


def _reject(result: _BatchResult, job: _Job, positions: list[int], reason: str) -> None:
    for position in positions:
        result.errors.append({"index": position, "RowId": _row_id(job.rows[position]), "reason": reason})
    result.rejected += len(positions)


def _read_answer(result: _BatchResult, job: _Job, pending: list[int], body: dict) -> list[int]:
    """Count an ingest answer for the rows ``pending``; return the rows to send again."""
    errors = body.get("errors") or []
    again: list[int] = []
    listed = 0
    for error in errors:
        i = error.get("index") if isinstance(error, dict) else None
        if not isinstance(i, int) or not 0 <= i < len(pending):
            continue
        reason = str(error.get("reason", "rejected"))
        if reason.startswith(STREAM_UNAVAILABLE):
            again.append(pending[i])
        else:
            _reject(result, job, [pending[i]], reason)
            listed += 1
    accepted = min(max(body["accepted"], 0), len(pending) - len(again) - listed)
    result.accepted += accepted
    unlisted = len(pending) - accepted - len(again) - listed
    if unlisted:  # the API lists at most 1,000 reasons per request
        result.rejected += unlisted
        result.errors.append(
            {"index": None, "RowId": None,
             "reason": f"{unlisted} more rows rejected (reasons not listed by the API)"}
        )
    return again


def _send_batch(job: _Job, positions: list[int]) -> _BatchResult:
    """Send the rows at ``positions`` (one request, plus retries); count what happened."""
    result = _BatchResult(rows=len(positions))
    pending = positions
    failures = 0
    while pending:
        if job.stop.is_set():
            raise _Stopped
        rows = job.rows[pending[0]] if job.one_per_request else [job.rows[i] for i in pending]
        try:
            response = job.session.post(job.url, data=encode_body(rows), headers=HEADERS, timeout=job.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            failures += 1
            if failures > job.retries:
                problem = f"{type(exc).__name__}: {str(exc)[:200]}"
                raise IngestError(
                    f"Could not reach the ingestion API at {job.url} after {failures} attempts "
                    f"({problem}). {LOCAL_HINT}"
                ) from None
            result.retries += 1
            _pause(job, failures)
            continue
        status = response.status_code
        result.requests += 1
        result.statuses[status] += 1
        body = _json(response)
        if status in (200, 503) and _is_ingest_answer(body):
            again = _read_answer(result, job, pending, body)
            if not again:
                break
            failures += 1
            if failures > job.retries:
                last = next((e["reason"] for e in body.get("errors", []) if
                             str(e.get("reason", "")).startswith(STREAM_UNAVAILABLE)), STREAM_UNAVAILABLE)
                _reject(result, job, again, f"gave up after {job.retries} retries: {last}")
                break
            result.retries += 1
            _pause(job, failures, response)
            pending = again
        elif status in RETRY_STATUSES:
            failures += 1
            if failures > job.retries:
                reason = f"gave up after {job.retries} retries: HTTP {status}: {_message(response, body)}"
                _reject(result, job, pending, reason)
                break
            result.retries += 1
            _pause(job, failures, response)
        elif status in WRONG_URL_STATUSES:
            raise IngestError(
                f"{job.url} answered HTTP {status} ({_message(response, body)}): is it the POST URL "
                f"of the ingestion API? {LOCAL_HINT}"
            )
        elif status == 200:
            _reject(result, job, pending, "unexpected answer from the API: HTTP 200 without counts")
            break
        else:  # 400, 413, 500, ...: sending the same again will not help
            _reject(result, job, pending, f"HTTP {status}: {_message(response, body)}")
            break
    return result


def _batches(rows: list[dict], batch_size: int, one_per_request: bool) -> Iterator[list[int]]:
    """Positions of the rows for each request.

    A full batch waits for its last invoice to end (when an invoice's lines are adjacent,
    as in the CSV), so an invoice travels in one request and its lines reach the stream
    in order even though requests run in parallel. Only a batch that reaches the API's
    limit of rows per request is cut inside an invoice.
    """
    if one_per_request:
        yield from ([i] for i in range(len(rows)))
        return
    hard_cap = MAX_BATCH_SIZE
    batch: list[int] = []
    for i, row in enumerate(rows):
        full = len(batch) >= batch_size
        if batch and ((full and _invoice(row) != _invoice(rows[batch[-1]])) or len(batch) >= hard_cap):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _invoice(row: Any) -> Any:
    return row.get("InvoiceNo") if isinstance(row, dict) else None


def send(
    url: str,
    rows: list[dict] | pd.DataFrame,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    one_per_request: bool = False,
    concurrency: int = 4,
    progress: bool = True,
    retries: int = 5,
    timeout: float = 60,
    session: requests.Session | None = None,
) -> SendSummary:
    """POST rows to the ingestion API at ``url`` (the full URL, ending with /invoices).

    Rows go in lists of about ``batch_size`` — a list ends where an invoice ends, so an
    invoice travels in one request — (or one JSON object per request with
    ``one_per_request=True``, the slow way, for comparison), from ``concurrency`` threads
    sharing one pooled connection Session.  Connection errors and HTTP 429/502/503/504 are
    retried up to ``retries`` times with exponential backoff and jitter; when the API
    answers 503 with counts, only the rows it could not write to the stream are sent
    again.  400 and 413 are never retried: those rows count as rejected with the reason.

    Returns a :class:`SendSummary` (``sent == accepted + rejected``).  Raises
    :class:`IngestError` when the URL cannot be reached or is not the API.
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"url must be the full http(s) URL of POST /invoices, got {url!r}")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be from 1 to {MAX_BATCH_SIZE}, got {batch_size}")
    if concurrency < 1 or retries < 0:
        raise ValueError("concurrency must be >= 1 and retries >= 0")
    if isinstance(rows, pd.DataFrame):
        rows = to_payload_rows(rows)
    rows = list(rows)

    own_session = session is None
    job = _Job(url, rows, one_per_request, retries, timeout, session or make_session(concurrency))
    summary = SendSummary(sent=len(rows))
    statuses: Counter = Counter()
    started = time.perf_counter()
    bar = tqdm(total=len(rows), unit="row", desc="send", disable=not progress, file=sys.stdout)
    batches = _batches(rows, batch_size, one_per_request)
    running: set[Future] = set()
    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ecom-send") as pool:
            try:
                while True:
                    # keep at most 2 batches per worker queued: memory stays small for any size
                    while len(running) < 2 * concurrency:
                        batch = next(batches, None)
                        if batch is None:
                            break
                        running.add(pool.submit(_send_batch, job, batch))
                    if not running:
                        break
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        result = future.result()
                        summary.accepted += result.accepted
                        summary.rejected += result.rejected
                        summary.requests += result.requests
                        summary.retries += result.retries
                        summary.errors.extend(result.errors)
                        statuses.update(result.statuses)
                        bar.update(result.rows)
                        bar.set_postfix(accepted=f"{summary.accepted:,}", rejected=f"{summary.rejected:,}", refresh=False)
            except BaseException as exc:
                job.stop.set()  # the other workers stop at their next step
                for future in running:
                    future.cancel()
                if isinstance(exc, IngestError):
                    summary.statuses = dict(sorted(statuses.items()))
                    summary.seconds = time.perf_counter() - started
                    exc.summary = summary
                raise
    finally:
        bar.close()
        if own_session:
            job.session.close()
    summary.errors.sort(key=lambda e: (e["index"] is None, e["index"] or 0))
    summary.statuses = dict(sorted(statuses.items()))
    summary.seconds = time.perf_counter() - started
    return summary
