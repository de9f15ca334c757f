"""``python -m ecomlib demo``: run every pipeline on the dataset and account for every row.

Progress goes to stderr; the result is one JSON line on stdout:
``{"dataset": {"rows", "invoices", "customers", "source"}, "stages": {name: {"in",
"stored", "rejected"}}, "target": ..., "seconds": ...}``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

from ecomlib import data, pipelines, registry
from ecomlib.config import settings


def log(message: str) -> None:
    """Progress for people, on stderr (stdout carries only the JSON result)."""
    print(message, file=sys.stderr, flush=True)


def run(dataset: str | Path | None = None, rows: int | None = None, keep: bool = False) -> dict:
    """Load the dataset, run every stage on the current target, return the summary."""
    t0 = time.perf_counter()
    df = data.load(dataset, rows=rows)
    source = "generated" if df.attrs.get("source") == "generated" else "file"
    log(f"dataset: {len(df):,} rows ({source})")

    s = settings()
    started_here = False
    if s.is_local:
        from ecomlib.local import server

        started_here = server.status() is None
        log(f"embedded AWS at {server.ensure_running()}")
    try:
        stages = run_pipelines(df, log=log)
    finally:
        if started_here and not keep:
            server.stop()
    return {
        "dataset": {**data.summary(df), "source": source},
        "stages": stages,
        "target": s.target,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def run_pipelines(df: pd.DataFrame, log=print) -> dict:
    """Build every pipeline of the registry from scratch, send ``df`` through it, and count
    every row at every stage: ``{stage: {"in", "stored", "rejected", ...}}``.

    The stream's pipelines get the rows from the ingestion API and are reconciled with the
    stream; a pipeline fed by files (batch) gets the same rows as files afterwards."""
    from ecomlib import client
    from ecomlib.pipelines import ingest
    from ecomlib.reconcile import reconcile

    pipelines.teardown_all()
    url = pipelines.deploy_all()
    log(f"sending {len(df):,} rows to {url}")
    sent = client.send(url, client.to_payload_rows(df), progress=False)
    log("waiting for the stream consumers")
    pipelines.drain()
    counts = reconcile()
    stages = {ingest.PIPELINE.name: {"in": sent.sent, "stored": counts["stream"]["rows"], "rejected": sent.rejected,
                                     "rows_per_s": round(sent.rows_per_s)}}
    for name in registry.stores():
        stage = counts[name]
        stages[name] = {k: stage[k] for k in ("in", "stored", "rejected")}
        problems = {k: stage[k] for k in ("missing", "duplicated", "unexpected") if stage[k]}
        if problems:
            stages[name]["problems"] = problems
    for pipeline in registry.PIPELINES:
        if pipeline.fed_by == "files":
            log(f"loading the same rows again as monthly files, with the {pipeline.name} pipeline")
            stages[pipeline.name] = run_batch(df)
    return stages


def run_batch(df: pd.DataFrame) -> dict:
    """Drop ``df`` as monthly CSV files, let the scheduled loader load them, and count:
    ``{"in", "stored", "rejected", "files", "processed", "failed", "runs", "seconds"}``.

    "stored" counts the rows found exactly once in every store of the stream's pipelines
    (the tables and the warehouse): rows the stream already delivered are overwritten
    with themselves, not added.
    """
    import tempfile
    from collections import Counter

    from ecomlib.pipelines import batch

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
    # batch writes to the serving tables and the warehouse (not to the raw zone)
    counted = [Counter(getattr(registry.get(name).module, registry.get(name).count)())
               for name in ("dynamodb", "warehouse")]
    stored = sum(1 for row_id in wanted if all(ids.get(row_id) == 1 for ids in counted))
    rejected = sum(batch.report(name)["rejected"] for name in names & set(listing["failed"]))
    return {"in": len(df), "stored": stored, "rejected": rejected, "files": len(paths),
            "processed": len(names & set(listing["processed"])), "failed": len(names & set(listing["failed"])),
            "runs": runs, "seconds": round(seconds, 2)}
