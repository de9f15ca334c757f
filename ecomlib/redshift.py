"""SQL on the course's Redshift warehouse through the Redshift Data API.

The Data API runs SQL over HTTPS with IAM credentials: no driver, no open port, no
password in the notebook. A statement is submitted (``execute_statement``), runs on the
cluster, and its result is fetched in pages (``get_statement_result``). :func:`sql`
does the three calls and returns a pandas DataFrame with exact types (DECIMAL columns
as ``decimal.Decimal``).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Iterator

import pandas as pd

from ecomlib import aws
from ecomlib.config import resource_name

DATABASE = "dev"
DB_USER = "awsuser"  # the Data API gets temporary credentials for this user from IAM


class StatementError(RuntimeError):
    """A statement failed on the cluster; the message is Redshift's."""


def cluster_id() -> str:
    """The course's cluster: ``ecom-warehouse``."""
    return resource_name("warehouse")


def execute(query: str, parameters: dict | None = None, timeout: float = 600) -> dict:
    """Run one statement and wait for it; returns its description (Status, ResultRows, ...)."""
    data = aws.client("redshift-data")
    kwargs = dict(ClusterIdentifier=cluster_id(), Database=DATABASE, DbUser=DB_USER, Sql=query)
    if parameters:
        kwargs["Parameters"] = [{"name": k, "value": str(v)} for k, v in parameters.items()]
    statement_id = data.execute_statement(**kwargs)["Id"]
    return wait(statement_id, timeout)


def wait(statement_id: str, timeout: float = 600) -> dict:
    """Poll a statement until it has finished; raises StatementError if it failed."""
    data = aws.client("redshift-data")
    deadline, delay = time.monotonic() + timeout, 0.05
    while True:
        described = data.describe_statement(Id=statement_id)
        if described["Status"] == "FINISHED":
            return described
        if described["Status"] in ("FAILED", "ABORTED"):
            raise StatementError(described.get("Error") or described["Status"])
        if time.monotonic() > deadline:
            raise TimeoutError(f"statement {statement_id} still {described['Status']} after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def sql(query: str, parameters: dict | None = None, timeout: float = 600) -> pd.DataFrame:
    """Run a query and return its rows as a DataFrame (empty if it returns none)."""
    described = execute(query, parameters, timeout)
    if not described.get("HasResultSet"):
        return pd.DataFrame()
    return result(described["Id"])


def result(statement_id: str) -> pd.DataFrame:
    """All pages of a finished statement's result, converted to Python values."""
    columns, rows = [], []
    for columns, page in _pages(statement_id):
        rows += page
    frame = pd.DataFrame(rows, columns=[c["name"] for c in columns])
    for column in columns:
        if column["typeName"] in ("timestamp", "timestamptz", "date"):
            frame[column["name"]] = pd.to_datetime(frame[column["name"]])
    return frame


def first_column(query: str, parameters: dict | None = None, timeout: float = 600) -> Iterator:
    """The first value of each row of a query's result, page by page: for a long result
    (every ``row_id`` of a table) without holding all its rows at once."""
    described = execute(query, parameters, timeout)
    if described.get("HasResultSet"):
        for _, page in _pages(described["Id"]):
            yield from (row[0] for row in page)


def _pages(statement_id: str) -> Iterator[tuple[list[dict], list[list]]]:
    """(column metadata, rows converted to Python values) for each page of a result."""
    data = aws.client("redshift-data")
    columns, token = [], None
    while True:
        page = data.get_statement_result(Id=statement_id, **({"NextToken": token} if token else {}))
        columns = columns or page["ColumnMetadata"]
        yield columns, [[_value(field, column) for field, column in zip(record, columns)]
                        for record in page["Records"]]
        token = page.get("NextToken")
        if not token:
            break


def _value(field: dict, column: dict):
    """One field of a Data API record as a Python value (numeric text -> Decimal)."""
    if field.get("isNull"):
        return None
    if "stringValue" in field:
        text = field["stringValue"]
        return Decimal(text) if column["typeName"] in ("numeric", "decimal") else text
    for kind in ("longValue", "doubleValue", "booleanValue", "blobValue"):
        if kind in field:
            return field[kind]
    return None
