"""The course's pipelines, one module each, in the order the notebooks build them.

Each pipeline is declared in ``ecomlib.registry``; its module offers ``deploy()`` (create
what it needs, idempotently) and ``teardown()``. :func:`deploy_all`, :func:`teardown_all`
and :func:`drain` act on all of them (``python -m ecomlib demo`` runs them: ``ecomlib.demo``).
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager

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


class _Steps:
    """A text progress bar over a few long steps, each named as it starts, its clock
    refreshed every second while the step runs (nothing at all when ``on`` is False).
    Text on stdout, as ``client.send``'s: a saved notebook shows its final state."""

    def __init__(self, on: bool, total: int) -> None:
        self.bar = None
        if on:
            from tqdm.std import tqdm

            self.bar = tqdm(total=total, unit="step", file=sys.stdout, desc="drain",
                            bar_format="{desc}: {n_fmt}/{total_fmt} steps [{elapsed}]")

    def __enter__(self) -> "_Steps":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.set_description_str("drain", refresh=False)
            self.bar.close()

    def total(self, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.refresh()

    @contextmanager
    def step(self, what: str):
        if self.bar is None:
            yield
            return
        self.bar.set_description_str(what)
        done = threading.Event()

        def tick() -> None:
            while not done.wait(1):
                self.bar.refresh()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()
            self.bar.update(1)


def drain(timeout: float = 300, poll_seconds: float = 10, stores: list[str] | None = None,
          progress: bool = False) -> dict:
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

    ``progress=True``: also a text bar over its steps (delivering what waits, reading the
    stream, reading each store), named as each starts, its clock running meanwhile: on
    the full data set each step takes tens of seconds.

    Returns, per store waited for: ``{"in": rows owed, "stored": ..., "rejected": ...}``
    (the same on every target).
    """
    from ecomlib.pipelines import stores as reconcile

    if stores is not None:
        unknown = set(stores) - set(registry.stores())
        if unknown:
            raise ValueError(f"no store named {sorted(unknown)}: the stores are {list(registry.stores())}")
    local = settings().is_local
    with _Steps(progress, total=2 + len(stores or registry.stores())) as steps:
        if local:
            from ecomlib.local import server

            aws.endpoint_url()  # make sure it runs
            with steps.step("the embedded AWS delivers what waits in the stream"):
                server.drain(timeout)
            poll_seconds = 0.2
        deadline = time.monotonic() + timeout
        fed = reconcile.fed_stores()
        if stores is not None:
            fed = {stage: since for stage, since in fed.items() if stage in stores}
        steps.total(int(local) + 1 + len(fed))
        if not fed:
            return {}
        with steps.step("reading the stream"):
            arrivals = reconcile.stream_arrivals()
        expected = {stage: {row for row, arrived in arrivals.items() if since is None or arrived >= since}
                    for stage, since in fed.items()}
        first = {}
        for stage, rows in expected.items():
            with steps.step(f"reading {stage} whole, to find the {len(rows):,} rows it owes"):
                first[stage] = reconcile.outstanding(rows, stage)
    return _wait(expected, first, deadline, poll_seconds, local, timeout)


def _wait(expected: dict, counts: dict, deadline: float, poll_seconds: float, local: bool,
          timeout: float) -> dict:
    """drain()'s wait: until no store of ``expected`` lacks a row (``counts``: the latest count)."""
    from ecomlib.pipelines import stores as reconcile

    if local:
        from ecomlib.local import server
    bar = None
    try:
        while True:
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
            counts = {stage: reconcile.outstanding(rows, stage) for stage, rows in expected.items()}
    finally:
        if bar is not None:
            bar.close()
