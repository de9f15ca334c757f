"""The course's pipelines, one module each, in the order the notebooks build them.

Each pipeline is declared in ``ecomlib.registry``; its module offers ``deploy()`` (create
what it needs, idempotently) and ``teardown()``. :func:`deploy_all`, :func:`teardown_all`
and :func:`drain` act on all of them (``python -m ecomlib demo`` runs them: ``ecomlib.demo``).
"""

from __future__ import annotations

import time

from ecomlib import aws, registry
from ecomlib.config import settings


def modules(every: bool = False) -> list:
    """The pipeline modules in the order the data flows (deploy in this order), as
    declared in ``ecomlib.registry``: those deployed together, or ``every`` one (batch too)."""
    return [p.module for p in registry.PIPELINES if every or p.with_the_others]


def deploy_all(every: bool = False) -> str:
    """Deploy the pipelines (``every=True``: the batch pipeline too, with its default
    schedule); returns the ingestion URL (POST /invoices)."""
    from ecomlib.pipelines import ingest

    for module in modules(every):
        module.deploy()
    return ingest.invoices_url()


def teardown_all() -> None:
    """Remove everything every pipeline created, last built first."""
    for module in reversed(modules(every=True)):
        module.teardown()


def drain(timeout: float = 300, poll_seconds: float = 10, stores: list[str] | None = None) -> dict:
    """Wait until every store that a consumer is feeding accounts for the stream's rows.

    The rows in the stream when this is called are the promise: each store whose
    consumer is on (a stream mapping ``Enabled``, the delivery stream ``ACTIVE``; see
    ``pipelines.stores.fed_stores``) must hold each of them, or have given up on it (a
    dead-letter message, or a manifest Firehose left under ``errors/``). The warehouse
    owes only the rows that arrived after its delivery stream was created (Firehose
    reads from LATEST). Stores are counted with their pipelines' declared functions
    (``ecomlib.registry``). A progress bar shows while rows are outstanding; after
    ``timeout`` seconds a TimeoutError says which store still lacks how many rows.

    On the embedded AWS the pending work is first done at once (its pollers and Firehose
    do not wait for their batching windows or buffers), so the check passes right away.

    ``stores``: wait for these stores only (``["dynamodb"]``; see ``registry.stores()``),
    when the others do not matter to what comes next: each store is checked by reading it
    whole, which takes seconds per 100,000 rows.

    Returns, per store waited for: ``{"in": rows owed, "stored": ..., "rejected": ...}``
    (the same on every target).
    """
    from ecomlib.pipelines import stores as reconcile

    local = settings().is_local
    if local:
        from ecomlib.local import server

        aws.endpoint_url()  # make sure it runs
        server.drain(timeout)
        poll_seconds = 0.2
    deadline = time.monotonic() + timeout
    fed = reconcile.fed_stores()
    if stores is not None:
        unknown = set(stores) - set(registry.stores())
        if unknown:
            raise ValueError(f"no store named {sorted(unknown)}: the stores are {list(registry.stores())}")
        fed = {stage: since for stage, since in fed.items() if stage in stores}
    if not fed:
        return {}
    arrivals = reconcile.stream_arrivals()
    expected = {stage: {row for row, arrived in arrivals.items() if since is None or arrived >= since}
                for stage, since in fed.items()}
    bar = None
    try:
        while True:
            counts = {stage: reconcile.outstanding(rows, stage) for stage, rows in expected.items()}
            waiting = {stage: c["waiting"] for stage, c in counts.items() if c["waiting"]}
            if not waiting:
                return {stage: {k: c[k] for k in ("in", "stored", "rejected")} for stage, c in counts.items()}
            owed = sum(len(rows) for rows in expected.values())
            if bar is None:
                from tqdm.auto import tqdm

                bar = tqdm(total=owed, unit="row", desc="stores catching up with the stream")
            bar.n = owed - sum(len(rows) for rows in waiting.values())
            bar.set_postfix_str(", ".join(f"{stage}: {len(rows):,} to go" for stage, rows in waiting.items()))
            bar.refresh()
            if time.monotonic() >= deadline:
                detail = "; ".join(f"{stage} lacks {len(rows):,} of {len(expected[stage]):,} rows "
                                   f"(e.g. RowId {', '.join(map(str, rows[:3]))})" for stage, rows in waiting.items())
                raise TimeoutError(f"after {timeout:.0f} s: {detail}. Is its consumer failing (logs, "
                                   "dead-letter queue, Firehose errors/), or switched off?")
            time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))
            if local:
                server.drain(timeout)  # what arrived at the pollers or Firehose meanwhile
    finally:
        if bar is not None:
            bar.close()
