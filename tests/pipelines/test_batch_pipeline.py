"""Pipeline 6 on the embedded AWS: schedule -> batch_loader -> DynamoDB and the warehouse."""

from __future__ import annotations

import json

import pytest

from ecomlib import aws, client, data, pipelines
from ecomlib import deploy as dp
from ecomlib import redshift as wh
from ecomlib.local import server
from ecomlib.pipelines import batch, dynamodb
from ecomlib.pipelines import warehouse as warehouse_pipeline

ROWS = 4_000
HEADER = b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n"


@pytest.fixture(scope="module")
def sample():
    return data.load(rows=ROWS)


@pytest.fixture(scope="module")
def loaded(sample, tmp_path_factory):
    """The batch pipeline deployed and the sample dropped as monthly files and loaded by the schedule."""
    pipelines.teardown_all()
    batch.teardown()
    batch.deploy("rate(5 minutes)")
    for path in batch.monthly_files(sample, tmp_path_factory.mktemp("months")):
        batch.drop_file(path)
    server.control("scheduler/advance", {"seconds": 1})  # the rule's first period starts now
    fired = [o for o in batch.advance_clock(300) if o["rule"] == batch.rule_name()]
    yield fired
    batch.teardown()
    pipelines.teardown_all()


def warehouse_counts() -> dict[str, int]:
    return warehouse_pipeline.row_ids()


def test_the_schedule_loads_every_monthly_file(loaded, sample):
    [run] = loaded
    assert run["ok"], run
    months = sample["InvoiceDate"].dt.strftime("%Y-%m").nunique()
    assert len(run["response"]["files"]) == months and run["response"]["waiting"] == 0
    listing = batch.files()
    assert listing["incoming"] == [] and listing["failed"] == [] and len(listing["processed"]) == months
    expected = set(map(str, sample.index))
    assert dynamodb.line_ids() == {row_id: 1 for row_id in expected}
    assert warehouse_counts() == {row_id: 1 for row_id in expected}
    report = batch.report(listing["processed"][0])
    assert report["rows"] > 0 and report["invocations"] == 1


def test_warehouse_and_tables_hold_the_source_values(loaded, sample):
    total = wh.sql("SELECT SUM(quantity * unit_price) AS revenue, COUNT(*) AS n FROM firehose_transactions")
    assert int(total["n"][0]) == ROWS
    assert total["revenue"][0] == data.revenue(sample)
    totals = dynamodb.invoice_totals()
    expected = data.line_total_milli(sample).groupby(sample["InvoiceNo"]).sum()
    assert {k: int(v * 1000) for k, v in totals.items()} == expected.to_dict()


def test_running_again_loads_nothing_twice(loaded, sample):
    items = len(dynamodb.scan(dynamodb.invoices_table()))
    first = batch.files()["processed"][0]
    s3 = aws.client("s3")
    s3.copy_object(Bucket=batch.bucket_name(), Key=batch.INCOMING + first,
                   CopySource={"Bucket": batch.bucket_name(), "Key": f"{batch.PREFIX}processed/{first}"})
    batch.run_until_done()
    batch.run_until_done()  # nothing waiting: a run that does nothing
    assert set(warehouse_counts().values()) == {1} and len(warehouse_counts()) == ROWS
    assert set(dynamodb.line_ids().values()) == {1}
    assert len(dynamodb.scan(dynamodb.invoices_table())) == items


