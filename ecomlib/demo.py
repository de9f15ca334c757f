"""``python -m ecomlib demo``: run every pipeline on the dataset and account for every row.

Progress goes to stderr; the result is one JSON line on stdout:
``{"dataset": {"rows", "invoices", "customers", "source"}, "stages": {name: {"in",
"stored", "rejected"}}, "target": ..., "seconds": ...}``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ecomlib import data
from ecomlib.config import settings
from ecomlib import pipelines


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
        stages = pipelines.run(df, log=log)
    finally:
        if started_here and not keep:
            server.stop()
    return {
        "dataset": {**data.summary(df), "source": source},
        "stages": stages,
        "target": s.target,
        "seconds": round(time.perf_counter() - t0, 2),
    }
