"""Pipeline 5 on the embedded AWS: Kinesis -> Firehose -> S3 -> Redshift COPY -> SQL."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from ecomlib.local import server
from ecomlib import aws, client, data, pipelines
from ecomlib import redshift as wh
from ecomlib.pipelines import ingest, warehouse
from ecomlib.reconcile import reconcile

ROWS = 3_000


@pytest.fixture(scope="module")
def sample():
    return data.load(rows=ROWS)


@pytest.fixture(scope="module")
def loaded(sample):
    warehouse.teardown()
    ingest.teardown()
    url = ingest.deploy()
    warehouse.deploy()
    summary = client.send(url, client.to_payload_rows(sample), progress=False)
    assert summary.accepted == ROWS
    pipelines.drain()
    yield
    warehouse.teardown()
    ingest.teardown()


def test_every_row_is_in_the_table_once(loaded):
    counts = reconcile(stages=("warehouse",))
    assert counts["warehouse"] == {"in": ROWS, "stored": ROWS, "rejected": 0,
                                   "missing": [], "duplicated": [], "unexpected": []}


def test_objects_land_under_firehose_names_with_manifests(loaded):
    s3 = aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=warehouse.bucket_name())["Contents"]]
    data_keys = [k for k in keys if k.startswith(warehouse.PREFIX) and "/manifests/" not in k]
    manifests = [k for k in keys if "/manifests/" in k]
    assert data_keys and len(manifests) == len(data_keys)
    name = warehouse.delivery_stream_name()
    for key in data_keys:
        parts = key[len(warehouse.PREFIX):].split("/")
        assert len(parts) == 5 and parts[4].startswith(f"{name}-1-"), key  # YYYY/MM/DD/HH/<name>-1-...
    manifest = json.loads(s3.get_object(Bucket=warehouse.bucket_name(), Key=manifests[0])["Body"].read())
    assert manifest["entries"][0]["url"].startswith(f"s3://{warehouse.bucket_name()}/{warehouse.PREFIX}")
    assert "config/jsonpaths.json" in keys


def test_values_are_exact_and_typed(loaded, sample):
    total = wh.sql(f"SELECT SUM(quantity * unit_price) AS revenue, COUNT(*) AS n FROM {warehouse.TABLE}")
    assert total["n"][0] == ROWS
    assert Decimal(total["revenue"][0]) == data.revenue(sample)
    first = sample.iloc[0]
    row = wh.sql(f"SELECT * FROM {warehouse.TABLE} WHERE row_id = :id", {"id": str(sample.index[0])})
    assert list(row.columns) == warehouse.COLUMNS
    assert row["invoice_no"][0] == first["InvoiceNo"] and row["quantity"][0] == first["Quantity"]
    assert row["invoice_date"][0] == first["InvoiceDate"]
    assert row["unit_price"][0] == Decimal(str(first["UnitPrice"]))


def test_business_answers_match_pandas(loaded, sample):
    by_month = wh.sql(f"""
        SELECT TO_CHAR(invoice_date, 'YYYY-MM') AS month, SUM(quantity * unit_price) AS revenue
        FROM {warehouse.TABLE} GROUP BY 1 ORDER BY 1""")
    milli = data.line_total_milli(sample).groupby(sample["InvoiceDate"].dt.strftime("%Y-%m")).sum()
    assert dict(zip(by_month["month"], by_month["revenue"])) == {
        month: Decimal(int(v)) / 1000 for month, v in milli.items()}


def test_background_delivery_follows_the_buffer_interval(loaded, sample):
    before = wh.sql(f"SELECT COUNT(*) AS n FROM {warehouse.TABLE}")["n"][0]
    firehose = aws.client("firehose")
    name = warehouse.delivery_stream_name()
    described = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert described["DeliveryStreamStatus"] == "ACTIVE"
    # A new delivery stream with a 1-second buffer: it reads from LATEST (the rows already
    # in the stream are not delivered again) and delivers without drain().
    warehouse.teardown(delete_cluster=False)
    warehouse.deploy(buffer_seconds=1)
    more = data.generate(rows=50, seed=7)
    more.index = [f"late-{i}" for i in range(50)]
    client.send(ingest.invoices_url(), client.to_payload_rows(more), progress=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if wh.sql(f"SELECT COUNT(*) AS n FROM {warehouse.TABLE}")["n"][0] > before:
            break
        time.sleep(0.5)
    assert wh.sql(f"SELECT COUNT(*) AS n FROM {warehouse.TABLE}")["n"][0] == before + 50


def test_a_copy_that_keeps_failing_leaves_its_manifest_under_errors(loaded):
    pipelines.drain()
    wh.execute(f"DROP TABLE {warehouse.TABLE}")
    kinesis = aws.client("kinesis")
    kinesis.put_record(StreamName=ingest.stream_name(), PartitionKey="1", Data=json.dumps({
        "InvoiceNo": "900001", "StockCode": "52001", "Description": None, "Quantity": 1,
        "InvoiceDate": "2011-05-01T10:00:00", "UnitPrice": 1.5, "CustomerID": None,
        "Country": "France", "RowId": "orphan"}).encode() + b"\n")
    # the embedded AWS's own counters (pipelines.drain() would count a table that is gone)
    given_up = sum(server.drain().get("copy_errors", 0) for _ in range(4))
    assert given_up == 1, "three attempts, then the manifest is set aside"
    s3 = aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=warehouse.bucket_name())["Contents"]]
    errors = [k for k in keys if k.startswith(f"{warehouse.PREFIX}errors/")]
    assert len(errors) == 1
    report = json.loads(s3.get_object(Bucket=warehouse.bucket_name(), Key=errors[0])["Body"].read())
    assert report["entries"] and report["error"] and report["errorCode"] == "Redshift.TableNotFound"
    warehouse.create_table()


def test_cluster_is_public_behind_a_group_open_only_to_firehose(loaded):
    from ecomlib import aws
    from ecomlib import redshift as wh

    cluster = aws.client("redshift").describe_clusters(ClusterIdentifier=wh.cluster_id())["Clusters"][0]
    assert cluster["PubliclyAccessible"] is True and cluster["Encrypted"] is True
    [group] = cluster["VpcSecurityGroups"]
    [described] = aws.client("ec2").describe_security_groups(GroupIds=[group["VpcSecurityGroupId"]])["SecurityGroups"]
    assert described["GroupName"] == warehouse.security_group_name()
    assert [(p["IpProtocol"], p["FromPort"], p["ToPort"], [r["CidrIp"] for r in p["IpRanges"]], p["UserIdGroupPairs"])
            for p in described["IpPermissions"]] == [("tcp", 5439, 5439, ["52.70.63.192/27"], [])]
