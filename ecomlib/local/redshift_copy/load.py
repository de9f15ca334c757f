"""COPY's fetched files loaded into the table: all or nothing, a failure named as Redshift does.

AWS: a COPY loads every row or none; more than MAXERROR bad rows fail it (bad rows up to
MAXERROR are skipped), NOLOAD checks without loading; its error points at
STL_LOAD_ERRORS, whose row names the S3 object, the column, the value and the reason.

Here: :func:`load` runs one ``INSERT ... SELECT`` over the format's reader
(``json_reader``, ``csv_reader``, ``parquet_reader``) with each field converted
(``convert``). JSON Lines in the shared file load the fast way; when that fails, the
load runs again from one file per object to name the object of the first bad row
(what STL_LOAD_ERRORS would say), then is rolled back.
"""

from __future__ import annotations

import contextlib
import logging
import time

from ecomlib.local.redshift_copy.convert import Conversion, conversion
from ecomlib.local.redshift_copy.csv_reader import csv_source
from ecomlib.local.redshift_copy.json_reader import json_source
from ecomlib.local.redshift_copy.options import CopySpec
from ecomlib.local.redshift_copy.parquet_reader import parquet_source
from ecomlib.local.redshift_copy.source import Fetched, one_file_per_object
from ecomlib.local.redshift_copy.sqltext import ident
from ecomlib.local.redshift_sql import Column, Result, WarehouseError, describe_table, redshift_type

log = logging.getLogger("ecomlib.warehouse")

# One reader per format: (con, spec, fetched, targets) -> (FROM clause, raw expression per column)
READERS = {"JSON": json_source, "PARQUET": parquet_source, "CSV": csv_source, "TEXT": csv_source}


class CopyFailed(WarehouseError):
    """A COPY failed after its INSERT had started (the transaction is rolled back)."""


def _targets(con, spec: CopySpec) -> list[Column]:
    table_columns = describe_table(con, spec.schema, spec.table)
    if spec.columns is None:
        return [c for c in table_columns if spec.explicit_ids or not c.identity]
    by_name = {c.name.lower(): c for c in table_columns}
    chosen = []
    for name in spec.columns:
        column = by_name.get(name.lower())
        if column is None:
            raise WarehouseError(f'ERROR: column "{name}" of relation "{spec.table}" does not exist')
        chosen.append(column)
    return chosen


def load(con, spec: CopySpec, fetched: Fetched) -> Result:
    """Load the fetched objects into the COPY's table on a DuckDB connection (in its
    transaction); returns the rows loaded. Raises WarehouseError, or CopyFailed once the
    INSERT has started (the transaction is then rolled back)."""
    import duckdb

    targets = _targets(con, spec)
    if not fetched.files:
        return Result(row_count=0)
    if spec.max_error or spec.no_load or all(f.span is None for f in fetched.files):
        return _load_one_file_per_object(con, spec, one_file_per_object(fetched), targets)
    # JSON Lines in one shared file: the fast way, without naming each row's object.
    began = time.monotonic()
    try:
        source, raw = json_source(con, spec, fetched, targets, filename=False)
        select = f"SELECT {', '.join(conversion(r, t, spec).value for r, t in zip(raw, targets))} FROM {source}"
        loaded = con.execute(_insert(spec, targets, select)).fetchone()[0]
    except duckdb.InterruptException:
        raise
    except duckdb.Error as exc:
        raise CopyFailed(_failure_by_object(con, spec, fetched, targets, exc)) from None
    log.info("COPY %s: loaded %d rows from %d objects in %.2f s", spec.target, loaded, len(fetched.files),
             time.monotonic() - began)
    return Result(row_count=int(loaded))


