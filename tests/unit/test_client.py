"""Tests of ``ecomlib.client`` against a tiny local HTTP server imitating the ingestion API.

No AWS: the server runs in a thread of the test process (127.0.0.1, a free port) and is
shut down after each test.  Rows are invented by hand (never copied from the real data).
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from ecomlib import client

PATH = "/dev/invoices"
REJECT = "REJECT-ME"  # rows with this Description are rejected by the fake API


class FakeAPI:
    """What the fake API has seen and how it should misbehave."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.bodies: list[object] = []  # each request's decoded JSON body
        self.accepted_ids: list[str] = []  # RowIds "written to the stream"
        self.status_queue: list[int] = []  # answer these statuses first (one each), then behave
        self.flaky_ids: set[str] = set()  # fail with "stream unavailable" the first time
        self.broken_ids: set[str] = set()  # always fail with "stream unavailable"
        self.max_rows = 10_000  # more rows than this in one request -> 413
        self.delay_first = 0.0  # seconds the first request waits before answering

    def answer(self, body: object) -> tuple[int, dict]:
        with self.lock:
            self.requests += 1
            number = self.requests
            self.bodies.append(body)
            forced = self.status_queue.pop(0) if self.status_queue else None
        if number == 1 and self.delay_first:
            time.sleep(self.delay_first)
        if forced == 500:
            return 500, {"message": "internal error", "requestId": f"r{number}"}
        if forced is not None:
            return forced, {"message": "Service Unavailable"}  # like API Gateway's own errors
        rows = body if isinstance(body, list) else [body]
        if len(rows) > self.max_rows:
            return 413, {"message": f"too many rows in one request: {len(rows)} > {self.max_rows}"}
        errors, accepted, stream_failed = [], 0, False
        with self.lock:
            for i, row in enumerate(rows):
                row_id = row.get("RowId")
                if row.get("Description") == REJECT:
                    errors.append({"index": i, "RowId": row_id, "reason": "Description is marked for rejection"})
                elif row_id in self.broken_ids or row_id in self.flaky_ids:
                    self.flaky_ids.discard(row_id)
                    stream_failed = True
                    errors.append({"index": i, "RowId": row_id,
                                   "reason": "stream unavailable (ProvisionedThroughputExceededException): retry later"})
                else:
                    accepted += 1
                    self.accepted_ids.append(row_id)
        answer = {"accepted": accepted, "rejected": len(errors), "records": accepted,
                  "errors": errors, "requestId": f"r{number}"}
        return (503 if stream_failed else 200), answer


def _handler(api: FakeAPI):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like API Gateway

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path != PATH:
                return self.reply(403, {"message": "Missing Authentication Token"})
            try:
                body = json.loads(raw)
            except ValueError:
                return self.reply(400, {"message": "body is not valid JSON"})
            self.reply(*api.answer(body))

        def reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (timeout test)

        def log_message(self, *args):  # keep the test output quiet
            pass

    return Handler


@pytest.fixture
def api():
    fake = FakeAPI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}{PATH}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch):
    monkeypatch.setattr(client, "BACKOFF_BASE", 0.001)
    monkeypatch.setattr(client, "BACKOFF_CAP", 0.01)


def make_rows(n: int, reject_every: int = 0) -> list[dict]:
    """Invented rows, each with RowId = its position."""
    rows = []
    for i in range(n):
        rows.append({
            "InvoiceNo": str(800000 + i),  # one line per invoice: batches are exactly batch_size
            "StockCode": f"7{i % 500:04d}",
            "Description": REJECT if reject_every and i % reject_every == 0 else f"INVENTED THING {i % 37}",
            "Quantity": (i % 9) - 2,
            "InvoiceDate": f"2011-03-{1 + i % 28:02d}T10:{i % 60:02d}:00",
            "UnitPrice": round(0.42 + (i % 17) * 0.5, 2),
            "CustomerID": None if i % 6 == 0 else str(13000 + i % 90),
            "Country": "Germany",
            "RowId": str(i),
        })
    return rows


def check_exact(summary: client.SendSummary, api: FakeAPI, n: int) -> None:
    """Every row counted once; accepted rows reached the API's stream exactly once."""
    assert summary.sent == n
    assert summary.accepted + summary.rejected == n
    assert len(api.accepted_ids) == summary.accepted
    assert len(set(api.accepted_ids)) == len(api.accepted_ids), "duplicates written"
    assert sum(summary.statuses.values()) == summary.requests


