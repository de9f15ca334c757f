"""``python -m ecomlib bench``: measure each pipeline stage; print one JSON line.

Runs on a private embedded AWS (its own state directory, stopped at the end) so that a
measurement never mixes with a learner's resources. The course's speed targets are
checked against these figures, not by timed tests.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from ecomlib import client, data
from ecomlib.config import settings


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)


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
    from ecomlib.pipelines import ingest

    t0 = time.perf_counter()
    df = data.load(dataset, rows=rows)
    payload = client.to_payload_rows(df)
    result: dict = {
        "dataset": {**data.summary(df), "source": "generated" if df.attrs.get("source") == "generated" else "file"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.system()},
        "target": settings().target,
    }
    _log(f"bench: {len(df):,} rows loaded; deploying the ingest pipeline")
    url = ingest.deploy()

    # The seed's way: one row per request, on a slice.
    baseline = client.send(url, payload[:row_per_request_rows], one_per_request=True, progress=False)
    # The course's way: batches of rows per request, packed into records per invoice.
    _log(f"bench: row per request {baseline.rows_per_s:,.0f} rows/s; sending {len(payload):,} rows in batches")
    batched = client.send(url, payload, progress=False)
    stats = ingest.stream_stats()
    expected = baseline.accepted + batched.accepted
    result.update({
        "ingest_rows": batched.sent,
        "ingest_accepted": batched.accepted,
        "ingest_rejected": batched.rejected,
        "ingest_seconds": round(batched.seconds, 2),
        "ingest_rows_per_s": round(batched.rows_per_s),
        "row_per_request_rows_per_s": round(baseline.rows_per_s),
        "ingest_speedup_vs_row_per_request": round(batched.rows_per_s / baseline.rows_per_s, 1),
        "stream_records": stats["records"],
        "stream_rows_match": stats["rows"] == expected,
    })
    result["end_to_end_seconds"] = round(time.perf_counter() - t0, 2)
    result["peak_rss_mb"] = _peak_rss_mb()
    return result
