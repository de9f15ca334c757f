"""Unit tests of the Lambda ``lambda_src/ingest_api/handler.py`` without AWS.

Kinesis is replaced by small fake clients that record their ``put_records`` calls.
The sample events in ``lambda_src/ingest_api/events/`` must give exactly their
``*_response.json`` files: status, headers and the decoded JSON body are compared in
full (nothing is ignored: the request id comes from the event).
"""

from __future__ import annotations

import base64
import json
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from ecomlib.deploy import load_handler

REPO = Path(__file__).resolve().parents[2]
LAMBDA_DIR = REPO / "lambda_src" / "ingest_api"
EVENTS = LAMBDA_DIR / "events"
STREAM = "ecom-test-invoices"




H = load_handler("ingest_api")  # as in its deployment package: `shared` importable
AWS = sys.modules["shared.aws"]  # the shared client cache and backoff the handler uses


# ---------------------------------------------------------------------------
# Fakes and helpers
# ---------------------------------------------------------------------------


class FakeKinesis:
    """Records every put_records call; ``fail`` decides which entries fail.

    ``fail(call_number, entry) -> ErrorCode or None`` (call_number starts at 1).
    """

    def __init__(self, fail=None):
        self.calls: list[list[dict]] = []
        self.fail = fail or (lambda call, entry: None)

    def put_records(self, StreamName, Records):  # noqa: N803 - boto3's argument names
        assert StreamName == STREAM
        assert 1 <= len(Records) <= 500
        assert sum(len(r["Data"]) + len(r["PartitionKey"]) for r in Records) <= 5 * 1024 * 1024
        self.calls.append([dict(r) for r in Records])
        answers, failed = [], 0
        for entry in Records:
            code = self.fail(len(self.calls), entry)
            if code:
                failed += 1
                answers.append({"ErrorCode": code, "ErrorMessage": "Rate exceeded for shard"})
            else:
                answers.append({"SequenceNumber": str(len(answers)), "ShardId": "shardId-000000000000"})
        return {"FailedRecordCount": failed, "Records": answers}

    @property
    def entries(self) -> list[dict]:
        return [entry for call in self.calls for entry in call]

    def written_rows(self) -> list[dict]:
        """Rows of every record put (decoded JSON Lines), in put order."""
        return [json.loads(line) for e in self.entries for line in e["Data"].decode().splitlines()]


class RaisingKinesis:
    def __init__(self, code: str):
        self.code = code
        self.calls = 0

    def put_records(self, StreamName, Records):  # noqa: N803
        self.calls += 1
        raise ClientError({"Error": {"Code": self.code, "Message": "boom"}}, "PutRecords")


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("STREAM_NAME", STREAM)
    monkeypatch.delenv("MAX_RECORD_BYTES", raising=False)
    monkeypatch.setattr(AWS, "_sleep", lambda seconds: None)
    AWS.client.cache_clear()


@pytest.fixture
def kinesis(monkeypatch) -> FakeKinesis:
    fake = FakeKinesis()
    monkeypatch.setattr(H, "client", lambda service, **kwargs: fake)
    return fake


def use(monkeypatch, client):
    monkeypatch.setattr(H, "client", lambda service, **kwargs: client)
    return client


