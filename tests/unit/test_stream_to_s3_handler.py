"""Unit tests of the Lambda ``lambda_src/stream_to_s3/handler.py`` without an AWS server.

S3 is replaced by a small fake client recording its ``put_object`` calls; the last test
runs the real boto3 client against moto in-process.  The sample event in
``lambda_src/stream_to_s3/events/`` must give exactly its ``*_response.json`` and
``kinesis_batch_object.jsonl`` (the object body).
"""

from __future__ import annotations

import ast
import base64
import copy
import json
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from ecomlib.deploy import load_handler

REPO = Path(__file__).resolve().parents[2]
LAMBDA_DIR = REPO / "lambda_src" / "stream_to_s3"
EVENTS = LAMBDA_DIR / "events"
BUCKET = "ecom-test-lake"
SEQS = [
    "49590338271490256608559692538361571095921575989136588898",
    "49590338271490256608559692538362780021741190618311294978",
    "49590338271490256608559692538364988947560805247485001058",
]
SAMPLE_KEY = f"raw/year=2024/month=06/day=10/shardId-000000000006-{SEQS[0]}-{SEQS[2]}.jsonl"




H = load_handler("stream_to_s3")  # as in its deployment package: `shared` importable
AWS = sys.modules["shared.aws"]  # the shared client cache the handler uses


class FakeS3:
    """Records put_object calls and keeps the objects (key -> body) like a bucket."""

    def __init__(self):
        self.calls: list[dict] = []
        self.objects: dict[str, bytes] = {}

    def put_object(self, **kwargs):
        assert set(kwargs) == {"Bucket", "Key", "Body", "ContentType", "Metadata"}
        assert kwargs["Bucket"] == BUCKET
        self.calls.append(kwargs)
        self.objects[kwargs["Key"]] = kwargs["Body"]
        return {"ETag": '"x"'}


class FailingS3:
    def put_object(self, **kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("BUCKET", BUCKET)
    monkeypatch.delenv("PREFIX", raising=False)
    AWS.client.cache_clear()


@pytest.fixture
def s3(monkeypatch) -> FakeS3:
    fake = FakeS3()
    monkeypatch.setattr(H, "client", lambda service, **kwargs: fake)
    return fake


def sample() -> dict:
    return json.loads((EVENTS / "kinesis_batch.json").read_text())


def kinesis_record(data: bytes | str, seq: str, ts: float = 1718000000.5,
                   shard: str = "shardId-000000000000") -> dict:
    if isinstance(data, bytes):
        data = base64.b64encode(data).decode()
    return {
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "700009", "sequenceNumber": seq,
                    "data": data, "approximateArrivalTimestamp": ts},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{shard}:{seq}",
        "eventName": "aws:kinesis:record", "awsRegion": "us-east-1",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/r",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/ecom-invoices",
    }


def line(row_id: str, **changes) -> bytes:
    row = {"InvoiceNo": "700009", "StockCode": "52009", "Description": "INVENTED THING", "Quantity": 2,
           "InvoiceDate": "2011-04-01T08:00:00", "UnitPrice": 1.25, "CustomerID": "19009",
           "Country": "Spain", "RowId": row_id}
    row.update(changes)
    return (json.dumps({k: v for k, v in row.items() if v is not ...}, separators=(",", ":")) + "\n").encode()


# ---------------------------------------------------------------------------
# Sample event
# ---------------------------------------------------------------------------


def test_sample_event_gives_its_response_and_object(s3):
    expected = json.loads((EVENTS / "kinesis_batch_response.json").read_text())
    assert H.lambda_handler(sample(), None) == expected == {"batchItemFailures": []}
    assert len(s3.calls) == 1
    call = s3.calls[0]
    assert call["Key"] == SAMPLE_KEY
    assert call["Body"] == (EVENTS / "kinesis_batch_object.jsonl").read_bytes()
    assert call["ContentType"] == "application/x-ndjson"
    assert call["Metadata"] == {"rows": "8", "records": "3"}


