"""``python -m ecomlib bench``: measure each pipeline stage; print one JSON line.
``python -m ecomlib bench --notebooks [NB ...]``: time the learner's path, every notebook
and its slowest cells; print a table (on stderr) and one JSON line.

Runs on a private embedded AWS (its own state directory, stopped at the end) so that a
measurement never mixes with a learner's resources. The course's speed targets are
checked against these figures, not by timed tests.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

from ecomlib import client, data, portable
from ecomlib.config import settings


def _peak_rss_mb() -> float:
    return round(max(portable.max_rss_mb(), portable.max_rss_mb(children=True)), 1)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(dataset: str | Path | None = None, rows: int | None = None,
        row_per_request_rows: int = 2_000) -> dict:
    """Measure every stage built so far on the dataset and return the figures."""
    private_home = None
    if settings().is_local:
        private_home = tempfile.mkdtemp(prefix="ecomlib-bench-")
        os.environ["ECOM_HOME"] = private_home
    try:
        return _measure(dataset, rows, row_per_request_rows)
    finally:
        if private_home:
            from ecomlib.local import server

            server.stop()


def _measure(dataset, rows, row_per_request_rows) -> dict:
    from ecomlib import deploy as dp
    from ecomlib import pipelines, registry
    from ecomlib.pipelines import ingest, raw_s3
    from ecomlib.pipelines import warehouse
    from ecomlib.reconcile import reconcile

    t0 = time.perf_counter()
    df = data.load(dataset, rows=rows)
    payload = client.to_payload_rows(df)
    result: dict = {
        "dataset": {**data.summary(df), "source": "generated" if df.attrs.get("source") == "generated" else "file"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.system()},
        "target": settings().target,
    }
    _log(f"bench: {len(df):,} rows loaded; measuring one row per request on {row_per_request_rows:,} rows")
    url = ingest.deploy()
    # The seed's way, on a slice: one row per request. Then a fresh stream for the rest.
    baseline = client.send(url, payload[:row_per_request_rows], one_per_request=True, progress=False)
    pipelines.teardown_all()

    # Every pipeline deployed, the stream consumers switched off: rows wait in the stream.
    start = pipeline_started = time.perf_counter()
    # (Firehose reads from LATEST: the warehouse pipeline is deployed before the data is sent)
    deployed = {p.name: p.module.deploy(**({"enabled": False} if p.mappings else {}))
                for p in registry.PIPELINES if p.with_the_others}
    url, api = deployed["ingest"], deployed["invoice_api"]
    result["deploy_seconds"] = round(time.perf_counter() - start, 2)

    _log(f"bench: sending {len(payload):,} rows in batches (Firehose delivering meanwhile)")
    send_started = time.perf_counter()
    batched = client.send(url, payload, progress=False)
    _log(f"bench: ingest {batched.rows_per_s:,.0f} rows/s")
    pipelines.drain(stores=["warehouse"])  # the consumers are off but Firehose: this finishes its deliveries
    result["warehouse_seconds"] = round(time.perf_counter() - send_started, 2)
    _log(f"bench: stream -> Firehose -> warehouse done {result['warehouse_seconds']} s after the send began")
    result.update({
        "ingest_rows": batched.sent, "ingest_accepted": batched.accepted, "ingest_rejected": batched.rejected,
        "ingest_seconds": round(batched.seconds, 2),
        "ingest_rows_per_s": round(batched.rows_per_s),
        "row_per_request_rows_per_s": round(baseline.rows_per_s),
        "ingest_speedup_vs_row_per_request": round(batched.rows_per_s / baseline.rows_per_s, 1),
    })
    for name, function in ((p.name, m.function) for p in registry.PIPELINES for m in p.mappings):
        _log(f"bench: draining the stream into {name}")
        start = time.perf_counter()
        dp.enable_stream_mappings(function)
        pipelines.drain(stores=[name])  # the stage measured (the others were counted already)
        result[f"{name}_seconds"] = round(time.perf_counter() - start, 2)
        _log(f"bench: {name} drained in {result[f'{name}_seconds']} s")

    # End to end: from the first deploy call to every store drained (the consumers drained
    # one after another, so that each stage's own time is measured too).
    result["end_to_end_seconds"] = round(time.perf_counter() - pipeline_started, 2)
    counts = reconcile()
    result["stream_records"] = ingest.stream_stats()["records"]
    result["reconciled"] = all(
        counts[stage]["stored"] == counts[stage]["in"] == batched.accepted
        and not (counts[stage]["missing"] or counts[stage]["duplicated"] or counts[stage]["unexpected"])
        for stage in registry.stores())
    result.update(_copy_versus_duckdb(df, raw_s3.bucket_name(), warehouse))
    result["invoice_get_p95_ms"] = _invoice_get_p95(api, df)
    result.update(_batch(df))
    result["bench_seconds"] = round(time.perf_counter() - t0, 2)  # the whole run, extras included
    result["peak_rss_mb"] = _peak_rss_mb()
    # whose memory: this process (the data, the rows sent) and the embedded AWS (what it stores)
    result["peak_rss_bench_mb"] = round(portable.max_rss_mb(), 1)
    if settings().is_local:
        from ecomlib.local import server

        result["peak_rss_embedded_aws_mb"] = (server.status() or {}).get("memory", {}).get("peak_rss_mb")
    return result


def _batch(df) -> dict:
    """The same rows as monthly files, loaded by the scheduled batch loader into fresh
    tables and warehouse: seconds from the first scheduled run to the last file loaded."""
    from ecomlib import demo, pipelines

    pipelines.teardown_all()
    _log("bench: batch: monthly files, loaded by the schedule")
    stage = demo.run_batch(df)
    _log(f"bench: batch loaded in {stage['seconds']} s ({stage['runs']} runs)")
    return {"batch_files": stage["files"], "batch_runs": stage["runs"], "batch_seconds": stage["seconds"],
            "batch_rows_per_s": round(len(df) / stage["seconds"]),
            "batch_reconciled": stage["stored"] == stage["in"] == len(df) and stage["processed"] == stage["files"]}


def _invoice_get_p95(base_url: str, df, requests_count: int = 1_000) -> float:
    """p95 latency in ms of GET /invoices?InvoiceNo=… over invoices drawn from the data."""
    import random

    import requests

    invoices = sorted(df["InvoiceNo"].unique())
    rng = random.Random(42)
    session = requests.Session()
    latencies = []
    for _ in range(requests_count):
        started = time.perf_counter()
        response = session.get(f"{base_url}/invoices", params={"InvoiceNo": rng.choice(invoices)}, timeout=30)
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    latencies.sort()
    return round(latencies[int(0.95 * len(latencies)) - 1], 2)


def _copy_versus_duckdb(df, bucket: str, warehouse, runs: int = 3) -> dict:
    """COPY the raw zone (every row, JSON Lines) into a fresh table, and time DuckDB
    reading the same rows from a CSV file directly into a table, for the ratio. Each is
    timed ``runs`` times and the fastest run counts: both take under a second, and one
    hiccup of the machine would otherwise decide the ratio."""
    import duckdb

    from ecomlib import redshift as wh

    copy_seconds, loaded = [], []
    for _ in range(runs):
        wh.execute(warehouse.TABLE_DDL.replace(warehouse.TABLE, "copy_bench", 1))
        started = time.perf_counter()
        wh.execute(f"COPY copy_bench FROM 's3://{bucket}/raw/' JSON '{warehouse.jsonpaths_url()}' "
                   "TIMEFORMAT 'auto'")
        copy_seconds.append(time.perf_counter() - started)
        loaded.append(int(wh.sql("SELECT COUNT(*) AS n FROM copy_bench")["n"][0]))
        wh.execute("DROP TABLE copy_bench")

    direct_seconds = []
    with tempfile.TemporaryDirectory() as folder:
        path = data.write_csv(df, Path(folder) / "data.csv")
        for _ in range(runs):
            # Like the COPY, read every column into a table (not just the two a SUM needs).
            connection = duckdb.connect()
            started = time.perf_counter()
            connection.execute(f"CREATE TABLE direct AS SELECT * FROM read_csv('{path}', encoding = 'latin-1')")
            direct_seconds.append(time.perf_counter() - started)
            connection.close()
    if len(set(loaded)) != 1:
        raise AssertionError(f"the COPYs loaded different numbers of rows: {loaded}")
    return {"copy_rows": loaded[0], "copy_seconds": round(min(copy_seconds), 2),
            "duckdb_direct_seconds": round(min(direct_seconds), 2),
            "copy_vs_duckdb_direct": round(min(copy_seconds) / min(direct_seconds), 1)}


# ---- the learner's path: every notebook, timed cell by cell ----------------------------

def run_notebooks(dataset: str | Path | None = None, notebooks: list[str] | None = None,
                  top: int = 10) -> dict:
    """Run the notebooks in order as a learner does (a fresh kernel each, one private
    embedded AWS for all of them, stopped at the end; the data of ``dataset``, else of
    ``ECOM_DATASET``, else the generated default dataset) and time them, cell by cell.

    ``notebooks``: names or leading numbers ("01", "04_stream_to_dynamodb"); all if empty.
    Returns {"dataset", "machine", "notebooks": [{"notebook", "seconds", "cells", "error"}],
    "total_seconds", "slowest_cells": the ``top`` slowest cells of all, with their notebook,
    index (among all cells, as Jupyter numbers them from 0), first line, seconds and whether
    they showed a progress bar ("bar"), "silent_cells": every cell that ran longer than
    ``SILENT_SECONDS`` without one}.
    A notebook that fails is reported with its error, and the next one runs all the same."""
    from ecomlib import edition

    dataset = dataset or os.environ.get(data.ENV_VAR)
    paths = _select_notebooks(edition.NOTEBOOKS, notebooks)
    home = tempfile.mkdtemp(prefix="ecomlib-bench-notebooks-")
    env = edition.nbval_environment(home)
    if dataset:
        env[data.ENV_VAR] = str(Path(dataset).resolve())
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    results, cells = [], []
    try:
        for path in paths:
            _log(f"bench: running {path.name} ...")
            notebook = json.loads(path.read_text(encoding="utf-8"))
            started, error = time.perf_counter(), None
            try:
                done = edition.execute(notebook, path.parent)
            except Exception as failure:  # noqa: BLE001  (reported; the next notebook runs)
                lines = str(failure).strip().splitlines()
                done, error = notebook, (lines[-1] if lines else type(failure).__name__)[:200]
            seconds = round(time.perf_counter() - started, 2)
            timed = [] if error else _cell_seconds(done, path.name)
            cells += timed
            results.append({"notebook": path.name, "seconds": seconds, "cells": len(timed), "error": error})
            _log(f"bench: {path.name} {seconds} s" + (f" FAILED {error}" if error else ""))
    finally:
        from ecomlib.local import server

        server.stop()
        os.environ.clear()
        os.environ.update(saved)
    cells.sort(key=lambda cell: cell["seconds"], reverse=True)
    return {"dataset": "file" if dataset else "generated",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.system()},
            "notebooks": results, "total_seconds": round(sum(r["seconds"] for r in results), 2),
            "slowest_cells": cells[:top],
            "silent_cells": [c for c in cells if c["seconds"] > SILENT_SECONDS and not c["bar"]]}


SILENT_SECONDS = 10  # a cell that runs longer shows a progress bar saying what it is doing
# What a progress bar leaves in a cell's output: tqdm's "20000/20000 [00:07<00:00, ...]" and
# the step bars' "3/3 steps [00:02]" (pipelines.drain, the batch loader's files).
_BAR = re.compile(r"\d+/\d+(?: \w+)? \[\d+:\d\d")


def _select_notebooks(folder: Path, wanted: list[str] | None) -> list[Path]:
    every = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not wanted:
        return every
    chosen = [p for p in every if any(p.name == w or p.stem == w or p.name.startswith(f"{w}_") for w in wanted)]
    unknown = [w for w in wanted if not any(p.name == w or p.stem == w or p.name.startswith(f"{w}_") for p in every)]
    if unknown:
        raise ValueError(f"no notebook named {', '.join(unknown)} in {folder.name}/")
    return chosen


def _cell_seconds(notebook: dict, name: str) -> list[dict]:
    """Each code cell's run time, from the timestamps the notebook client records."""
    from datetime import datetime

    out = []
    for index, cell in enumerate(notebook["cells"]):
        timing = cell.get("metadata", {}).get("execution", {})
        begun = timing.get("iopub.status.busy") or timing.get("iopub.execute_input")
        ended = timing.get("shell.execute_reply")
        if cell.get("cell_type") != "code" or not (begun and ended):
            continue
        seconds = (datetime.fromisoformat(ended.replace("Z", "+00:00"))
                   - datetime.fromisoformat(begun.replace("Z", "+00:00"))).total_seconds()
        source = cell.get("source", "")
        source = source if isinstance(source, str) else "".join(source)
        first = next((line.strip() for line in source.splitlines() if line.strip()), "")
        out.append({"notebook": name, "cell": index, "first_line": first[:80], "seconds": round(seconds, 2),
                    "bar": _shows_progress(cell)})
    return out


