"""The course's pipelines, one module each, in the order the notebooks build them.

Each pipeline module offers ``deploy()`` (create what it needs, idempotently) and
``teardown()``. :func:`run` is what ``python -m ecomlib demo`` does: build every pipeline,
send the dataset, let the stream consumers finish, and account for every row.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pandas as pd

from ecomlib import aws
from ecomlib.config import settings


def modules() -> list:
    """The pipeline modules in the order the data flows (deploy in this order)."""
    from ecomlib.pipelines import dynamodb, ingest, invoice_api, raw_s3, warehouse

    return [ingest, raw_s3, dynamodb, invoice_api, warehouse]


def deploy_all() -> str:
    """Deploy every pipeline; returns the ingestion URL (POST /invoices)."""
    from ecomlib.pipelines import ingest

    for module in modules():
        module.deploy()
    return ingest.invoices_url()


def teardown_all() -> None:
    """Remove everything the pipelines created (the batch pipeline too), last built first."""
    from ecomlib.pipelines import batch

    batch.teardown()
    for module in reversed(modules()):
        module.teardown()


def run(df: pd.DataFrame, log=print) -> dict:
    """Build every pipeline from scratch, send ``df`` through it, and count every row at
    every stage: ``{stage: {"in", "stored", "rejected", ...}}``."""
    from ecomlib import client
    from ecomlib.reconcile import reconcile

    teardown_all()
    url = deploy_all()
    log(f"sending {len(df):,} rows to {url}")
    sent = client.send(url, client.to_payload_rows(df), progress=False)
    log("waiting for the stream consumers")
    drain()
    counts = reconcile()
    stages = {"ingest": {"in": sent.sent, "stored": counts["stream"]["rows"], "rejected": sent.rejected,
                         "rows_per_s": round(sent.rows_per_s)}}
    for name in ("raw_s3", "dynamodb", "warehouse"):
        stage = counts[name]
        stages[name] = {k: stage[k] for k in ("in", "stored", "rejected")}
        problems = {k: stage[k] for k in ("missing", "duplicated", "unexpected") if stage[k]}
        if problems:
            stages[name]["problems"] = problems
    log("loading the same rows again as monthly files, with the batch pipeline")
    stages["batch"] = run_batch(df)
    return stages


def run_batch(df: pd.DataFrame) -> dict:
    """Drop ``df`` as monthly CSV files, let the scheduled loader load them, and count:
    ``{"in", "stored", "rejected", "files", "processed", "failed", "runs", "seconds"}``.

    "stored" counts the rows found exactly once in both the tables and the warehouse:
    rows the stream already delivered are overwritten with themselves, not added.
    """
    import tempfile

    from ecomlib.pipelines import batch, dynamodb, warehouse

    batch.deploy()
    with tempfile.TemporaryDirectory() as folder:
        paths = batch.monthly_files(df, folder)
        for path in paths:
            batch.drop_file(path)
    started = time.perf_counter()
    runs = len(batch.run_until_done())
    seconds = time.perf_counter() - started
    listing = batch.files()
    names = {path.name for path in paths}
    wanted = set(map(str, df.index))
    lines, rows = dynamodb.line_ids(), warehouse.row_ids()
    stored = sum(1 for row_id in wanted if lines.get(row_id) == 1 and rows.get(row_id) == 1)
    rejected = sum(batch.report(name)["rejected"] for name in names & set(listing["failed"]))
    return {"in": len(df), "stored": stored, "rejected": rejected, "files": len(paths),
            "processed": len(names & set(listing["processed"])), "failed": len(names & set(listing["failed"])),
            "runs": runs, "seconds": round(seconds, 2)}


def drain(timeout: float = 300) -> dict:
    """Wait until every stream consumer has processed what is in the stream.

    On the embedded AWS this processes the pending records right away, so a notebook or
    test sees the result at once. Elsewhere the consumers run on their own: this waits
    until no mapped function is behind its stream (CloudWatch ``IteratorAge`` back to 0).
    """
    if settings().is_local:
        from ecomlib.local import server

        aws.endpoint_url()  # make sure it runs
        return server.drain(timeout)
    lam, cloudwatch = aws.client("lambda"), aws.client("cloudwatch")
    functions = {m["FunctionArn"].split(":")[6] for m in lam.list_event_source_mappings()["EventSourceMappings"]}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = datetime.now(timezone.utc)
        behind = [f for f in functions if any(point["Maximum"] > 0 for point in cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName="IteratorAge", Dimensions=[{"Name": "FunctionName", "Value": f}],
            StartTime=now - timedelta(minutes=2), EndTime=now, Period=60, Statistics=["Maximum"])["Datapoints"])]
        if not behind:
            return {"functions": sorted(functions)}
        time.sleep(15)
    raise TimeoutError(f"stream consumers still behind after {timeout:.0f} s")