def row(**changes) -> dict:
    """An invented, valid row (not from the real data set)."""
    base = {
        "InvoiceNo": "600100",
        "StockCode": "99001B",
        "Description": "MINT CHEVRON SNACK BOX",
        "Quantity": 6,
        "InvoiceDate": "2011-05-04T12:30:00",
        "UnitPrice": Decimal("2.55"),
        "CustomerID": "15001",
        "Country": "United Kingdom",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def event(body, method="POST", request_id="req-1", b64=False) -> dict:
    if b64:
        raw = body if isinstance(body, bytes) else body.encode()
        body = base64.b64encode(raw).decode()
    return {
        "resource": "/invoices",
        "path": "/invoices",
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "queryStringParameters": None,
        "requestContext": {"requestId": request_id, "stage": "dev"},
        "body": body,
        "isBase64Encoded": b64,
    }


def post(rows, **kwargs) -> tuple[int, dict, dict]:
    """POST rows (any JSON value, or a str/bytes body as is): (status, body, headers)."""
    body = rows if isinstance(rows, (str, bytes)) else json.dumps(rows, default=float)
    answer = H.lambda_handler(event(body, **kwargs), None)
    assert set(answer) == {"statusCode", "headers", "body"}
    assert answer["headers"]["Content-Type"] == "application/json"
    assert "Traceback" not in answer["body"]
    return answer["statusCode"], json.loads(answer["body"]), answer["headers"]


def invented_rows(n: int, invoices: int = 7) -> list[dict]:
    return [
        {
            "InvoiceNo": str(700000 + i % invoices),
            "StockCode": f"9{i % 1000:04d}",
            "Description": f"INVENTED ITEM {i}",
            "Quantity": (i % 13) - 3,
            "InvoiceDate": "2011-06-01 09:00",
            "UnitPrice": round(0.5 + (i % 40) * 0.25, 2),
            "CustomerID": None if i % 5 == 0 else str(16000 + i % 50),
            "Country": "Norway",
            "RowId": str(i),
        }
        for i in range(n)
    ]


# ---------------------------------------------------------------------------
# Sample events
# ---------------------------------------------------------------------------

SAMPLES = ["post_batch", "post_bad_json", "get_not_allowed"]


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_event_gives_its_expected_response(name, kinesis):
    sample = json.loads((EVENTS / f"{name}.json").read_text())
    expected = json.loads((EVENTS / f"{name}_response.json").read_text())
    answer = H.lambda_handler(sample, None)
    assert answer["statusCode"] == expected["statusCode"]
    assert answer["headers"] == expected["headers"]
    assert json.loads(answer["body"]) == json.loads(expected["body"])
    assert json.loads(answer["body"])["requestId"] == sample["requestContext"]["requestId"]


def test_sample_events_have_the_rest_proxy_shape():
    keys = {"resource", "path", "httpMethod", "headers", "multiValueHeaders", "queryStringParameters",
            "pathParameters", "stageVariables", "requestContext", "body", "isBase64Encoded"}
    for name in SAMPLES:
        sample = json.loads((EVENTS / f"{name}.json").read_text())
        assert keys <= set(sample), name
        assert sample["resource"] == sample["path"] == "/invoices"
        ctx = sample["requestContext"]
        assert ctx["accountId"] == "123456789012" and ctx["stage"] == "dev"
        assert {"resourceId", "resourcePath", "httpMethod", "requestId", "apiId"} <= set(ctx)


def test_post_batch_sample_writes_normalised_json_lines(kinesis):
    sample = json.loads((EVENTS / "post_batch.json").read_text())
    H.lambda_handler(sample, None)
    assert [e["PartitionKey"] for e in kinesis.entries] == ["580001", "580002", "C580003"]
    written = kinesis.written_rows()
    assert [r["RowId"] for r in written] == ["0", "1", "2"]
    assert written[1]["CustomerID"] is None
    assert written[2]["Quantity"] == -4
    assert written[2]["InvoiceDate"] == "2011-11-03T09:05:00"  # Kaggle form normalised
    assert b'"UnitPrice":2.55,' in kinesis.entries[0]["Data"]


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

GOOD = [
    # (changes, field, normalised value)
    ({}, "Quantity", 6),
    ({"Quantity": -12}, "Quantity", -12),  # cancellation / return
    ({"Quantity": 0}, "Quantity", 0),
    ({"Quantity": Decimal("6.0")}, "Quantity", 6),
    ({"Quantity": 6.0}, "Quantity", 6),
    ({"InvoiceNo": 600100}, "InvoiceNo", "600100"),
    ({"InvoiceNo": "C600100"}, "InvoiceNo", "C600100"),
    ({"StockCode": 99001}, "StockCode", "99001"),
    ({"StockCode": "POST"}, "StockCode", "POST"),
    ({"UnitPrice": 0}, "UnitPrice", Decimal(0)),
    ({"UnitPrice": Decimal("-11.5")}, "UnitPrice", Decimal("-11.5")),  # a negative price is a fact
    ({"UnitPrice": 3}, "UnitPrice", Decimal(3)),
    ({"UnitPrice": 2.55}, "UnitPrice", Decimal("2.55")),  # a Python float: its shortest text
    ({"UnitPrice": Decimal("0.001")}, "UnitPrice", Decimal("0.001")),
    ({"UnitPrice": Decimal("1.2340")}, "UnitPrice", Decimal("1.2340")),  # kept as sent (3 decimals that count)
    ({"InvoiceDate": "2011-05-04T12:30"}, "InvoiceDate", "2011-05-04T12:30:00"),
    ({"InvoiceDate": "2011-05-04 12:30:15"}, "InvoiceDate", "2011-05-04T12:30:15"),
    ({"InvoiceDate": "5/4/2011 8:05"}, "InvoiceDate", "2011-05-04T08:05:00"),
    ({"InvoiceDate": "12/31/2011 23:59"}, "InvoiceDate", "2011-12-31T23:59:00"),
    ({"CustomerID": None}, "CustomerID", None),
    ({"CustomerID": ...}, "CustomerID", None),
    ({"CustomerID": ""}, "CustomerID", None),
    ({"CustomerID": 15001}, "CustomerID", "15001"),
    ({"CustomerID": Decimal("15001.0")}, "CustomerID", "15001"),
    ({"CustomerID": 15001.0}, "CustomerID", "15001"),
    ({"CustomerID": "15001.0"}, "CustomerID", "15001"),
    ({"Description": None}, "Description", None),
    ({"Description": ...}, "Description", None),
    ({"Description": ""}, "Description", None),
    ({"Description": "lost in transit "}, "Description", "lost in transit "),
    ({"Country": "EIRE"}, "Country", "EIRE"),
    ({"RowId": "17"}, "RowId", "17"),
    ({"RowId": 17}, "RowId", "17"),
    ({"Extra": "dropped"}, "RowId", None),
]


@pytest.mark.parametrize("changes, name, value", GOOD)
def test_valid_rows_are_normalised(changes, name, value):
    clean, reason = H.validate_row(row(**changes))
    assert reason is None
    assert list(clean) == list(H.FIELDS)  # unknown fields dropped, fixed order
    assert clean[name] == value
    assert type(clean[name]) is type(value)


def test_missing_row_id_gets_the_default():
    clean, _ = H.validate_row(row(), default_row_id="req-9:4")
    assert clean["RowId"] == "req-9:4"
    clean, _ = H.validate_row(row(RowId="mine"), default_row_id="req-9:4")
    assert clean["RowId"] == "mine"


BAD = [
    ("not a row", "row must be a JSON object, got string"),
    ([1, 2], "row must be a JSON object, got array"),
    (None, "row must be a JSON object, got null"),
    (row(StockCode=...), "missing required field 'StockCode'"),
    (row(InvoiceNo=None), "missing required field 'InvoiceNo'"),
    (row(Quantity=...), "missing required field 'Quantity'"),
    (row(InvoiceDate=...), "missing required field 'InvoiceDate'"),
    (row(UnitPrice=None), "missing required field 'UnitPrice'"),
    (row(Country=...), "missing required field 'Country'"),
    (row(InvoiceNo=""), "InvoiceNo must not be empty"),
    (row(StockCode="  "), "StockCode must not be empty"),
    (row(InvoiceNo=True), "InvoiceNo must be a string or an integer, got true"),
    (row(StockCode=Decimal("1.5")), "StockCode must be a string or an integer, got 1.5"),
    (row(InvoiceNo="X" * 21), "InvoiceNo is too long (at most 20 characters)"),
    (row(Quantity="6"), "Quantity must be an integer, got '6'"),
    (row(Quantity=Decimal("6.5")), "Quantity must be an integer, got 6.5"),
    (row(Quantity=True), "Quantity must be an integer, got true"),
    (row(Quantity=float("nan")), "Quantity must be an integer, got nan"),
    (row(Quantity=10**20), "Quantity is out of range"),
    (row(Quantity=Decimal("1E+999999999")), "Quantity must be an integer, got 1E+999999999"),
    (row(UnitPrice="2.55"), "UnitPrice must be a number, got '2.55'"),
    (row(UnitPrice=False), "UnitPrice must be a number, got false"),
    (row(UnitPrice=float("inf")), "UnitPrice must be a finite number"),
    (row(UnitPrice=Decimal("1e12")), "UnitPrice is out of range"),
    (row(UnitPrice=Decimal("1e-30")), "UnitPrice has more than 3 decimal places"),
    (row(UnitPrice=Decimal("2.5559")), "UnitPrice has more than 3 decimal places"),
    (row(InvoiceDate="yesterday"),
     "InvoiceDate must look like YYYY-MM-DDTHH:MM:SS or M/D/YYYY H:MM, got 'yesterday'"),
    (row(InvoiceDate="2011-05-04"),
     "InvoiceDate must look like YYYY-MM-DDTHH:MM:SS or M/D/YYYY H:MM, got '2011-05-04'"),
    (row(InvoiceDate=20110504), "InvoiceDate must be a string, got 20110504"),
    (row(InvoiceDate="2011-02-30T10:00:00"),
     "InvoiceDate is not a real date and time: '2011-02-30T10:00:00'"),
    (row(InvoiceDate="13/1/2011 8:00"), "InvoiceDate is not a real date and time: '13/1/2011 8:00'"),
    (row(InvoiceDate="1999-12-31T23:59:00"),
     "InvoiceDate out of range (years 2000-2100): '1999-12-31T23:59:00'"),
    (row(InvoiceDate="2101-01-01T00:00:00"),
     "InvoiceDate out of range (years 2000-2100): '2101-01-01T00:00:00'"),
    (row(CustomerID=Decimal("15001.5")), "CustomerID must be a string, an integer or null, got 15001.5"),
    (row(CustomerID=True), "CustomerID must be a string, an integer or null, got true"),
    (row(CustomerID=["15001"]), "CustomerID must be a string, an integer or null, got a JSON array"),
    (row(Description=42), "Description must be a string or null, got 42"),
    (row(Country=""), "Country must not be empty"),
    (row(Country=44), "Country must be a string, got 44"),
    (row(RowId="r" * 65), "RowId must be a string or an integer of at most 64 characters, got "
                          "'rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr...'"),
    (row(RowId=1.5), "RowId must be a string or an integer of at most 64 characters, got 1.5"),
]


@pytest.mark.parametrize("bad, reason", BAD)
def test_invalid_rows_give_a_reason(bad, reason):
    assert H.validate_row(bad) == (None, reason)


def test_every_reason_is_a_short_sentence_naming_the_field():
    for bad, reason in BAD:
        assert len(reason) < 120
        if isinstance(bad, dict):
            assert any(name in reason for name in H.FIELDS), reason


# ---------------------------------------------------------------------------
# Packing and chunking
# ---------------------------------------------------------------------------


def clean_rows(rows: list[dict]) -> list[dict]:
    out = []
    for i, r in enumerate(rows):
        clean, reason = H.validate_row(r, default_row_id=str(i))
        assert reason is None, reason
        out.append(clean)
    return out


def test_pack_groups_by_invoice_keeping_first_seen_and_row_order():
    rows = clean_rows([
        row(InvoiceNo="B", StockCode="1"),
        row(InvoiceNo="A", StockCode="2"),
        row(InvoiceNo="B", StockCode="3"),
        row(InvoiceNo="C", StockCode="4"),
        row(InvoiceNo="A", StockCode="5"),
    ])
    records = H.pack_records(rows, 1_000_000)
    assert [r["PartitionKey"] for r in records] == ["B", "A", "C"]
    assert [r["rows"] for r in records] == [2, 2, 1]
    assert [r["positions"] for r in records] == [[0, 2], [1, 4], [3]]
    codes = [[json.loads(x)["StockCode"] for x in r["Data"].decode().splitlines()] for r in records]
    assert codes == [["1", "3"], ["2", "5"], ["4"]]


def test_record_data_is_compact_json_lines_in_field_order():
    rows = clean_rows([row(RowId="r1"), row(StockCode="99002", Description=None, CustomerID=None, RowId="r2")])
    (record,) = H.pack_records(rows, 1_000_000)
    data = record["Data"]
    assert data.endswith(b"\n") and data.count(b"\n") == 2
    first = data.split(b"\n")[0]
    assert first == (
        b'{"InvoiceNo":"600100","StockCode":"99001B","Description":"MINT CHEVRON SNACK BOX",'
        b'"Quantity":6,"InvoiceDate":"2011-05-04T12:30:00","UnitPrice":2.55,'
        b'"CustomerID":"15001","Country":"United Kingdom","RowId":"r1"}'
    )
    second = json.loads(data.split(b"\n")[1])
    assert list(second) == list(H.FIELDS)
    assert second["Description"] is None and second["CustomerID"] is None


def test_non_ascii_text_is_utf8():
    (record,) = H.pack_records(clean_rows([row(Description="CRÈME BRÛLÉE SET", Country="España")]), 10_000)
    assert "CRÈME BRÛLÉE SET".encode() in record["Data"]
    assert json.loads(record["Data"])["Country"] == "España"


def test_big_invoice_is_split_in_order_under_max_bytes():
    rows = clean_rows([row(StockCode=str(10000 + i), RowId=f"{i:02d}") for i in range(50)])
    line = len(H.encode_row(rows[0]))
    max_bytes = line * 8 + len("600100") + 5  # room for 8 rows per record
    records = H.pack_records(rows, max_bytes)
    assert [r["rows"] for r in records] == [8] * 6 + [2]
    assert all(r["PartitionKey"] == "600100" for r in records)
    assert all(H.record_size(r) <= max_bytes for r in records)
    ids = [json.loads(x)["RowId"] for r in records for x in r["Data"].decode().splitlines()]
    assert ids == [f"{i:02d}" for i in range(50)]


def test_pack_refuses_a_row_larger_than_a_record():
    with pytest.raises(ValueError):
        H.pack_records(clean_rows([row(Description="x" * 500)]), 300)


def test_chunks_hold_at_most_500_records():
    records = [{"PartitionKey": str(i), "Data": b"x\n", "rows": 1} for i in range(1234)]
    chunks = H.chunk_records(records)
    assert [len(c) for c in chunks] == [500, 500, 234]
    assert [i for c in chunks for i in c] == list(range(1234))


def test_chunks_hold_at_most_5_mib():
    mib = 1024 * 1024
    records = [{"PartitionKey": "k", "Data": b"x" * (mib - 1), "rows": 1} for _ in range(12)]
    chunks = H.chunk_records(records)
    assert [len(c) for c in chunks] == [5, 5, 2]
    for chunk in chunks:
        assert sum(H.record_size(records[i]) for i in chunk) <= 5 * mib
    # one byte more per record: only 4 fit
    records = [{"PartitionKey": "k", "Data": b"x" * mib, "rows": 1} for _ in range(5)]
    assert [len(c) for c in H.chunk_records(records)] == [4, 1]


def test_prices_stay_exact_in_the_record_bytes(kinesis):
    body = (
        '[{"InvoiceNo":"600200","StockCode":"99003","Quantity":3,"InvoiceDate":"2011-05-04T12:30",'
        '"UnitPrice":2.55,"Country":"Japan"},'
        '{"InvoiceNo":"600200","StockCode":"99004","Quantity":1,"InvoiceDate":"2011-05-04T12:30",'
        '"UnitPrice":0.3,"Country":"Japan"},'
        '{"InvoiceNo":"600200","StockCode":"99005","Quantity":1,"InvoiceDate":"2011-05-04T12:30",'
        '"UnitPrice":1.10,"Country":"Japan"}]'
    )
    status, answer, _ = post(body)
    assert status == 200 and answer["accepted"] == 3
    data = kinesis.entries[0]["Data"]
    assert b'"UnitPrice":2.55,' in data
    assert b'"UnitPrice":0.3,' in data
    assert b'"UnitPrice":1.10,' in data  # kept as sent
    assert b"2.5499" not in data and b"0.30000000000000004" not in data and b"e-" not in data.lower()
    assert json.loads(data.splitlines()[0], parse_float=Decimal)["UnitPrice"] == Decimal("2.55")


# ---------------------------------------------------------------------------
# Requests: success, rejections, wrappers
# ---------------------------------------------------------------------------


def test_batch_with_good_and_bad_rows(kinesis):
    rows = [row(RowId="a"), row(Quantity="6", RowId="b"), row(InvoiceNo="600101"), "oops"]
    status, answer, _ = post(rows, request_id="req-7")
    assert status == 200
    assert answer == {
        "accepted": 2,
        "rejected": 2,
        "records": 2,
        "errors": [
            {"index": 1, "RowId": "b", "reason": "Quantity must be an integer, got '6'"},
            {"index": 3, "RowId": None, "reason": "row must be a JSON object, got string"},
        ],
        "requestId": "req-7",
    }
    # RowIds: kept when sent, else requestId:index
    assert [r["RowId"] for r in kinesis.written_rows()] == ["a", "req-7:2"]


def test_single_object_and_rows_wrapper(kinesis):
    status, answer, _ = post(row())
    assert (status, answer["accepted"], answer["records"]) == (200, 1, 1)
    status, answer, _ = post({"rows": [row(), row(StockCode="99009")]})
    assert (status, answer["accepted"], answer["records"]) == (200, 2, 1)
    status, answer, _ = post({"rows": "nope"})
    assert status == 400 and answer["message"] == "'rows' must be a list of objects, got string"


def test_empty_list_is_ok_with_zero_counts(kinesis):
    status, answer, _ = post([])
    assert status == 200
    assert answer == {"accepted": 0, "rejected": 0, "records": 0, "errors": [], "requestId": "req-1"}
    assert kinesis.calls == []


def test_all_rows_invalid_makes_no_kinesis_call(kinesis):
    status, answer, _ = post([row(Quantity=None), row(Country="")])
    assert status == 200 and answer["accepted"] == 0 and answer["rejected"] == 2
    assert kinesis.calls == []


def test_many_rows_are_packed_per_invoice_and_chunked(kinesis):
    rows = invented_rows(5000, invoices=1200)
    status, answer, _ = post(rows)
    assert status == 200
    assert answer["accepted"] == 5000 and answer["records"] == 1200
    assert [len(call) for call in kinesis.calls] == [500, 500, 200]
    assert sorted(int(r["RowId"]) for r in kinesis.written_rows()) == list(range(5000))


def test_errors_list_is_capped(kinesis):
    rows = [row(Quantity="x")] * 1500 + [row()]
    status, answer, _ = post(rows)
    assert status == 200
    assert answer["rejected"] == 1500 and answer["accepted"] == 1
    assert len(answer["errors"]) == 1000 and answer["errors_truncated"] is True
    assert answer["errors"][0]["index"] == 0


def test_row_too_large_for_a_record_is_rejected(kinesis, monkeypatch):
    monkeypatch.setenv("MAX_RECORD_BYTES", "2000")
    status, answer, _ = post([row(), row(Description="y" * 3000)])
    assert status == 200 and answer["accepted"] == 1
    assert answer["errors"][0]["index"] == 1
    assert answer["errors"][0]["reason"].startswith("row is too large for one Kinesis record")


def test_max_record_bytes_splits_records(kinesis, monkeypatch):
    monkeypatch.setenv("MAX_RECORD_BYTES", "1000")
    rows = [row(StockCode=str(20000 + i)) for i in range(30)]
    status, answer, _ = post(rows)
    assert status == 200 and answer["accepted"] == 30 and answer["records"] > 1
    assert all(len(e["Data"]) + len(e["PartitionKey"]) <= 1000 for e in kinesis.entries)
    assert {e["PartitionKey"] for e in kinesis.entries} == {"600100"}


# ---------------------------------------------------------------------------
# Requests: 400 / 405 / 413 / 500
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, message",
    [
        (None, "body is empty: send a JSON object (one row) or a list of objects"),
        ("", "body is empty: send a JSON object (one row) or a list of objects"),
        ("   \n", "body is empty: send a JSON object (one row) or a list of objects"),
        ("42", "body must be a JSON object or a list of objects, got number"),
        ('"x"', "body must be a JSON object or a list of objects, got string"),
        ("null", "body must be a JSON object or a list of objects, got null"),
        ("[1,", "body is not valid JSON: Expecting value (line 1, column 4)"),
        ("{'a': 1}", "body is not valid JSON: Expecting property name enclosed in double quotes "
                     "(line 1, column 2)"),
        ('[{"UnitPrice": NaN}]', "body is not valid JSON: NaN is not valid JSON"),
        ("[" * 100_000, "body is not valid JSON: nested too deeply"),
        ("[" + "9" * 5000 + "]",
         "body is not valid JSON: Exceeds the limit (4300 digits) for integer string conversion"),
    ],
)
def test_bad_bodies_are_400(body, message, kinesis):
    answer = H.lambda_handler(event(body), None)
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"]) == {"message": message, "requestId": "req-1"}
    assert kinesis.calls == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods_are_405_with_allow_header(method, kinesis):
    answer = H.lambda_handler(event(None, method=method), None)
    assert answer["statusCode"] == 405
    assert answer["headers"] == {"Content-Type": "application/json", "Allow": "POST"}
    assert json.loads(answer["body"])["message"].startswith(f"method {method} not allowed")