def _shows_progress(cell: dict) -> bool:
    """Whether a cell's output holds a progress bar (text on its standard output)."""
    for output in cell.get("outputs", []):
        text = output.get("text", "") if output.get("output_type") == "stream" else ""
        if _BAR.search(text if isinstance(text, str) else "".join(text)):
            return True
    return False


def notebooks_table(result: dict) -> str:
    """The figures of :func:`run_notebooks` as two plain-text tables."""
    lines = [f"{'notebook':40} {'seconds':>9}"]
    lines += [f"{r['notebook']:40} {r['seconds']:>9.2f}" + (f"  FAILED {r['error']}" if r["error"] else "")
              for r in result["notebooks"]]
    lines += [f"{'total':40} {result['total_seconds']:>9.2f}", "",
              f"{'slowest cells':40} {'cell':>5} {'seconds':>9}  first line"]
    lines += [f"{c['notebook']:40} {c['cell']:>5} {c['seconds']:>9.2f}  {c['first_line']}"
              for c in result["slowest_cells"]]
    lines += ["", f"cells over {SILENT_SECONDS} s without a progress bar: "
              + (str(len(result["silent_cells"])) if result["silent_cells"] else "none")]
    lines += [f"{c['notebook']:40} {c['cell']:>5} {c['seconds']:>9.2f}  {c['first_line']}"
              for c in result["silent_cells"]]
    return "\n".join(lines)
