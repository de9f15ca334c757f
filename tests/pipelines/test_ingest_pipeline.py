"""Pipeline 1 on the embedded AWS: client -> API Gateway -> Lambda -> Kinesis."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from ecomlib import client, data, deploy
from ecomlib.pipelines import ingest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def url():
    ingest.teardown()
    yield ingest.deploy()
    ingest.teardown()


@pytest.fixture(scope="module")
def sample():
    return data.load(rows=3_000)


def stream_rows() -> list[dict]:
    return ingest.read_stream()


def test_rows_in_the_stream_are_the_rows_accepted(url, sample):
    before = len(stream_rows())
    rows = client.to_payload_rows(sample)
    summary = client.send(url, rows, batch_size=400, progress=False)
    assert (summary.sent, summary.accepted, summary.rejected) == (3_000, 3_000, 0)
    after = stream_rows()
    assert len(after) - before == 3_000
    sent_ids = {r["RowId"] for r in rows}
    assert {r["RowId"] for r in after[before:]} | {r["RowId"] for r in after} >= sent_ids
    # every row arrives unchanged, including exact prices and missing customers
    by_id = {r["RowId"]: r for r in after}
    for row in rows[:200]:
        got = by_id[row["RowId"]]
        assert got["InvoiceNo"] == row["InvoiceNo"] and got["Quantity"] == row["Quantity"]
        assert got["UnitPrice"] == row["UnitPrice"] and got["CustomerID"] == row["CustomerID"]


def test_an_invoice_stays_on_one_shard_in_order(url, sample):
    client.send(url, client.to_payload_rows(sample), batch_size=250, concurrency=8, progress=False)
    shard_of: dict[str, set] = {}
    order: dict[str, list[int]] = {}
    for record in ingest.iter_records():
        for row in ingest.rows_of(record):
            shard_of.setdefault(row["InvoiceNo"], set()).add(record["ShardId"])
            order.setdefault(row["InvoiceNo"], []).append(int(row["RowId"]))
    assert all(len(shards) == 1 for shards in shard_of.values())
    # The sample went through the stream twice (here and in the test above): each time
    # an invoice's lines arrived in their order in the file.
    expected = sample.reset_index().groupby("InvoiceNo")["index"].apply(list).to_dict()
    assert {inv: ids for inv, ids in order.items()} == {inv: ids * 2 for inv, ids in expected.items()}
    assert len({s for shards in shard_of.values() for s in shards}) == 2, "both shards get invoices"


def test_seed_test_sample_one_request_each(url, sample):
    rows = client.to_payload_rows(sample.head(9))
    summary = client.send(url, rows, one_per_request=True, progress=False)
    assert summary.statuses == {200: 9} and summary.accepted == 9


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "not valid JSON"),
    (b"", 400, "empty"),
    (b"\xff\xfe\x00", 400, "UTF-8"),
    (b"42", 400, ""),
])
def test_bad_bodies_get_a_clear_4xx_and_write_nothing(url, body, status, message):
    before = ingest.stream_stats()["rows"]
    response = requests.post(url, data=body, timeout=30)
    assert response.status_code == status
    assert message.lower() in response.json()["message"].lower()
    assert "Traceback" not in response.text
    assert ingest.stream_stats()["rows"] == before


def test_bad_rows_are_rejected_with_reasons_and_good_ones_kept(url, sample):
    before = ingest.stream_stats()["rows"]
    good = client.to_payload_rows(sample.head(2))
    bad = [{**good[0], "Quantity": "six", "RowId": "bad-1"}, {"InvoiceNo": "1", "RowId": "bad-2"}]
    response = requests.post(url, json=good + bad, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    reasons = {e["RowId"]: e["reason"] for e in body["errors"]}
    assert "Quantity" in reasons["bad-1"] and "missing" in reasons["bad-2"]
    assert ingest.stream_stats()["rows"] == before + 2


def test_other_methods_and_huge_bodies(url):
    assert requests.get(url, timeout=30).status_code == 405
    assert requests.put(url, json={}, timeout=30).status_code == 405
    huge = requests.post(url, data=b"[" + b'{"a":1},' * 1_400_000 + b"{}]", timeout=60)
    assert huge.status_code == 413


def test_function_logs_reach_cloudwatch(url, sample):
    client.send(url, client.to_payload_rows(sample.head(5)), progress=False)
    from ecomlib import aws

    logs = aws.client("logs")
    group = f"/aws/lambda/{deploy.function_name('ingest_api')}"
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert streams
    messages = [e["message"] for s in streams
                for e in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]]
    assert any(m.startswith("START RequestId") for m in messages)


def test_role_is_least_privilege(url):
    policy = deploy.role_policy("ingest_api")
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert "*" not in actions and all(not a.endswith(":*") for a in actions)
        assert statement["Resource"] != "*"
    kinesis = [s for s in policy["Statement"] if any(a.startswith("kinesis:") for a in s["Action"])]
    assert kinesis == [{"Sid": "PutToTheInvoiceStream", "Effect": "Allow", "Action": ["kinesis:PutRecords"],
                        "Resource": kinesis[0]["Resource"]}]
    assert kinesis[0]["Resource"].endswith(f":stream/{ingest.stream_name()}")


def test_handlers_use_only_what_the_lambda_runtime_has():
    allowed = set(sys.stdlib_module_names) | {"boto3", "botocore", "shared"}
    sources = [*(REPO / "lambda_src").glob("*/handler.py"), *(REPO / "lambda_src" / "shared").glob("*.py")]
    assert len(sources) >= 6
    for handler in sources:
        tree = ast.parse(handler.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in allowed, f"{handler}: imports {name}"


def test_package_is_deterministic_and_holds_the_handler_and_the_shared_code():
    import io
    import zipfile

    first, second = deploy.package("ingest_api"), deploy.package("ingest_api")
    assert first == second
    shared = sorted(f"shared/{p.name}" for p in (REPO / "lambda_src" / "shared").glob("*.py"))
    assert zipfile.ZipFile(io.BytesIO(first)).namelist() == ["handler.py", *shared]


def test_demo_prints_one_json_line_with_exact_counts():
    out = subprocess.run([sys.executable, "-m", "ecomlib", "demo", "--rows", "1500"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["dataset"]["rows"] == 1500 and result["dataset"]["source"] == "generated"
    assert list(result["stages"]) == ["ingest", "raw_s3", "dynamodb", "warehouse", "batch"]
    for stage in result["stages"].values():
        assert (stage["in"], stage["stored"], stage["rejected"]) == (1500, 1500, 0)
        assert "problems" not in stage
    assert result["stages"]["batch"]["processed"] == result["stages"]["batch"]["files"] > 0