def _failure_by_object(con, spec: CopySpec, fetched: Fetched, targets: list[Column], exc: Exception) -> str:
    """Why loading the shared file failed, in the words of the one-file-per-object load
    (which names the S3 object of the first bad row): run that, then roll it back."""
    import duckdb

    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")
    con.execute("BEGIN TRANSACTION")
    try:
        _load_one_file_per_object(con, spec, one_file_per_object(fetched), targets)
    except WarehouseError as again:
        return str(again)
    finally:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
    return _load_failed(spec, str(exc).split("\n")[0])  # not expected: the same rows loaded one by one


class _Load:
    """One COPY loaded from one file per object: its source, raw fields and conversions."""

    def __init__(self, con, spec: CopySpec, fetched: Fetched, targets: list[Column]):
        import duckdb

        self.con, self.spec, self.fetched, self.targets = con, spec, fetched, targets
        try:
            self.source, self.raw = READERS[spec.format](con, spec, fetched, targets)
        except duckdb.Error as exc:
            raise WarehouseError(_load_failed(spec, _file_problem(exc, fetched))) from None
        self.conversions = [conversion(r, t, spec) for r, t in zip(self.raw, targets)]

    def first_problem(self) -> str | None:
        return _first_problem(self.con, self.fetched, self.source, self.raw, self.conversions, self.targets,
                              self.spec)

    def where(self) -> str:
        """WHERE leaving out the bad rows, if MAXERROR allows them (none: fail on the first)."""
        import duckdb

        spec = self.spec
        bad = " OR ".join(f"({b})" for b in _bad_conditions(self.raw, self.conversions, self.targets, spec))
        if spec.max_error <= 0 or not bad:
            return ""
        try:
            rejected = self.con.execute(f"SELECT count(*) FROM {self.source} WHERE {bad}").fetchone()[0]
        except duckdb.Error as exc:
            raise WarehouseError(_load_failed(spec, _file_problem(exc, self.fetched))) from None
        if rejected > spec.max_error:
            raise WarehouseError(_load_failed(spec, f"{rejected} rows could not be loaded, more than "
                                                    f"MAXERROR {spec.max_error}; the first: {self.first_problem()}"))
        return f" WHERE NOT ({bad})"

    def check(self, select: str) -> Result:
        """NOLOAD: read and convert every row, load none."""
        import duckdb

        try:
            self.con.execute(f"SELECT count(*) FROM ({select})").fetchone()
        except duckdb.Error as exc:
            problem = self.first_problem()
            raise WarehouseError(_load_failed(self.spec, problem or _file_problem(exc, self.fetched))) from None
        return Result(row_count=0)

    def insert(self, select: str) -> Result:
        import duckdb

        spec = self.spec
        began = time.monotonic()
        try:
            loaded = self.con.execute(_insert(spec, self.targets, select)).fetchone()[0]
        except duckdb.InterruptException:
            raise
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                self.con.execute("ROLLBACK")  # the transaction is lost; the diagnosis reads the files again
            raise CopyFailed(_load_failed(spec, self.first_problem() or _file_problem(exc, self.fetched))) from None
        log.info("COPY %s: loaded %d rows from %d files in %.2f s", spec.target, loaded, len(self.fetched.files),
                 time.monotonic() - began)
        return Result(row_count=int(loaded))


def _load_one_file_per_object(con, spec: CopySpec, fetched: Fetched, targets: list[Column]) -> Result:
    """Load with DuckDB's ``filename`` column at hand, to name the object of a bad row."""
    run = _Load(con, spec, fetched, targets)
    select = f"SELECT {', '.join(c.value for c in run.conversions)} FROM {run.source}{run.where()}"
    return run.check(select) if spec.no_load else run.insert(select)


def _insert(spec: CopySpec, targets: list[Column], select: str) -> str:
    """INSERT INTO the COPY's table (its target columns) the rows of ``select``."""
    return f"INSERT INTO {_quoted_target(spec)} ({', '.join(ident(t.name) for t in targets)}) {select}"


def _quoted_target(spec: CopySpec) -> str:
    if spec.schema:
        return f"{ident(spec.schema)}.{ident(spec.table)}"
    return ident(spec.table)


