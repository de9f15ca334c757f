"""The course's pipelines, one module each, in the order the notebooks build them.

Each pipeline is declared in ``ecomlib.registry``; its module offers ``deploy()`` (create
what it needs, idempotently) and ``teardown()``. :func:`deploy_all`, :func:`teardown_all`
and :func:`drain` act on all of them (``python -m ecomlib demo`` runs them: ``ecomlib.demo``).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

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