# ---------------------------------------------------------------------------
# Choosing rows
# ---------------------------------------------------------------------------


@pytest.fixture
def frame() -> pd.DataFrame:
    rows = make_rows(10)
    df = pd.DataFrame(rows).drop(columns="RowId")
    df["InvoiceDate"] = pd.to_datetime(
        [f"2011-01-{d:02d} 09:30" for d in (3, 5, 9, 12, 15, 20, 25, 28, 30, 31)]
    )
    return df


def test_select_by_index(frame):
    assert list(client.select_rows(frame, index=4).index) == [4]
    assert list(client.select_rows(frame, index=[7, 2, 9]).index) == [7, 2, 9]
    assert list(client.select_rows(frame, index=slice(2, 5)).index) == [2, 3, 4]
    assert list(client.select_rows(frame, index=-1).index) == [9]
    assert list(client.select_rows(frame.iloc[5:], index=0).index) == [5]  # positions, labels kept


def test_select_first_n(frame):
    assert list(client.select_rows(frame, first=3).index) == [0, 1, 2]
    assert client.select_rows(frame, first=0).empty
    assert len(client.select_rows(frame, first=100)) == 10
    with pytest.raises(ValueError):
        client.select_rows(frame, first=-1)


def test_select_date_range_start_inclusive_end_exclusive(frame):
    picked = client.select_rows(frame, start="2011-01-09 09:30", end="2011-01-20 09:30")
    assert list(picked.index) == [2, 3, 4]
    assert list(client.select_rows(frame, start=pd.Timestamp("2011-01-28")).index) == [7, 8, 9]
    assert list(client.select_rows(frame, end="2011-01-05 09:30").index) == [0]
    as_text = frame.assign(InvoiceDate=frame["InvoiceDate"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    assert list(client.select_rows(as_text, start="2011-01-28").index) == [7, 8, 9]


def test_select_all_or_exactly_one_selector(frame):
    assert client.select_rows(frame).equals(frame)
    with pytest.raises(ValueError, match="choose one selector"):
        client.select_rows(frame, first=2, start="2011-01-01")
    with pytest.raises(ValueError, match="choose one selector"):
        client.select_rows(frame, index=0, first=2)


def test_to_payload_rows(frame):
    typed = frame.astype({"Quantity": "int64", "UnitPrice": "float64"})
    rows = client.to_payload_rows(client.select_rows(typed, index=[3, 8]))
    assert [r["RowId"] for r in rows] == ["3", "8"]
    assert rows[0]["InvoiceDate"] == "2011-01-12T09:30:00"
    assert rows[0]["CustomerID"] == "13003" and type(rows[0]["Quantity"]) is int
    assert json.loads(json.dumps(rows)) == rows  # JSON-ready
    assert "RowId" not in client.to_payload_rows(typed, row_ids=False)[0]


# ---------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------


def test_batches(api):
    rows = make_rows(1234)
    summary = client.send(api.url, rows, batch_size=500, progress=False)
    assert summary.requests == math.ceil(1234 / 500) == 3
    assert summary.statuses == {200: 3}
    assert summary.accepted == 1234 and summary.rejected == 0 and summary.errors == []
    assert sorted(len(b) for b in api.bodies) == [234, 500, 500]
    assert sorted(api.accepted_ids, key=int) == [str(i) for i in range(1234)]
    assert summary.seconds > 0 and summary.rows_per_s > 0
    check_exact(summary, api, 1234)
    assert "1,234 accepted" in str(summary)


def test_one_row_per_request(api):
    summary = client.send(api.url, make_rows(7), one_per_request=True, progress=False)
    assert summary.requests == 7 and summary.accepted == 7
    assert all(isinstance(body, dict) for body in api.bodies)  # a JSON object, not a list
    check_exact(summary, api, 7)


def test_rejected_rows_are_mapped_back_to_positions_and_row_ids(api):
    rows = make_rows(95, reject_every=10)
    summary = client.send(api.url, rows, batch_size=20, concurrency=3, progress=False)
    rejected = list(range(0, 95, 10))
    assert summary.rejected == len(rejected)
    assert [e["index"] for e in summary.errors] == rejected
    assert [e["RowId"] for e in summary.errors] == [str(i) for i in rejected]
    assert {e["reason"] for e in summary.errors} == {"Description is marked for rejection"}
    check_exact(summary, api, 95)


def test_503_partial_failure_retries_only_the_failed_rows(api):
    api.flaky_ids = {"3", "4", "250"}
    summary = client.send(api.url, make_rows(300), batch_size=100, progress=False)
    assert summary.accepted == 300 and summary.rejected == 0
    assert summary.statuses == {200: 3, 503: 2}
    retried = [b for b in api.bodies if len(b) < 100]
    assert sorted(len(b) for b in retried) == [1, 2]  # only the rows that failed
    assert sorted(r["RowId"] for b in retried for r in b) == ["250", "3", "4"]
    check_exact(summary, api, 300)


def test_rows_that_never_reach_the_stream_are_rejected_after_retries(api):
    api.broken_ids = {"7"}
    summary = client.send(api.url, make_rows(20), retries=2, progress=False)
    assert summary.accepted == 19 and summary.rejected == 1
    assert summary.statuses == {503: 3}
    (error,) = summary.errors
    assert error["index"] == 7 and error["RowId"] == "7"
    assert error["reason"].startswith("gave up after 2 retries: stream unavailable")
    check_exact(summary, api, 20)


def test_502_and_429_are_retried(api):
    api.status_queue = [502, 429, 504]
    summary = client.send(api.url, make_rows(50), batch_size=50, progress=False)
    assert summary.accepted == 50 and summary.retries == 3
    assert summary.statuses == {502: 1, 429: 1, 504: 1, 200: 1}
    check_exact(summary, api, 50)


def test_500_is_not_retried_and_rejects_its_rows(api):
    api.status_queue = [500]
    summary = client.send(api.url, make_rows(30), batch_size=10, concurrency=1, progress=False)
    assert summary.statuses == {500: 1, 200: 2}
    assert summary.accepted == 20 and summary.rejected == 10
    assert [e["index"] for e in summary.errors] == list(range(10))
    assert {e["reason"] for e in summary.errors} == {"HTTP 500: internal error"}
    check_exact(summary, api, 30)


def test_413_is_not_retried(api):
    api.max_rows = 40
    summary = client.send(api.url, make_rows(120), batch_size=50, progress=False)
    assert summary.requests == 3 and summary.statuses == {413: 2, 200: 1}
    assert summary.accepted == 20 and summary.rejected == 100
    assert summary.errors[0]["reason"] == "HTTP 413: too many rows in one request: 50 > 40"
    check_exact(summary, api, 120)


def test_persistent_503_without_counts_gives_up(api):
    api.status_queue = [503] * 4
    summary = client.send(api.url, make_rows(5), retries=3, progress=False)
    assert summary.accepted == 0 and summary.rejected == 5
    assert summary.errors[0]["reason"] == "gave up after 3 retries: HTTP 503: Service Unavailable"
    check_exact(summary, api, 5)


def test_timeout_is_retried(api):
    api.delay_first = 1.0
    summary = client.send(api.url, make_rows(10), timeout=0.3, progress=False)
    assert summary.accepted == 10 and summary.retries >= 1
    # the slow first request was processed too: the RowIds let consumers drop the repeats
    assert Counter(api.accepted_ids).most_common(1)[0][1] <= 2


def test_concurrency_keeps_exact_counts(api):
    api.flaky_ids = {str(i) for i in range(0, 3000, 97)}
    api.status_queue = [502, 503, 502]
    rows = make_rows(3000, reject_every=41)
    summary = client.send(api.url, rows, batch_size=60, concurrency=8, progress=False)
    rejected = set(range(0, 3000, 41))
    assert summary.rejected == len(rejected)
    assert {e["index"] for e in summary.errors} == rejected
    assert summary.accepted == 3000 - len(rejected)
    assert sorted(api.accepted_ids, key=int) == [str(i) for i in range(3000) if i not in rejected]
    check_exact(summary, api, 3000)


def test_unreachable_url_raises_a_helpful_error():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(client.IngestError) as caught:
        client.send(f"http://127.0.0.1:{port}{PATH}", make_rows(3), retries=2, progress=False)
    message = str(caught.value)
    assert "after 3 attempts" in message
    assert "python -m ecomlib local status" in message
    assert caught.value.summary.accepted == 0


def test_wrong_path_raises(api):
    with pytest.raises(client.IngestError, match="HTTP 403"):
        client.send(api.url.replace("/invoices", "/orders"), make_rows(3), progress=False)


def test_bad_arguments():
    with pytest.raises(ValueError):
        client.send("localhost:3000/dev/invoices", [], progress=False)
    with pytest.raises(ValueError):
        client.send("http://127.0.0.1:9/dev/invoices", [], batch_size=20_000, progress=False)


def test_no_rows_no_requests(api):
    summary = client.send(api.url, [], progress=False)
    assert (summary.sent, summary.requests, summary.statuses) == (0, 0, {})


def test_nan_and_numpy_values_are_sent_as_json(api):
    import numpy as np

    row = make_rows(1)[0] | {"UnitPrice": float("nan"), "Quantity": np.int64(5), "CustomerID": pd.NA}
    client.send(api.url, [row], progress=False)
    sent = api.bodies[0][0]
    assert sent["UnitPrice"] is None and sent["Quantity"] == 5 and sent["CustomerID"] is None


def test_send_a_data_frame(api, frame):
    typed = frame.astype({"Quantity": "int64", "UnitPrice": "float64"})
    summary = client.send(api.url, client.select_rows(typed, first=4), progress=False)
    assert summary.accepted == 4
    assert [r["RowId"] for r in api.bodies[0]] == ["0", "1", "2", "3"]


def test_post_rows_returns_the_raw_response(api):
    response = client.post_rows(api.url, make_rows(2))
    assert response.status_code == 200 and response.json()["accepted"] == 2
    response = client.post_rows(api.url, make_rows(1)[0])
    assert response.status_code == 200 and api.bodies[-1]["RowId"] == "0"


def test_shared_session_is_used(api):
    import requests

    with requests.Session() as session:
        summary = client.send(api.url, make_rows(10), batch_size=5, session=session, progress=False)
    assert summary.accepted == 10


# ---------------------------------------------------------------------------
# Contract: the client against the real ingest function's code (Kinesis faked)
# ---------------------------------------------------------------------------


def test_client_and_ingest_function_agree(monkeypatch):
    import base64
    import sys

    from ecomlib.deploy import load_handler

    handler = load_handler("ingest_api")
    monkeypatch.setenv("STREAM_NAME", "ecom-contract")
    monkeypatch.setattr(sys.modules["shared.aws"], "_sleep", lambda s: None)  # the one backoff's sleep

    written: list[dict] = []
    calls = Counter()

    class Kinesis:  # invoice 800003 fails 6 times: all 5 tries of the first request, then once more
        def put_records(self, StreamName, Records):  # noqa: N803
            answers = []
            for entry in Records:
                calls[entry["PartitionKey"]] += 1
                if entry["PartitionKey"] == "800003" and calls["800003"] <= 6:
                    answers.append({"ErrorCode": "ProvisionedThroughputExceededException"})
                else:
                    written.extend(json.loads(x) for x in entry["Data"].decode().splitlines())
                    answers.append({"SequenceNumber": "1", "ShardId": "shardId-000000000000"})
            return {"FailedRecordCount": sum("ErrorCode" in a for a in answers), "Records": answers}

    monkeypatch.setattr(handler, "client", lambda service, **kwargs: Kinesis())

    class Gateway(BaseHTTPRequestHandler):  # API Gateway: HTTP -> proxy event -> HTTP
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            event = {"httpMethod": "POST", "resource": "/invoices", "path": "/invoices",
                     "requestContext": {"requestId": f"gw-{time.monotonic_ns()}"},
                     "body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
            answer = handler.lambda_handler(event, None)
            data = answer["body"].encode()
            self.send_response(answer["statusCode"])
            for name, value in answer["headers"].items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}{PATH}"
        rows = make_rows(200)
        rows[5]["Quantity"] = "5"
        rows[150]["InvoiceDate"] = "someday"
        summary = client.send(url, rows, batch_size=50, concurrency=2, progress=False)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert summary.accepted == 198 and summary.rejected == 2
    assert [(e["index"], e["RowId"]) for e in summary.errors] == [(5, "5"), (150, "150")]
    assert summary.errors[0]["reason"] == "Quantity must be an integer, got '5'"
    assert summary.statuses == {200: 4, 503: 1}  # invoice 800003: one 503, then its rows retried
    assert sorted(int(r["RowId"]) for r in written) == [i for i in range(200) if i not in (5, 150)]


def test_batches_end_where_an_invoice_ends():
    rows = [{"InvoiceNo": str(900000 + i // 7), "RowId": str(i)} for i in range(100)]
    batches = list(client._batches(rows, 10, one_per_request=False))
    assert [p for b in batches for p in b] == list(range(100))
    for batch in batches[:-1]:
        last, following = rows[batch[-1]], rows[batch[-1] + 1]
        assert len(batch) >= 10 and last["InvoiceNo"] != following["InvoiceNo"]
    assert list(client._batches(rows[:3], 10, one_per_request=True)) == [[0], [1], [2]]