def test_sample_object_is_the_records_data_concatenated():
    event = sample()
    data = b"".join(base64.b64decode(r["kinesis"]["data"]) for r in event["Records"])
    assert data == (EVENTS / "kinesis_batch_object.jsonl").read_bytes()
    rows = [json.loads(x) for x in data.decode().splitlines()]
    assert len(rows) == 8 and len({r["RowId"] for r in rows}) == 8
    for record in event["Records"]:  # each record: the rows of the invoice named by its key
        rows = base64.b64decode(record["kinesis"]["data"]).decode().splitlines()
        assert {json.loads(x)["InvoiceNo"] for x in rows} == {record["kinesis"]["partitionKey"]}
        assert record["eventID"] == f"shardId-000000000006:{record['kinesis']['sequenceNumber']}"


# ---------------------------------------------------------------------------
# Key naming and determinism
# ---------------------------------------------------------------------------


def test_object_key_uses_arrival_date_shard_and_sequence_range():
    records = sample()["Records"]
    assert H.object_key(records) == SAMPLE_KEY
    assert H.object_key(records, "lake/raw/") == "lake/" + SAMPLE_KEY
    assert H.object_key(records, "lake") == "lake/" + SAMPLE_KEY[len("raw/"):]


def test_object_key_date_is_utc_and_sequences_compare_as_integers():
    # 2011-12-31 23:30 UTC is already 2012 in Tokyo and still 2011 in UTC
    records = [kinesis_record(line("1"), "9", ts=1325374200.0), kinesis_record(line("2"), "17")]
    assert H.object_key(records) == "raw/year=2011/month=12/day=31/shardId-000000000000-9-17.jsonl"


def test_same_batch_twice_gives_the_same_key_and_bytes(s3):
    H.lambda_handler(sample(), None)
    H.lambda_handler(sample(), None)
    assert len(s3.calls) == 2
    assert s3.calls[0] == s3.calls[1]
    assert list(s3.objects) == [SAMPLE_KEY]  # the replay overwrote the same object


def test_prefix_from_environment(s3, monkeypatch):
    monkeypatch.setenv("PREFIX", "zones/raw/")
    H.lambda_handler(sample(), None)
    assert s3.calls[0]["Key"] == "zones/" + SAMPLE_KEY


# ---------------------------------------------------------------------------
# Poison records and failures
# ---------------------------------------------------------------------------

POISON = [
    ("***not base64***", "bad base64"),
    (base64.b64encode(b"\xff\xfe not utf-8\n").decode(), "not UTF-8"),
    (line("5") + b"{not json}\n", "a line that is not JSON"),
    (line("5", RowId=...), "a missing field"),
    (line("5", Quantity="2"), "a Quantity that is not an integer"),
    (line("5", UnitPrice="1.25"), "a UnitPrice that is not a number"),
    (line("5", InvoiceNo=""), "an empty InvoiceNo"),
    (line("5", CustomerID=19009), "a CustomerID that is a number"),
    (b"[1, 2]\n", "a line that is not an object"),
    (b"[" * 50_000 + b"\n", "JSON nested too deeply"),
    (line("5") + b"\n" + line("6"), "a blank line"),
    (b"", "no data"),
]


@pytest.mark.parametrize("data, why", POISON, ids=[why for _, why in POISON])
def test_poison_record_is_reported_and_the_others_stored(s3, data, why):
    records = [kinesis_record(line("1"), "100"), kinesis_record(data, "200"),
               kinesis_record(line("3") + line("4"), "300")]
    assert H.lambda_handler({"Records": records}, None) == {"batchItemFailures": [{"itemIdentifier": "200"}]}
    call = s3.calls[0]
    assert call["Body"] == line("1") + line("3") + line("4")
    assert call["Key"].endswith("/shardId-000000000000-100-300.jsonl")  # the batch's range
    assert call["Metadata"] == {"rows": "3", "records": "2"}


