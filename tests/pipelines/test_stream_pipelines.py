"""Pipelines 2-4 on the embedded AWS: stream -> S3 raw, stream -> DynamoDB, the GET API."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
import requests

from ecomlib import aws, client, data, pipelines
from ecomlib import deploy as dp
from ecomlib.local import server
from ecomlib.pipelines import dynamodb, ingest, invoice_api, raw_s3
from ecomlib.reconcile import dead_lettered_rows, reconcile

ROWS = 3_000


@pytest.fixture(scope="module")
def sample():
    return data.load(rows=ROWS)


@pytest.fixture(scope="module")
def loaded(sample):
    """Every pipeline deployed, the sample sent and processed; torn down afterwards."""
    pipelines.teardown_all()
    url = pipelines.deploy_all()
    summary = client.send(url, client.to_payload_rows(sample), progress=False)
    assert summary.accepted == ROWS
    pipelines.drain()
    yield url
    pipelines.teardown_all()


def snapshot() -> dict:
    s3 = aws.client("s3")
    objects = {o["Key"]: s3.get_object(Bucket=raw_s3.bucket_name(), Key=o["Key"])["Body"].read()
               for o in raw_s3.list_objects()}
    key = lambda item: tuple(sorted((k, str(v)) for k, v in item.items()))  # noqa: E731
    return {
        "s3": objects,
        "invoices": sorted(map(key, dynamodb.scan(dynamodb.invoices_table()))),
        "customers": sorted(map(key, dynamodb.scan(dynamodb.customers_table()))),
    }


def test_every_row_is_stored_exactly_once(loaded):
    counts = reconcile()
    assert counts["stream"] == {"rows": ROWS, "distinct_row_ids": ROWS, "unreadable": 0}
    for stage in ("raw_s3", "dynamodb"):
        assert counts[stage] == {"in": ROWS, "stored": ROWS, "rejected": 0,
                                 "missing": [], "duplicated": [], "unexpected": []}


def test_raw_objects_are_batched_and_partitioned(loaded):
    objects = raw_s3.list_objects()
    assert 1 <= len(objects) < ROWS / 50, "batches, not one object per record"
    for obj in objects:
        assert obj["Key"].startswith("raw/year=") and "/month=" in obj["Key"] and "/day=" in obj["Key"]
        assert obj["Key"].endswith(".jsonl")
    frame = raw_s3.read_rows()
    assert len(frame) == ROWS and frame["RowId"].is_unique


def test_duplicate_lines_are_kept_and_totals_match_the_source(loaded, sample):
    quality = data.quality_report(sample)
    assert quality["duplicate_rows"] > 0 and quality["repeated_invoice_stock_pairs"] > 0
    totals = dynamodb.invoice_totals()
    expected = (data.line_total_milli(sample).groupby(sample["InvoiceNo"]).sum())
    assert len(totals) == sample["InvoiceNo"].nunique()
    assert {k: v * 1000 for k, v in totals.items()} == {k: Decimal(int(v)) for k, v in expected.items()}


def test_replaying_every_batch_changes_nothing(loaded):
    before = snapshot()
    delivered_before = server.status()["pollers"]["records"]  # counted since the start
    for function in (raw_s3.FUNCTION, dynamodb.FUNCTION):
        # A new mapping starts again from the oldest record: every batch is delivered again.
        dp.delete_stream_mappings(function)
    raw_s3.deploy()
    dynamodb.deploy()
    pipelines.drain()  # the pollers may have started on the replay already: count it all
    delivered = server.status()["pollers"]["records"] - delivered_before
    assert delivered >= 2 * ingest.stream_stats()["records"]
    assert snapshot() == before


def test_invoice_api(loaded, sample):
    base = invoice_api.deploy()
    invoice = sample["InvoiceNo"].iloc[0]
    lines = sample[sample["InvoiceNo"] == invoice]
    response = requests.get(f"{base}/invoices", params={"InvoiceNo": invoice}, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["InvoiceNo"] == invoice and body["LineCount"] == len(lines) == len(body["Lines"])
    assert Decimal(str(body["Total"])) * 1000 == int(data.line_total_milli(lines).sum())
    assert requests.get(f"{base}/invoices", params={"InvoiceNo": "999999"}, timeout=30).status_code == 404
    assert requests.get(f"{base}/invoices", timeout=30).status_code == 400
    assert requests.get(f"{base}/invoices", params={"InvoiceNo": "1; DROP"}, timeout=30).status_code == 400

    customer = sample["CustomerID"].dropna().iloc[0]
    mine = sample[sample["CustomerID"] == customer]
    body = requests.get(f"{base}/customers/{customer}", timeout=30).json()
    assert body["InvoiceCount"] == mine["InvoiceNo"].nunique()
    assert Decimal(str(body["Total"])) * 1000 == int(data.line_total_milli(mine).sum())
    assert requests.get(f"{base}/customers/00000", timeout=30).status_code == 404


def test_a_poison_record_goes_to_the_dead_letter_queue_and_the_rest_lands(loaded):
    kinesis = aws.client("kinesis")
    good = b'{"InvoiceNo":"900001","StockCode":"52001","Description":"X","Quantity":1,' \
           b'"InvoiceDate":"2011-05-01T10:00:00","UnitPrice":1.5,"CustomerID":null,"Country":"France",' \
           b'"RowId":"poison-test-good"}\n'
    kinesis.put_records(StreamName=ingest.stream_name(), Records=[
        {"Data": good, "PartitionKey": "900001"},
        {"Data": b"this is not json\n", "PartitionKey": "900001"},
    ])
    pipelines.drain()
    assert dynamodb.line_ids()["poison-test-good"] == 1
    assert "poison-test-good" in raw_s3.row_ids()
    [unreadable] = dead_lettered_rows(dynamodb.dead_letter_queue())
    assert unreadable == {"RowId": None, "Unreadable": "this is not json"}
    counts = reconcile()
    assert counts["stream"]["unreadable"] == 1
    assert counts["dynamodb"]["stored"] == counts["dynamodb"]["in"] == ROWS + 1
    assert not counts["dynamodb"]["missing"]


def test_drain_answers_per_store_and_skips_a_consumer_that_is_off(loaded):
    """drain() waits for what it promises (every row in each fed store, or given up on) and
    answers the same keys on every target."""
    drained = pipelines.drain()
    assert set(drained) == {"raw_s3", "dynamodb", "warehouse"}
    for stage, counts in drained.items():
        assert set(counts) == {"in", "stored", "rejected"}
        assert counts["stored"] + counts["rejected"] == counts["in"], stage
    dp.enable_stream_mappings(dynamodb.FUNCTION, False)
    try:
        client.post_rows(loaded, data.generate(rows=5, seed=11))
        drained = pipelines.drain()
        assert "dynamodb" not in drained, "a switched-off consumer is not waited for: its rows wait in the stream"
        assert drained["raw_s3"]["stored"] == drained["raw_s3"]["in"]
    finally:
        dp.enable_stream_mappings(dynamodb.FUNCTION, True)
    assert pipelines.drain()["dynamodb"]["stored"] == reconcile()["dynamodb"]["stored"]


def test_drain_of_named_stores_counts_only_those(loaded, monkeypatch):
    """drain(stores=[...]) waits for (and reads) those stores only; a name that is no store
    is refused with the list of stores."""
    from ecomlib.pipelines import stores as rc

    counted, read = rc.stored_ids, []
    monkeypatch.setattr(rc, "stored_ids", lambda stage: read.append(stage) or counted(stage))
    client.post_rows(loaded, data.generate(rows=5, seed=12))
    drained = pipelines.drain(stores=["dynamodb"])
    assert set(drained) == {"dynamodb"} and read == ["dynamodb"]
    assert drained["dynamodb"]["stored"] == drained["dynamodb"]["in"] == reconcile()["dynamodb"]["in"]
    with pytest.raises(ValueError, match=r"no store named \['tables'\]: the stores are \['raw_s3', 'dynamodb', 'warehouse'\]"):
        pipelines.drain(stores=["tables"])


def test_drain_with_progress_names_each_step_on_stdout_and_is_silent_without(loaded, capsys):
    """progress=True: one text bar on stdout names each step as it starts (the embedded AWS's
    delivery, the stream, each store read whole) and ends with every step done."""
    import re

    client.post_rows(loaded, data.generate(rows=3, seed=14))
    quiet = pipelines.drain(stores=["dynamodb"])
    assert capsys.readouterr().out == ""
    client.post_rows(loaded, data.generate(rows=3, seed=15))
    shown = pipelines.drain(stores=["dynamodb"], progress=True)
    out = capsys.readouterr().out
    assert shown["dynamodb"]["stored"] == shown["dynamodb"]["in"] >= quiet["dynamodb"]["in"] > 0
    steps = [line.split(":")[0] for line in out.split("\r") if line.strip()]
    assert "the embedded AWS delivers what waits in the stream" in steps and "reading the stream" in steps
    assert any(re.fullmatch(r"reading dynamodb whole, to find the [\d,]+ rows it owes", s) for s in steps), steps
    assert re.search(r"drain: 3/3 steps \[\d\d:\d\d\]\s*$", out), out[-200:]


def test_drain_reads_only_what_arrived_since_it_last_read_the_stream(loaded, monkeypatch):
    """The stream is read from where the last drain() stopped in each shard (a checkpoint);
    a stream deleted and created again is read from its start."""
    from ecomlib.pipelines import stores as rc

    before, in_stream = rc.stream_arrivals(), ingest.stream_stats()["records"]
    records = []
    reading = ingest.iter_records
    monkeypatch.setattr(ingest, "iter_records", lambda **kw: (records.append(r) or r for r in reading(**kw)))
    assert rc.stream_arrivals() == before and records == []
    assert ingest.stream_stats()["records"] == in_stream and records == []  # the same reader: nothing new
    client.post_rows(loaded, data.generate(rows=3, seed=13))
    after = rc.stream_arrivals()
    read = len(records)
    monkeypatch.undo()
    new = ingest.stream_stats()["records"] - in_stream  # (a record per invoice)
    assert read == new >= 1
    assert ingest.StreamLog().arrivals() == after  # a reader that has not read yet reads it all, and agrees
    assert ingest.StreamLog().stats() == ingest.stream_stats()  # counts too, read on or afresh
    rows = ingest.read_stream()
    everything = Counter(row["RowId"] for row in rows if row.get("RowId") is not None)
    fresh = ingest.StreamLog()
    assert ingest.STREAM_LOG.row_counts() == fresh.row_counts() == everything
    assert ingest.STREAM_LOG.unreadable == fresh.unreadable == len(rows) - sum(everything.values())


def test_drain_times_out_naming_the_store_that_lacks_rows(loaded, monkeypatch):
    from collections import Counter

    from ecomlib.pipelines import stores as rc

    counted = rc.stored_ids
    monkeypatch.setattr(rc, "stored_ids", lambda stage: Counter() if stage == "raw_s3" else counted(stage))
    with pytest.raises(TimeoutError, match=r"raw_s3 lacks [\d,]+ of [\d,]+ rows \(e\.g\. RowId ") as caught:
        pipelines.drain(timeout=1)
    assert "dynamodb" not in str(caught.value) and "warehouse" not in str(caught.value)