def test_too_many_rows_is_413(kinesis):
    status, answer, _ = post([{}] * (H.MAX_ROWS_PER_REQUEST + 1))
    assert status == 413
    assert "10001 > 10000" in answer["message"]
    assert kinesis.calls == []


def test_exactly_the_maximum_is_accepted(kinesis):
    status, answer, _ = post([{}] * H.MAX_ROWS_PER_REQUEST)
    assert status == 200 and answer["rejected"] == H.MAX_ROWS_PER_REQUEST


def test_base64_body_is_decoded(kinesis):
    body = json.dumps([row(Description="THÉ VERT TIN")], default=float).encode()
    status, answer, _ = post(body, b64=True)
    assert status == 200 and answer["accepted"] == 1
    assert kinesis.written_rows()[0]["Description"] == "THÉ VERT TIN"


def test_bad_base64_is_400(kinesis):
    answer = H.lambda_handler({**event("[]"), "body": "***not base64***", "isBase64Encoded": True}, None)
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["message"] == "body is marked base64 but is not valid base64"


@pytest.mark.parametrize("b64", [True, False])
def test_non_utf8_body_is_400(b64, kinesis):
    raw = b'[{"Description": "caf\xe9"}]'  # ISO-8859-1, not UTF-8
    answer = H.lambda_handler(event(raw, b64=b64), None)
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["message"].startswith("body is not valid UTF-8")