def test_a_file_with_bad_rows_goes_to_failed_with_reasons_and_loads_nothing(loaded):
    body = HEADER + (b"900001,A1,ok,6,12/1/2010 8:26,2.55,17850,United Kingdom\r\n"
                     b"900001,A2,bad qty,six,12/1/2010 8:26,2.55,17850,United Kingdom\r\n"
                     b"900002,A3,ok,1,12/1/2010 9:00,1.25,,France\r\n"
                     b"900002,A4,bad date,1,12/32/2010 9:00,1.25,,France\r\n")
    batch.drop_bytes("december_fixes.csv", body)
    batch.run_until_done()
    assert "december_fixes.csv" in batch.files()["failed"]
    report = batch.report("december_fixes.csv")
    assert report["loaded"] == 0 and report["rejected"] == 2 and report["rows_read"] == 4
    assert [(e["line"], e["reason"].split(",")[0]) for e in report["errors"]] == [
        (2, "Quantity must be an integer"), (4, "InvoiceDate is not a real date and time: '12/32/2010 9:00'")]
    assert not any(k.startswith("december_fixes") for k in warehouse_counts())
    assert not any(k.startswith("december_fixes") for k in dynamodb.line_ids())


@pytest.mark.parametrize("name, body, message", [
    ("wrong_header.csv", b"Invoice,Stock,Qty\r\n1,2,3\r\n", "the header has no InvoiceNo"),
    ("notes.txt", b"hello", "not a .csv or .jsonl file"),
    ("empty.csv", b"", "no header line"),
])
def test_unreadable_files_are_refused_with_a_message(loaded, name, body, message):
    batch.drop_bytes(name, body)
    batch.run_until_done()
    assert name in batch.files()["failed"] and message in batch.report(name)["message"]


def test_json_lines_files_load_with_their_own_row_ids(loaded):
    rows = [{"InvoiceNo": "910001", "StockCode": "J1", "Description": "JSON LINE", "Quantity": 2,
             "InvoiceDate": "2011-06-01T10:00:00", "UnitPrice": 3.5, "CustomerID": "12345",
             "Country": "Norway", "RowId": f"jsonl-{i}"} for i in range(3)]
    batch.drop_bytes("extra.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    batch.run_until_done()
    assert "extra.jsonl" in batch.files()["processed"]
    assert {k: v for k, v in warehouse_counts().items() if k.startswith("jsonl-")} == {f"jsonl-{i}": 1 for i in range(3)}
    answer = wh.sql("SELECT SUM(quantity * unit_price) AS v FROM firehose_transactions WHERE invoice_no = '910001'")
    assert str(answer["v"][0]) == "21.000"
    wh.execute("DELETE FROM firehose_transactions WHERE invoice_no = '910001'")
    for item in dynamodb.scan(dynamodb.invoices_table()):
        if item["InvoiceNo"]["S"] == "910001":
            aws.client("dynamodb").delete_item(TableName=dynamodb.invoices_table(),
                                               Key={"InvoiceNo": item["InvoiceNo"], "Part": item["Part"]})
    for item in dynamodb.scan(dynamodb.customers_table()):
        if item["InvoiceNo"]["S"] == "910001":
            aws.client("dynamodb").delete_item(TableName=dynamodb.customers_table(), Key={
                "CustomerID": item["CustomerID"], "InvoicePart": item["InvoicePart"]})


def test_batch_and_stream_paths_write_the_same_tables(loaded, sample):
    """The same rows sent through the API and the stream give the very same tables."""
    def snapshot() -> dict:
        invoices = {(i["InvoiceNo"]["S"], i["Part"]["S"]): i for i in dynamodb.scan(dynamodb.invoices_table())}
        customers = {(i["CustomerID"]["S"], i["InvoicePart"]["S"]): i for i in dynamodb.scan(dynamodb.customers_table())}
        rows = wh.sql("SELECT * FROM firehose_transactions ORDER BY row_id")
        return {"invoices": invoices, "customers": customers, "warehouse": rows}

    by_batch = snapshot()
    batch.teardown()
    dynamodb.teardown()
    wh.execute("DROP TABLE firehose_transactions")
    url = pipelines.deploy_all()
    summary = client.send(url, client.to_payload_rows(sample), progress=False)
    assert summary.accepted == ROWS
    pipelines.drain()
    by_stream = snapshot()
    assert by_stream["warehouse"].equals(by_batch["warehouse"])
    assert by_stream["invoices"].keys() == by_batch["invoices"].keys()
    assert by_stream["invoices"] == by_batch["invoices"]
    assert by_stream["customers"] == by_batch["customers"]
    assert dp.function_name("batch_loader") not in [f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]]