def _load_failed(spec: CopySpec, detail: str) -> str:
    return (f"ERROR: Load into table '{spec.table}' failed. Check 'stl_load_errors' system table for details. "
            f"[local warehouse, no STL tables: {detail}]")


def _checks(conversion: Conversion, column: Column, spec: CopySpec) -> list[tuple[str, str | None]]:
    """(condition true for a bad field, reason or None to ask the conversion) for one column."""
    checks: list[tuple[str, str | None]] = []
    if conversion.valid != "true":
        checks.append((f"NOT ({conversion.valid})", None))
    if column.type.upper() == "VARCHAR" and column.length and not spec.truncate_columns:
        checks.append((f"coalesce(strlen({conversion.value}), 0) > {column.length}",
                       f"String length exceeds DDL length (varchar({column.length}))"))
    if not column.nullable and not column.default:
        checks.append((f"({conversion.valid}) AND ({conversion.value}) IS NULL", "Missing data for not-null field"))
    return checks


def _bad_conditions(raw: list[str], conversions: list[Conversion], targets: list[Column],
                    spec: CopySpec) -> list[str]:
    return [condition for r, c, t in zip(raw, conversions, targets) if r != "NULL"
            for condition, _ in _checks(c, t, spec)]


def _first_bad_row(con, source: str, raw: str, condition: str) -> tuple | None:
    """(file name, raw field) of the first row where ``condition`` holds, or None."""
    import duckdb

    try:
        return con.execute(f"SELECT src.filename, CAST({raw} AS VARCHAR) FROM {source} WHERE {condition} "
                           "LIMIT 1").fetchone()
    except duckdb.Error:
        return None


def _conversion_reason(con, conversion: Conversion, raw: str, field: str, type_name: str) -> str:
    """Why the field does not convert: convert it alone and read DuckDB's error."""
    import duckdb

    try:
        con.execute(f"SELECT {conversion.value.replace(raw, 'x.v')} FROM "
                    "(SELECT CAST(? AS VARCHAR) AS v) AS x", [field]).fetchone()
        return f"Invalid value for type {type_name}"
    except duckdb.Error as exc:
        return _reason(str(exc), type_name)


def _first_problem(con, fetched: Fetched, source: str, raw: list[str], conversions: list[Conversion],
                   targets: list[Column], spec: CopySpec) -> str | None:
    """The first field that does not load, described as a STL_LOAD_ERRORS row would be."""
    urls = {str(f.path): f.url for f in fetched.files}
    for r, conversion_, column in zip(raw, conversions, targets):
        if r == "NULL":
            continue
        type_name = redshift_type(column.type.upper())[0]
        for condition, reason in _checks(conversion_, column, spec):
            row = _first_bad_row(con, source, r, condition)
            if row is None:
                continue
            if reason is None:  # convert the field alone, for its reason
                reason = _conversion_reason(con, conversion_, r, row[1], type_name)
            shown = row[1] if row[1] is None or len(row[1]) <= 200 else row[1][:200] + "..."
            return (f"file {urls.get(row[0], row[0])}, column {column.name} ({type_name}), "
                    f"value '{shown}': {reason}")
    return None


def _reason(message: str, type_name: str) -> str:
    text = message.split("\n")[0]
    for prefix in ("Invalid Input Error: ", "Conversion Error: ", "Out of Range Error: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if "Could not convert string" in text or "Could not cast" in text:
        if type_name == "numeric":
            return "Invalid digit or numeric overflow, " + text
        return f"Invalid value for type {type_name}: {text}"
    return text


def _file_problem(exc: Exception, fetched: Fetched) -> str:
    """A reader error (malformed JSON, wrong number of CSV fields) with the S3 object named."""
    text = str(exc)
    for f in fetched.files:
        text = text.replace(str(f.path), f.url)
    lines = [line for line in text.split("\n") if line.strip()]
    detail = " ".join(lines[:3])
    if "Expected Number of Columns" in text or "Found:" in text:
        detail = "Extra column(s) found or delimiter not found: " + detail
    return detail