def test_lone_surrogate_in_text_body_is_400(kinesis):
    answer = H.lambda_handler(event('[{"Description": "\ud800"}]'), None)
    assert answer["statusCode"] == 400


def test_utf8_bom_is_tolerated(kinesis):
    status, answer, _ = post(b"\xef\xbb\xbf" + json.dumps([row()], default=float).encode(), b64=True)
    assert status == 200 and answer["accepted"] == 1


def test_not_a_proxy_event_is_400():
    answer = H.lambda_handler(["not", "an", "event"], None)
    assert answer["statusCode"] == 400


def test_missing_stream_name_is_500_with_a_message(monkeypatch, kinesis):
    monkeypatch.delenv("STREAM_NAME")
    status, answer, _ = post([row()])
    assert status == 500 and "STREAM_NAME" in answer["message"]


def test_bad_max_record_bytes_is_500(monkeypatch, kinesis):
    monkeypatch.setenv("MAX_RECORD_BYTES", "2000000")
    status, answer, _ = post([row()])
    assert status == 500 and "MAX_RECORD_BYTES" in answer["message"]


def test_unexpected_error_is_500_without_traceback(monkeypatch, kinesis, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(H, "validate_row", explode)
    answer = H.lambda_handler(event(json.dumps([{"a": 1}]), request_id="req-boom"), None)
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"]) == {"message": "internal error", "requestId": "req-boom"}
    assert "Traceback" not in answer["body"] and "secret" not in answer["body"]
    assert "secret internals" in caplog.text  # ... but it is logged


def test_request_id_falls_back_to_the_lambda_context(kinesis):
    class Context:
        aws_request_id = "lambda-req-5"

    sample = event("[]")
    del sample["requestContext"]
    answer = H.lambda_handler(sample, Context())
    assert json.loads(answer["body"])["requestId"] == "lambda-req-5"


def test_one_summary_log_line_without_row_data(kinesis, caplog):
    caplog.set_level("INFO")
    post([row(Description="SECRET-DESCRIPTION"), row(Quantity="bad")], request_id="req-log")
    lines = [r.getMessage() for r in caplog.records if "req-log" in r.getMessage()]
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["status"] == 200 and summary["rows"] == 2
    assert summary["accepted"] == 1 and summary["rejected"] == 1 and summary["records"] == 1
    assert "SECRET" not in caplog.text


# ---------------------------------------------------------------------------
# Kinesis failures and retries
# ---------------------------------------------------------------------------


def test_only_failed_records_are_retried(monkeypatch):
    # first call: the records of invoices 700001 and 700003 fail; later calls succeed
    fake = use(monkeypatch, FakeKinesis(
        lambda call, e: "ProvisionedThroughputExceededException"
        if call == 1 and e["PartitionKey"] in ("700001", "700003") else None
    ))
    sleeps = []
    monkeypatch.setattr(AWS, "_sleep", sleeps.append)
    status, answer, _ = post(invented_rows(20, invoices=5))
    assert status == 200
    assert answer["accepted"] == 20 and answer["rejected"] == 0 and answer["records"] == 5
    assert [len(c) for c in fake.calls] == [5, 2]
    assert [e["PartitionKey"] for e in fake.calls[1]] == ["700001", "700003"]
    assert fake.calls[1] == [e for e in fake.calls[0] if e["PartitionKey"] in ("700001", "700003")]
    assert sleeps == [0.05]
    assert sorted(int(r["RowId"]) for r in fake.written_rows()[:20]) == list(range(20))


def test_backoff_doubles_up_to_five_attempts_then_503(monkeypatch):
    fake = use(monkeypatch, FakeKinesis(
        lambda call, e: "ProvisionedThroughputExceededException" if e["PartitionKey"] == "700002" else None
    ))
    sleeps = []
    monkeypatch.setattr(AWS, "_sleep", sleeps.append)
    rows = invented_rows(15, invoices=5)
    rows[4]["Quantity"] = "four"  # index 4 is invalid (invoice 700004)
    status, answer, _ = post(rows, request_id="req-503")
    assert status == 503
    assert len(fake.calls) == 5 and [len(c) for c in fake.calls[1:]] == [1, 1, 1, 1]
    assert sleeps == [0.05, 0.1, 0.2, 0.4]
    failed = [i for i, r in enumerate(rows) if r["InvoiceNo"] == "700002"]
    assert answer["accepted"] == 15 - 1 - len(failed)
    assert answer["rejected"] == 1 + len(failed)
    assert answer["records"] == 4
    assert answer["requestId"] == "req-503"
    assert "message" in answer
    stream_errors = [e for e in answer["errors"] if e["reason"].startswith("stream unavailable")]
    assert [e["index"] for e in stream_errors] == failed
    assert [e["RowId"] for e in stream_errors] == [str(i) for i in failed]
    assert {e["reason"] for e in stream_errors} == {
        "stream unavailable (ProvisionedThroughputExceededException): retry later"
    }
    assert [e["index"] for e in answer["errors"]] == sorted(e["index"] for e in answer["errors"])


def test_every_record_failing_is_503(monkeypatch):
    use(monkeypatch, FakeKinesis(lambda call, e: "InternalFailure"))
    status, answer, _ = post(invented_rows(4))
    assert status == 503
    assert answer["accepted"] == 0 and answer["rejected"] == 4 and answer["records"] == 0


def test_throttled_whole_call_is_retried_like_failed_records(monkeypatch):
    class ThrottledOnce(FakeKinesis):
        def put_records(self, StreamName, Records):  # noqa: N803
            if not self.calls:
                self.calls.append([])
                raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "slow down"}},
                                  "PutRecords")
            return super().put_records(StreamName, Records)

    fake = use(monkeypatch, ThrottledOnce())
    status, answer, _ = post(invented_rows(6, invoices=3))
    assert status == 200 and answer["accepted"] == 6
    assert [len(c) for c in fake.calls] == [0, 3]