def test_a_big_file_spreads_over_runs_and_survives_an_interrupted_run(loaded, sample, tmp_path):
    """(After the stream comparison: the tables hold the sample, written by the stream.)"""
    batch.deploy("rate(5 minutes)", chunk_bytes=16 * 1024, max_chunks_per_run=3)
    try:
        path = data.write_csv(sample.head(1500), tmp_path / "big.csv", row_ids=True)
        batch.drop_file(path, "big.csv")
        before = dict(warehouse_counts())
        totals = dynamodb.invoice_totals()
        runs = 0
        state_key = f"{batch.PREFIX}state/big.csv.json"
        s3 = aws.client("s3")
        while "big.csv" in batch.files()["incoming"]:
            [fired] = batch.run_now()
            runs += 1
            assert fired["ok"], fired
            state = json.loads(s3.get_object(Bucket=batch.bucket_name(), Key=state_key)["Body"].read()) \
                if "big.csv" in batch.files()["incoming"] else None
            if state and state["phase"] == "loading" and state["loaded_chunks"] >= 2 and not state.get("rewound"):
                # As if the run died after loading a chunk but before its checkpoint: the
                # next run loads that chunk again.
                state["loaded_chunks"] -= 1
                state["rewound"] = True
                s3.put_object(Bucket=batch.bucket_name(), Key=state_key, Body=json.dumps(state).encode())
            assert runs < 40
        report = batch.report("big.csv")
        assert runs > 3 and report["invocations"] == runs and report["chunks"] > 3
        assert warehouse_counts() == before  # the same rows as the monthly files: nothing added
        # Chunks of 16 KB split big invoices into other parts than the monthly files did;
        # readers count each RowId once, so every invoice still adds up to the same total.
        assert dynamodb.invoice_totals() == totals
    finally:
        batch.deploy("rate(5 minutes)")


def _invoke_loader() -> dict:
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "time": "2011-01-01T00:00:00Z", "detail": {}}
    answer = aws.client("lambda").invoke(FunctionName=dp.function_name(batch.FUNCTION), Payload=json.dumps(event))
    assert "FunctionError" not in answer
    return json.loads(answer["Payload"].read())


def test_no_reserved_concurrency_and_runs_take_turns_by_a_lease(loaded):
    """Reserved concurrency is refused on a new account: the loader reserves none, and a run
    that finds the S3 lease held by a live run ends at once; an expired lease is taken over."""
    import time

    lam, s3 = aws.client("lambda"), aws.client("s3")
    name = dp.function_name(batch.FUNCTION)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    assert "Concurrency" not in lam.get_function(FunctionName=name)
    key = f"{batch.PREFIX}lease.json"
    batch.drop_bytes("turns.csv", HEADER + b"600100,99001B,MINT CHEVRON SNACK BOX,6,5/4/2011 12:30,2.55,15001,United Kingdom\r\n")
    s3.put_object(Bucket=batch.bucket_name(), Key=key,
                  Body=json.dumps({"holder": "another-run", "expires": time.time() + 600}).encode())
    answer = _invoke_loader()
    assert answer["files"] == [] and "another-run" in answer["skipped"]
    assert "turns.csv" in batch.files()["incoming"]
    # Only one writer can create the lease: S3 refuses the second (412 PreconditionFailed).
    with pytest.raises(s3.exceptions.ClientError) as refused:
        s3.put_object(Bucket=batch.bucket_name(), Key=key, Body=b"{}", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    # A lease whose run died (expired) is taken over, and the run releases it at the end.
    s3.put_object(Bucket=batch.bucket_name(), Key=key,
                  Body=json.dumps({"holder": "a-crashed-run", "expires": time.time() - 1}).encode())
    answer = _invoke_loader()
    assert [f["file"] for f in answer["files"]] == ["turns.csv"] and "skipped" not in answer
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=batch.bucket_name(), Key=key)
