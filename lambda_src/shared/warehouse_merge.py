"""Merging a staged chunk into the warehouse table with the Redshift Data API (batch_loader).

:func:`merge_sql` is Redshift's staging-table merge: COPY the chunk into a temporary table,
DELETE the rows with the same row_id, INSERT; so a chunk merged twice changes nothing.
:func:`merge_into_warehouse` sends the statements as one transaction
(``BatchExecuteStatement``) and polls ``DescribeStatement`` until the cluster is done:
the Data API answers at once and runs the SQL in the background.  :func:`merging` runs
it in a thread while the caller writes elsewhere (DynamoDB), and then waits for it.

``settings`` is the function's settings: ``cluster_id``, ``database``, ``db_user`` (the
Data API sign-in), ``warehouse_table``, ``jsonpaths`` and ``copy_role_arn`` (or None).
Only the standard library and boto3 (what the Lambda Python runtime provides).
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

from shared.aws import client, retries

STATEMENT_TIMEOUT = 600  # seconds to wait for the warehouse's merge


def merge_sql(settings: Any, source_url: str) -> list[str]:
    """Redshift's staging-table merge: rows already there (same row_id) are replaced."""
    credentials = f" IAM_ROLE '{settings.copy_role_arn}'" if settings.copy_role_arn else ""
    table = settings.warehouse_table
    return [
        f"CREATE TEMP TABLE batch_stage (LIKE {table})",
        f"COPY batch_stage FROM '{source_url}'{credentials} JSON '{settings.jsonpaths}' "
        "TIMEFORMAT 'auto' TRUNCATECOLUMNS BLANKSASNULL EMPTYASNULL",
        f"DELETE FROM {table} USING batch_stage WHERE {table}.row_id = batch_stage.row_id",
        f"INSERT INTO {table} SELECT * FROM batch_stage",
        "DROP TABLE batch_stage",
    ]


def merge_into_warehouse(settings: Any, source_url: str, data: Any) -> None:
    """Run the merge as one transaction (BatchExecuteStatement on the Redshift Data API
    client ``data``) and wait for it; raises if it fails or takes too long."""
    statement = data.batch_execute_statement(ClusterIdentifier=settings.cluster_id, Database=settings.database,
                                             DbUser=settings.db_user, Sqls=merge_sql(settings, source_url))
    deadline = time.monotonic() + STATEMENT_TIMEOUT
    for _ in retries(None, max_delay=2.0):
        described = data.describe_statement(Id=statement["Id"])
        if described["Status"] == "FINISHED":
            return
        if described["Status"] in ("FAILED", "ABORTED"):
            raise RuntimeError(f"warehouse merge {described['Status']}: {described.get('Error')}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"warehouse merge still {described['Status']} after {STATEMENT_TIMEOUT} s")


@contextlib.contextmanager
def merging(settings: Any, source_url: str) -> Iterator[None]:
    """Merge ``source_url`` into the warehouse while the ``with`` block runs, then wait for
    the merge (also when the block raises); raises what the merge raised."""
    data = client("redshift-data")  # created here, before the thread uses it
    with ThreadPoolExecutor(max_workers=1) as pool:
        merged = pool.submit(merge_into_warehouse, settings, source_url, data)
        yield
        merged.result()