def test_missing_stream_is_500_naming_the_stream(monkeypatch):
    fake = use(monkeypatch, RaisingKinesis("ResourceNotFoundException"))
    status, answer, _ = post(invented_rows(3))
    assert status == 500
    assert answer["message"] == f"cannot write to Kinesis stream '{STREAM}' (ResourceNotFoundException)"
    assert fake.calls == 1  # not retried


def test_kinesis_client_is_created_once(monkeypatch):
    made = []
    monkeypatch.setattr(AWS.boto3, "client", lambda *a, **k: made.append((a, k)) or object())
    first = H.client("kinesis", **H.KINESIS_CLIENT)
    assert H.client("kinesis", **H.KINESIS_CLIENT) is first
    AWS.client.cache_clear()
    assert len(made) == 1 and made[0][0] == ("kinesis",)
    assert "endpoint_url" not in made[0][1]


def test_put_records_shape_is_accepted_by_botocore(monkeypatch):
    """The real boto3 client (moto in-process mock, no server): parameters validate, data arrives."""
    import boto3
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        kinesis = boto3.client("kinesis")
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)
        AWS.client.cache_clear()
        status, answer, _ = post(invented_rows(30, invoices=4))
        assert status == 200 and answer["accepted"] == 30 and answer["records"] == 4
        shard = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator)["Records"]
        monkeypatch.setenv("STREAM_NAME", "no-such-stream")
        status, answer, _ = post(invented_rows(2))
        assert status == 500
        assert answer["message"] == "cannot write to Kinesis stream 'no-such-stream' (ResourceNotFoundException)"
    assert [r["PartitionKey"] for r in records] == ["700000", "700001", "700002", "700003"]
    rows = [json.loads(line) for r in records for line in r["Data"].decode().splitlines()]
    assert sorted(int(r["RowId"]) for r in rows) == list(range(30))


