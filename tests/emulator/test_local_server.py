"""The embedded AWS: lifecycle, CLI, AWS CLI compatibility, no lost writes, moto patches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from ecomlib import aws
from ecomlib.local import server


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ecomlib", *args],
        capture_output=True, text=True, timeout=120, env=env or os.environ.copy(),
    )


@pytest.fixture()
def private_home(tmp_path, monkeypatch):
    """A second, private embedded AWS for lifecycle tests (never the shared one)."""
    monkeypatch.setenv("ECOM_HOME", str(tmp_path))
    yield tmp_path
    server.stop()


def running(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.slow
def test_cli_start_status_stop_leaves_no_process(private_home):
    env = os.environ.copy()
    assert cli("local", "status", env=env).returncode == 1

    started = cli("local", "start", env=env)
    assert started.returncode == 0, started.stderr
    endpoint = started.stdout.strip()
    assert endpoint.startswith("http://127.0.0.1:")

    status = cli("local", "status", env=env)
    assert status.returncode == 0
    info = json.loads(status.stdout)
    assert info == {"endpoint": endpoint, "apis": {}}
    pid = json.loads((private_home / "server.json").read_text())["pid"]

    # a second start reuses the running process
    assert cli("local", "start", env=env).stdout.strip() == endpoint

    stopped = cli("local", "stop", env=env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not running(pid)
    assert not (private_home / "server.json").exists()
    assert cli("local", "status", env=env).returncode == 1
    assert cli("local", "stop", env=env).stdout.strip() == "not running"


@pytest.mark.slow
def test_aws_cli_works_with_the_printed_credentials(private_home):
    endpoint = server.start()
    aws.client("kinesis").create_stream(StreamName="cli-check", ShardCount=1)
    aws_cli = Path(sys.executable).with_name("aws")
    printed = cli("local", "credentials")
    assert printed.returncode == 0, printed.stderr
    assert f"export AWS_ENDPOINT_URL={endpoint}" in printed.stdout.splitlines()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    out = subprocess.run(["bash", "-c", f'eval "$1" && "{aws_cli}" kinesis list-streams', "-", printed.stdout],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "cli-check" in json.loads(out.stdout)["StreamNames"]

    # invented credentials, as any other program on the machine could try: refused
    env = {**env, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run([str(aws_cli), "--endpoint-url", endpoint, "kinesis", "list-streams"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode != 0 and "UnrecognizedClientException" in out.stderr


def test_aws_cli_profile(private_home):
    server.start()
    aws.client("s3").create_bucket(Bucket="profile-check")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(private_home / "aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(private_home / "aws-creds"))
    written = cli("local", "credentials", "--profile", "course", env={**os.environ, **env})
    assert written.returncode == 0, written.stderr
    assert (private_home / "aws-creds").stat().st_mode & 0o777 == 0o600
    out = subprocess.run([str(Path(sys.executable).with_name("aws")), "--profile", "course", "s3", "ls"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "profile-check" in out.stdout


@pytest.mark.slow
def test_reset_forgets_resources_and_keeps_serving(private_home):
    server.start()
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="reset-me")
    server.reset()
    assert s3.list_buckets()["Buckets"] == []
    s3.create_bucket(Bucket="after-reset")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["after-reset"]


@pytest.mark.slow
def test_stale_state_file_is_replaced(private_home):
    (private_home / "server.json").write_text(json.dumps({"pid": 2**22 + 7, "endpoint": "http://127.0.0.1:9"}))
    assert server.status() is None
    endpoint = server.start()
    assert endpoint != "http://127.0.0.1:9"
    assert server.status()["endpoint"] == endpoint


@pytest.mark.slow
def test_fixed_port_setting_and_loopback_only(private_home, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("ECOM_LOCAL_PORT", str(port))
    assert server.start() == f"http://127.0.0.1:{port}"
    listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
    if listening.returncode == 0 and listening.stdout.strip():
        local_addresses = {line.split()[3] for line in listening.stdout.strip().splitlines()}
        assert local_addresses == {f"127.0.0.1:{port}"}


@pytest.mark.slow
def test_unknown_control_route_is_404(private_home):
    endpoint = server.start()
    response = server._call("GET", endpoint, "nope")  # noqa: SLF001  (signed, as every control request)
    assert response.status_code == 404
    assert "no route" in response.json()["message"]


@pytest.mark.slow
def test_concurrent_clients_lose_no_write():
    """8 clients append 50 items each to one DynamoDB list: all 400 survive.

    (Plain moto server kept 386 of 400 in this test, and 1,490-1,981 of 2,000 in a larger one.)"""
    ddb = aws.client("dynamodb")
    table = "ecom-test-concurrency"
    ddb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(50):
                ddb.update_item(
                    TableName=table, Key={"pk": {"S": "one"}},
                    UpdateExpression="SET #l = list_append(if_not_exists(#l, :empty), :new) ADD #n :one",
                    ExpressionAttributeNames={"#l": "appended", "#n": "appends"},
                    ExpressionAttributeValues={
                        ":empty": {"L": []}, ":new": {"L": [{"S": f"{n}-{i}"}]}, ":one": {"N": "1"},
                    },
                )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "one"}}, ConsistentRead=True)["Item"]
    assert int(item["appends"]["N"]) == 400
    values = [v["S"] for v in item["appended"]["L"]]
    assert len(values) == 400 and len(set(values)) == 400
    ddb.delete_table(TableName=table)


def test_kinesis_reads_every_record_in_order_after_patch():
    kinesis = aws.client("kinesis")
    stream = "ecom-test-order"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.1})
    sent = 0
    for batch in range(6):
        records = [{"Data": f"{batch}-{i}".encode(), "PartitionKey": f"k{i}"} for i in range(500)]
        result = kinesis.put_records(StreamName=stream, Records=records)
        assert result["FailedRecordCount"] == 0
        sent += 500
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    seen, sequence = [], []
    while True:
        page = kinesis.get_records(ShardIterator=iterator, Limit=700)
        assert len(page["Records"]) <= 700
        seen += [r["Data"].decode() for r in page["Records"]]
        sequence += [int(r["SequenceNumber"]) for r in page["Records"]]
        iterator = page["NextShardIterator"]
        if not page["Records"]:
            break
    assert seen == [f"{b}-{i}" for b in range(6) for i in range(500)]
    assert sequence == sorted(sequence) and len(set(sequence)) == sent

    # AFTER/AT_SEQUENCE_NUMBER start where they say
    middle = str(sequence[1234])
    after = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                       ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                       StartingSequenceNumber=middle)["ShardIterator"]
    assert kinesis.get_records(ShardIterator=after, Limit=1)["Records"][0]["Data"].decode() == seen[1235]
    at = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                    ShardIteratorType="AT_SEQUENCE_NUMBER",
                                    StartingSequenceNumber=middle)["ShardIterator"]
    assert kinesis.get_records(ShardIterator=at, Limit=1)["Records"][0]["Data"].decode() == seen[1234]
    latest = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                        ShardIteratorType="LATEST")["ShardIterator"]
    assert kinesis.get_records(ShardIterator=latest)["Records"] == []
    kinesis.put_record(StreamName=stream, Data=b"late", PartitionKey="x")
    assert [r["Data"] for r in kinesis.get_records(ShardIterator=latest)["Records"]] == [b"late"]
    kinesis.delete_stream(StreamName=stream)


@pytest.mark.slow
def test_a_port_in_use_gets_a_clear_message(monkeypatch, tmp_path):
    import socket

    from ecomlib.local import server as local_server

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        monkeypatch.setenv("ECOM_HOME", str(tmp_path))
        monkeypatch.setenv("ECOM_LOCAL_PORT", str(busy.getsockname()[1]))
        with pytest.raises(local_server.LocalAWSError, match="already in use.*ECOM_LOCAL_PORT"):
            local_server.start(timeout=30)
    finally:
        busy.close()


def test_every_answer_has_its_own_request_id():
    """moto writes a request id into XML answers by a regular expression over the whole body;
    the embedded AWS runs it only where there is a ``<RequestId>`` (not over a 1 MB JSON page),
    and every answer still names its own request id, in the body and in the header."""
    sts, ddb = aws.client("sts"), aws.client("dynamodb")
    xml = [sts.get_caller_identity()["ResponseMetadata"] for _ in range(2)]
    for meta in xml:
        assert meta["RequestId"] == meta["HTTPHeaders"]["x-amzn-requestid"]
    assert xml[0]["RequestId"] != xml[1]["RequestId"]
    json_ids = [ddb.list_tables()["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] for _ in range(2)]
    assert len(set(json_ids)) == 2 and all(len(i) == 52 for i in json_ids)


def test_the_status_says_how_much_memory_the_embedded_aws_took():
    """``bench`` reports whose memory its peak was: the embedded AWS reports its own."""
    ddb = aws.client("dynamodb")
    ddb.list_tables()  # (the embedded AWS runs)
    first = server.status()["memory"]["peak_rss_mb"]
    if sys.platform == "win32":  # no resource module: 0
        assert first == 0
        return
    assert 30 < first < 20_000  # a Python process with moto loaded, in MB
    ddb.list_tables()
    assert server.status()["memory"]["peak_rss_mb"] >= first  # a peak never goes down
