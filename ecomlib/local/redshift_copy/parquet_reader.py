"""COPY ... FORMAT PARQUET: the files' columns matched to the table's by position.

AWS: a Parquet file's columns load into the table's (or the column list's) in order;
their numbers must match, and each value must fit its column's type.

Here: DuckDB's ``read_parquet``; ``convert`` casts each column to the target type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecomlib.local.redshift_copy.options import CopySpec
from ecomlib.local.redshift_copy.sqltext import ident, sql_string
from ecomlib.local.redshift_sql import Column, WarehouseError

if TYPE_CHECKING:
    from ecomlib.local.redshift_copy.files import Fetched


def parquet_source(con, spec: CopySpec, fetched: Fetched, targets: list[Column]) -> tuple[str, list[str]]:
    """(FROM clause, one raw expression per target column) for the COPY's files."""
    paths = "[" + ", ".join(sql_string(str(f.path)) for f in fetched.files) + "]"
    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({paths}, union_by_name=false)").fetchall()
    if len(described) != len(targets):
        raise WarehouseError(f"ERROR: Load into table '{spec.table}' failed: the Parquet files have "
                             f"{len(described)} columns and the table or column list {len(targets)}")
    return f"read_parquet({paths}, filename=true) AS src", [f"src.{ident(row[0])}" for row in described]