class Context:
    """A Lambda context whose remaining time is ``remaining_ms`` until ``after_calls``
    Kinesis calls were made, then ``later_ms``."""

    aws_request_id = "ctx-req"

    def __init__(self, kinesis, remaining_ms: int, later_ms: int = 0, after_calls: int = 0):
        self.kinesis, self.remaining_ms, self.later_ms, self.after_calls = kinesis, remaining_ms, later_ms, after_calls

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms if len(self.kinesis.calls) < self.after_calls else self.later_ms


def test_rows_not_written_before_the_deadline_are_503_to_send_again(monkeypatch):
    """Near its deadline the function stops calling Kinesis and answers itself (503, the rows
    to send again) rather than being cut off: the client resends only those, no duplicates."""
    fake = use(monkeypatch, FakeKinesis(lambda call, e: "ProvisionedThroughputExceededException"
                                        if e["PartitionKey"] == "700001" else None))
    rows = invented_rows(12, invoices=3)
    context = Context(fake, remaining_ms=H.CALL_RESERVE_MS + 500, later_ms=H.CALL_RESERVE_MS - 1, after_calls=1)
    answer = H.lambda_handler(event(json.dumps(rows)), context)
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 503 and len(fake.calls) == 1
    again = [e for e in body["errors"] if e["reason"].startswith("stream unavailable")]
    assert {e["RowId"] for e in again} == {r["RowId"] for r in rows if r["InvoiceNo"] == "700001"}
    assert body["accepted"] == 8
    # No call at all when there is no time left: every row is to be sent again.
    fake.calls.clear()
    answer = H.lambda_handler(event(json.dumps(rows)), Context(fake, H.CALL_RESERVE_MS - 1))
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 503 and fake.calls == [] and body["accepted"] == 0
    assert {e["reason"] for e in body["errors"]} == {"stream unavailable (DeadlineNear): retry later"}


def test_a_kinesis_call_fits_in_the_reserve_before_the_deadline():
    """connect + read timeouts of the one try boto3 makes fit in the reserve, and the
    function's timeout (registry) leaves time for calls after the reserve."""
    from ecomlib import registry

    budget_s = H.KINESIS_CLIENT["connect_timeout"] + H.KINESIS_CLIENT["read_timeout"]
    assert H.KINESIS_CLIENT["max_attempts"] == 1 and budget_s * 1000 < H.CALL_RESERVE_MS
    assert registry.function("ingest_api").timeout_s * 1000 > 2 * H.CALL_RESERVE_MS