def test_decode_record_adds_a_missing_final_newline_and_keeps_bytes():
    data = line("1") + line("2", Description="CAFÉ\u2028TABLE").rstrip(b"\n")
    assert H.decode_record(kinesis_record(data, "1")) == data + b"\n"
    with pytest.raises(H.PoisonRecord):
        H.decode_record(kinesis_record(b"\n", "1"))


def test_batch_of_only_poison_writes_nothing(s3):
    records = [kinesis_record("%%%", "7"), kinesis_record(b"nope\n", "8")]
    answer = H.lambda_handler({"Records": records}, None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "7"}, {"itemIdentifier": "8"}]}
    assert s3.calls == []


def test_empty_batch(s3):
    assert H.lambda_handler({"Records": []}, None) == {"batchItemFailures": []}
    assert s3.calls == []


def test_s3_failure_raises_so_the_batch_is_retried(monkeypatch):
    monkeypatch.setattr(H, "client", lambda service, **kwargs: FailingS3())
    with pytest.raises(ClientError):
        H.lambda_handler(sample(), None)


def test_missing_bucket_setting_raises(s3, monkeypatch):
    monkeypatch.delenv("BUCKET")
    with pytest.raises(RuntimeError, match="BUCKET"):
        H.lambda_handler(sample(), None)


def test_build_object_counts_rows():
    body, failed, rows = H.build_object(sample()["Records"])
    assert (failed, rows) == ([], 8)
    assert body.endswith(b"\n") and body.count(b"\n") == 8


# ---------------------------------------------------------------------------
# Module hygiene
# ---------------------------------------------------------------------------


def _globals_snapshot() -> dict:
    return {name: copy.deepcopy(value) if isinstance(value, (list, dict, set)) else id(value)
            for name, value in vars(H).items() if name != "__builtins__"}


def test_no_module_level_state_grows_across_invocations(s3):
    before = _globals_snapshot()
    H.lambda_handler(sample(), None)
    H.lambda_handler(sample(), None)
    assert _globals_snapshot() == before


def test_one_summary_log_line_without_row_data(s3, caplog):
    caplog.set_level("INFO")

    class Context:
        aws_request_id = "req-s3-1"

    H.lambda_handler(sample(), Context())
    lines = [r.getMessage() for r in caplog.records if "req-s3-1" in r.getMessage()]
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["records"] == 3 and summary["rows"] == 8 and summary["failed"] == 0
    assert summary["key"] == SAMPLE_KEY
    assert "LANTERN" not in caplog.text and "19001" not in caplog.text


def test_handler_imports_only_stdlib_and_boto3():
    tree = ast.parse((LAMBDA_DIR / "handler.py").read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    assert modules - set(sys.stdlib_module_names) == {"shared"}
    shared = [sys.modules[name] for name in sys.modules if name.startswith("shared.")]
    assert shared
    for module in shared:
        tree = ast.parse(Path(module.__file__).read_text())
        used = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
        used |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert used - set(sys.stdlib_module_names) <= {"boto3", "botocore", "shared"}, module.__name__


def test_s3_client_is_created_once_without_endpoint(monkeypatch):
    made = []
    monkeypatch.setattr(AWS.boto3, "client", lambda *a, **k: made.append((a, k)) or object())
    first = H.client("s3")
    assert H.client("s3") is first
    AWS.client.cache_clear()
    assert len(made) == 1 and made[0][0] == ("s3",) and "endpoint_url" not in made[0][1]


# ---------------------------------------------------------------------------
# The real boto3 client against moto (in-process, no server)
# ---------------------------------------------------------------------------


def test_put_object_is_valid_for_the_real_api(monkeypatch):
    import boto3
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        assert H.lambda_handler(sample(), None) == {"batchItemFailures": []}
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        got = s3.get_object(Bucket=BUCKET, Key=SAMPLE_KEY)
        body = got["Body"].read()
    assert keys == [SAMPLE_KEY]
    assert body == (EVENTS / "kinesis_batch_object.jsonl").read_bytes()
    assert got["ContentType"] == "application/x-ndjson"
    assert got["Metadata"] == {"rows": "8", "records": "3"}
