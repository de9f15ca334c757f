"""A local Redshift warehouse behind the Redshift Data API: DuckDB files, Redshift SQL, COPY.

AWS: SQL reaches a Redshift cluster (or a Serverless workgroup) over HTTPS through the
Redshift Data API. ``ExecuteStatement`` returns an Id at once and the statement runs in
the background (SUBMITTED, PICKED, STARTED, then FINISHED, FAILED or ABORTED);
``DescribeStatement`` tells its status, ``Error``, ``HasResultSet``, ``ResultRows`` (rows
returned, or rows affected by INSERT/UPDATE/DELETE/COPY; -1 when there is none),
``ResultSize`` and ``Duration`` (nanoseconds); ``GetStatementResult`` pages the rows as
typed fields (``longValue`` for integers, ``stringValue`` for exact NUMERIC text such as
``"2.550"`` and for timestamps ``"2010-12-01 08:26:00"``, ``doubleValue``,
``booleanValue``, ``isNull``) with Redshift's column metadata (``typeName`` ``int4``,
``numeric``, ``varchar``...). ``BatchExecuteStatement`` runs up to 40 statements in one
transaction, as sub-statements ``<id>:<n>``. An unknown cluster is a ValidationException
("Redshift endpoint doesn't exist in this region."). ``COPY`` loads a table from S3 (every
object whose key starts with the FROM prefix, or the objects a manifest lists; JSON
matched by 'auto' names or a JSONPaths file, CSV, delimited text, Parquet; GZIP...), all
or nothing, and points at STL_LOAD_ERRORS when a value does not load.

moto 5.2: ``ExecuteStatement`` accepts any SQL and runs nothing, ``DescribeStatement``
stays STARTED forever, ``GetStatementResult`` returns the same three canned rows, and
``BatchExecuteStatement`` and ``ListStatements`` are not implemented. There is no
Redshift Serverless.

Here: each cluster gets an embedded DuckDB database,
``$ECOM_HOME/warehouse/<pid>-<cluster>.duckdb``, deleted with the cluster, on reset and
at stop (a renamed cluster keeps it). Statements on one cluster run one at a time, at
once inside ``ExecuteStatement``, so they are FINISHED or FAILED when the client first
polls; ``MOTO_LOCK`` is released while DuckDB works, so a long COPY does not hold up
other AWS requests. Redshift SQL is translated by sqlglot (``read="redshift"``,
``write="duckdb"``) plus fix-ups: DISTSTYLE/DISTKEY/SORTKEY/ENCODE/BACKUP are dropped;
VARCHAR(n)/CHAR(n) lengths are enforced in bytes (TEXT and VARCHAR without a length are
VARCHAR(256), as on Redshift); PRIMARY KEY/UNIQUE/FOREIGN KEY are informational, not
enforced, as on Redshift; IDENTITY columns become sequences; identifiers fold to lower
case; ``/`` between integers is integer division; NULLs sort as the largest values; the
session time zone is UTC; GETDATE() is a TIMESTAMP in whole seconds; DATE_TRUNC returns
a TIMESTAMP; DATEPART/EXTRACT take Redshift's part names; TO_CHAR takes Mon, Month, Day,
Dy, HH, AM; unnamed result columns get Redshift's names (``count``, ``sum``,
``?column?``). Parameters (``:name``) are bound as values, never spliced into the SQL.
COPY is not translated but done here: the objects are read from moto's S3 in-process,
decompressed, written to memory-backed temporary files and loaded by DuckDB's JSON and
CSV readers in one ``INSERT ... SELECT`` that converts each raw text field as COPY
does (DECIMAL exact and truncated to the column's scale unless ROUNDEC; integers must be
integers; TIMEFORMAT 'auto' or the strict default 'YYYY-MM-DD HH:MI:SS'; EMPTYASNULL,
BLANKSASNULL, TRUNCATECOLUMNS, MAXERROR, ...). JSON 'auto' matches keys equal to the
(lower-case) column names and 'auto ignorecase' any case, as the COPY reference says;
objects may be one per line or back to back (``{...}{...}``, as Firehose writes them).
A failing COPY loads nothing; its Error has Redshift's first sentence and names the
first bad value (S3 object, column, value, reason). A COPY's ResultRows is the rows
loaded, as the API reference says (AWS was reported returning 0 in 2022, aws/aws-sdk#333).
Any WorkgroupName is accepted (database ``dev``). Results are kept for the latest
2,000,000 result rows (AWS: 24 hours).

In-process use (the Firehose worker loads through here): :func:`execute` runs Redshift
SQL (COPY included) on a cluster's warehouse and returns a :class:`Result`, raising
:class:`WarehouseError` with Redshift's message; :func:`run_copy` runs one COPY and
returns the rows loaded; :func:`query` returns ``(column names, rows)``.

Not emulated: distribution, sort keys and compression (nothing physical), WLM and
concurrency scaling, users, groups and GRANT (accepted, no effect), system tables
(STL_*, STV_*, SVV_*, PG_TABLE_DEF: the COPY error carries what STL_LOAD_ERRORS would),
UNLOAD, Spectrum, stored procedures, ``WithEvent`` (no EventBridge event), Data API
sessions (``SessionId``: every call is a session of its own, and its temporary tables end
with it), ``ResultFormat='CSV'`` and the metadata calls (ListTables, ...), BEGIN/COMMIT/
ROLLBACK inside a call (ignored: each call or batch is one transaction), and COPY from
DynamoDB, EMR or SSH, or as ORC, Avro or fixed-width. Credentials in COPY are accepted
and not checked. Where DuckDB's semantics differ they are DuckDB's: division by zero
gives NULL, not an error; AVG of integers or decimals is a DOUBLE; regular expressions
are RE2; JSON numbers in COPY pass through a double (exact up to 15 significant digits;
Redshift warns about JSON numbers too); ``ResultSize`` is an estimate.
"""

from __future__ import annotations

import base64
import bz2
import contextlib
import gzip
import json
import logging
import math
import os
import random
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger("ecomlib.warehouse")

ACCOUNT_ID = "123456789012"  # moto's default account
PAGE_ROWS = 10_000  # rows per GetStatementResult page (AWS pages by size)
MAX_SQL_BYTES = 100 * 1024  # the Data API refuses longer query strings
KEPT_RESULT_ROWS = 2_000_000  # results kept in memory, oldest forgotten first (AWS: 24 h)
DEFAULT_DATABASE = "dev"


class WarehouseError(Exception):
    """A statement failed; the message is what Redshift would put in the statement's Error."""


@dataclass
class Result:
    """What one statement returned: Data API column metadata and rows of Python values."""

    columns: list[dict] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    row_count: int = 0  # ResultRows: rows returned, or rows affected (INSERT/UPDATE/DELETE/COPY)
    has_result_set: bool = False
    size: int = 0  # ResultSize in bytes (estimated)

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.columns]


# ======================================================================================
# Warehouses: one DuckDB file and connection per cluster
# ======================================================================================


class _Warehouse:
    """One cluster's database. ``lock`` serialises its statements (one connection)."""

    def __init__(self, cluster: str, token: str | None, path: Path) -> None:
        self.cluster = cluster
        self.token = token  # which incarnation of the cluster (its create time)
        self.path = path
        self.lock = threading.RLock()
        self.con: Any = None
        self.closed = False
        self.running: str | None = None  # Id of the statement running now (for cancel)

    def connect(self):
        import duckdb

        if self.con is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(self.path))
            for setting in _SESSION_SETTINGS:
                self.con.execute(setting)
        return self.con

    def drop(self) -> None:
        """Close the connection and delete the files (waits for a running statement)."""
        with self.lock:
            self.closed = True
            if self.con is not None:
                with contextlib.suppress(Exception):
                    self.con.close()
                self.con = None
            for path in (self.path, self.path.with_name(self.path.name + ".wal")):
                path.unlink(missing_ok=True)


# What a Redshift session looks like, as far as DuckDB can be told.
_SESSION_SETTINGS = [
    "SET integer_division = true",  # 7 / 2 = 3 between integers
    "SET default_null_order = 'nulls_last_on_asc_first_on_desc'",  # NULL is the largest value
    "SET TimeZone = 'UTC'",
    "CREATE SCHEMA IF NOT EXISTS public",
    "SET schema = 'public'",
]

_warehouses: dict[str, _Warehouse] = {}
_registry = threading.Lock()


def _path(cluster: str) -> Path:
    from ecomlib.config import settings

    return settings().home / "warehouse" / f"{os.getpid()}-{cluster}.duckdb"


def _warehouse_for(cluster: str, token: str | None) -> _Warehouse:
    """The cluster's warehouse; a new, empty one if the cluster was deleted and recreated."""
    with _registry:
        wh = _warehouses.get(cluster)
        if wh is not None and token is not None and wh.token is not None and wh.token != token:
            _warehouses.pop(cluster)
            wh.drop()
            wh = None
        if wh is None:
            wh = _Warehouse(cluster, token, _path(cluster))
            for stale in (wh.path, wh.path.with_name(wh.path.name + ".wal")):
                stale.unlink(missing_ok=True)  # left by a crashed process that had our pid
            _warehouses[cluster] = wh
        return wh


def drop_warehouse(cluster: str) -> bool:
    """Delete a cluster's warehouse (its data is gone, as when a cluster is deleted)."""
    with _registry:
        wh = _warehouses.pop(cluster, None)
    if wh is None:
        return False
    wh.drop()
    return True


def _rename_warehouse(old: str, new: str) -> None:
    """A renamed cluster keeps its data: move its file to the new name."""
    with _registry:
        wh = _warehouses.pop(old, None)
        if wh is None:
            return
        stale = _warehouses.pop(new, None)
        if stale is not None:
            stale.drop()
        with wh.lock:
            if wh.con is not None:
                wh.con.close()
                wh.con = None
            target = _path(new)
            for suffix in ("", ".wal"):
                source = wh.path.with_name(wh.path.name + suffix)
                if source.exists():
                    source.replace(target.with_name(target.name + suffix))
            wh.cluster, wh.path = new, target
        _warehouses[new] = wh


def _drop_all() -> None:
    with _registry:
        found = list(_warehouses.values())
        _warehouses.clear()
    for wh in found:
        wh.drop()


def warehouses() -> list[str]:
    """Clusters (or workgroups) that have a warehouse in this process."""
    with _registry:
        return sorted(_warehouses)


# ======================================================================================
# Lifecycle hooks (called by ecomlib.local.server)
# ======================================================================================


def start(endpoint: str) -> None:  # noqa: ARG001
    """Make moto's Redshift Data API run statements here."""
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "unsupported syntax" chatter
    _patch_moto()
    threading.Thread(target=_warm_up, name="warehouse-warm-up", daemon=True).start()


def _warm_up() -> None:
    """Pay one-time costs now, not in the first statement: DuckDB imports pandas and numpy
    the first time it binds a parameter (~0.4 s), and sqlglot builds its dialects."""
    import duckdb

    with contextlib.suppress(Exception):
        duckdb.connect().execute("SELECT ?", ["warm"]).fetchall()
        translate("SELECT DATE_TRUNC('month', GETDATE()) AS m")


def stop() -> None:
    _drop_all()
    from ecomlib.config import settings

    for root in (Path("/dev/shm"), settings().home / "warehouse"):  # left by a COPY cut short
        for leftover in root.glob(f"ecomlib-copy-{os.getpid()}-*"):
            shutil.rmtree(leftover, ignore_errors=True)


def after_reset() -> None:
    """moto forgot every cluster and statement: forget their data too."""
    _drop_all()
    with _results_lock:
        _results.clear()


def status() -> dict:
    return {"warehouses": warehouses()}


# ======================================================================================
# In-process API (for the other gap-fillers)
# ======================================================================================


def execute(cluster: str, database: str | None, sql: str, parameters: dict | None = None,
            region: str | None = None) -> Result:
    """Run Redshift SQL (one or more statements, COPY included) on a cluster's warehouse.

    All statements run in one transaction; the result is the last statement's. Raises
    :class:`WarehouseError` (Redshift's message) if a statement fails, and does not hold
    ``MOTO_LOCK`` while DuckDB works. ``database`` None skips the database-name check;
    ``region`` None finds the cluster in any region.
    """
    token, db_name = _find_cluster(ACCOUNT_ID, region, cluster, workgroup=None)
    if database is not None and database != db_name:
        raise WarehouseError(f'FATAL: database "{database}" does not exist')
    outcome = _execute_units(cluster, token, [sql], parameters or {})[0]
    if outcome.status != "FINISHED":
        raise WarehouseError(outcome.error or outcome.status)
    return outcome.result or Result()


def run_copy(cluster: str, database: str | None, sql: str, region: str | None = None) -> int:
    """Run one COPY statement; returns the number of rows loaded."""
    if _first_word(sql) != "COPY":
        raise WarehouseError("run_copy runs COPY statements only")
    return execute(cluster, database, sql, region=region).row_count


def query(cluster: str, sql: str, parameters: dict | None = None,
          region: str | None = None) -> tuple[list[str], list[tuple]]:
    """Run Redshift SQL on a cluster's warehouse; returns (column names, rows)."""
    result = execute(cluster, None, sql, parameters, region=region)
    return result.names, result.rows


def _first_word(sql: str) -> str:
    match = re.match(r"\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*([A-Za-z_]+)", sql, re.S)
    return match.group(1).upper() if match else ""


def _find_cluster(account: str, region: str | None, cluster: str | None,
                  workgroup: str | None) -> tuple[str | None, str]:
    """(token, database name) of a cluster in moto, or a ValidationException-worthy error.

    moto 5.2 has no Redshift Serverless, so any workgroup name is accepted (database dev).
    """
    from ecomlib.local.server import MOTO_LOCK

    if workgroup and not cluster:
        return None, DEFAULT_DATABASE
    from moto.redshift.models import redshift_backends

    with MOTO_LOCK:
        if region:
            regions = [region]
        else:
            from ecomlib.config import settings

            first = settings().region or "us-east-1"
            regions = [first] + [r for r in redshift_backends[account].keys() if r != first]
        for name in regions:
            found = redshift_backends[account][name].clusters.get(cluster)
            if found is not None:
                if getattr(found, "status", "available") == "paused":
                    raise _ClusterError(f"Cluster {cluster} is paused; resume it to run statements.")
                return str(found.create_time), found.db_name or DEFAULT_DATABASE
    raise _ClusterError(f"Redshift endpoint doesn't exist in this region. (Cluster {cluster} not found.)")


class _ClusterError(WarehouseError):
    """The cluster does not exist or cannot take statements (a ValidationException on the API)."""


# ======================================================================================
# Running statements
# ======================================================================================


@dataclass
class _Outcome:
    status: str  # FINISHED | FAILED | ABORTED
    result: Result | None = None
    error: str | None = None
    started: float = 0.0
    ended: float = 0.0


@dataclass
class _Piece:
    """One SQL statement of a unit, prepared before the warehouse is locked."""

    text: str
    kind: str  # "sql" | "copy" | "noop"
    copy: "_CopySpec | None" = None
    fetched: "_Fetched | None" = None
    error: WarehouseError | None = None  # found while preparing; raised when its turn comes


class _Cancelled(Exception):
    pass


@contextlib.contextmanager
def _moto_released() -> Iterator[None]:
    """Let other AWS requests run while DuckDB works, if this thread holds MOTO_LOCK.

    An AWS request holds MOTO_LOCK for its whole duration (``server.Serialised``); a COPY
    may take seconds. The lock is released fully (whatever its recursion depth) and taken
    back afterwards. Warehouse locks are only ever taken with MOTO_LOCK released, so the
    two can not deadlock (a reset holds MOTO_LOCK and then waits for warehouse locks).
    """
    from ecomlib.local.server import MOTO_LOCK

    if not MOTO_LOCK._is_owned():  # noqa: SLF001
        yield
        return
    state = MOTO_LOCK._release_save()  # noqa: SLF001
    try:
        yield
    finally:
        MOTO_LOCK._acquire_restore(state)  # noqa: SLF001


def _execute_units(cluster: str, token: str | None, units: list[str], parameters: dict,
                   statement_id: str | None = None,
                   cancelled: threading.Event | None = None) -> list[_Outcome]:
    """Run units (each one or more statements) in one transaction; one outcome per unit.

    Phase 1 (may hold MOTO_LOCK): split, parse COPYs and read their S3 objects to local
    files. Phase 2 (MOTO_LOCK released, warehouse locked): run everything.
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"ecomlib-copy-{os.getpid()}-", dir=_workdir_root()))
    try:
        prepared: list[list[_Piece]] = []
        for unit in units:
            try:
                prepared.append([_prepare(text, workdir) for text in split_statements(unit)])
            except WarehouseError as exc:
                prepared.append([_Piece(text=unit, kind="noop", error=exc)])
        with _moto_released():
            wh = _warehouse_for(cluster, token)
            with wh.lock:
                if wh.closed:
                    raise _ClusterError(f"Cluster {cluster} was deleted while the statement waited.")
                wh.running = statement_id
                try:
                    return _run_prepared(wh, prepared, parameters, cancelled)
                finally:
                    wh.running = None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _workdir_root() -> Path:
    """Where COPY puts the objects it loads, for the time of one call: memory (/dev/shm)
    when there is room, else next to the warehouses."""
    from ecomlib.config import settings

    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 * 1024**3:
            return shm
    root = settings().home / "warehouse"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _run_prepared(wh: _Warehouse, prepared: list[list[_Piece]], parameters: dict,
                  cancelled: threading.Event | None) -> list[_Outcome]:
    import duckdb

    con = wh.connect()
    outcomes: list[_Outcome] = []
    failed = False
    con.execute("BEGIN TRANSACTION")
    in_transaction = True
    try:
        for pieces in prepared:
            started = time.time()
            if failed:
                outcomes.append(_Outcome("ABORTED", error="Transaction aborted: an earlier statement failed.",
                                         started=started, ended=started))
                continue
            result: Result | None = None
            try:
                for piece in pieces:
                    if cancelled is not None and cancelled.is_set():
                        raise _Cancelled()
                    if piece.error is not None:
                        raise piece.error
                    if piece.kind == "copy":
                        result = _run_copy(con, piece)
                    elif piece.kind == "sql":
                        result = _run_sql(con, piece.text, parameters)
                    else:
                        result = Result()
                outcomes.append(_Outcome("FINISHED", result or Result(), started=started, ended=time.time()))
            except (_Cancelled, duckdb.InterruptException):
                failed = True
                outcomes.append(_Outcome("ABORTED", error="Query cancelled on user's request",
                                         started=started, ended=time.time()))
            except _CopyFailed as exc:
                failed = True
                in_transaction = False  # _run_copy rolled back to read the files again
                outcomes.append(_Outcome("FAILED", error=str(exc), started=started, ended=time.time()))
            except WarehouseError as exc:
                failed = True
                outcomes.append(_Outcome("FAILED", error=str(exc), started=started, ended=time.time()))
            except duckdb.Error as exc:
                failed = True
                outcomes.append(_Outcome("FAILED", error=_redshift_message(exc), started=started,
                                         ended=time.time()))
        if in_transaction:
            if failed:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
            else:
                try:
                    con.execute("COMMIT")
                except duckdb.Error as exc:
                    outcomes[-1] = _Outcome("FAILED", error=_redshift_message(exc),
                                            started=outcomes[-1].started, ended=time.time())
    except BaseException:
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK")
        raise
    finally:
        _end_session(con)
    return outcomes


def _end_session(con) -> None:
    """A Data API call is a session: its temporary tables end with it."""
    import duckdb

    with contextlib.suppress(duckdb.Error):
        for (name,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall():
            con.execute(f'DROP TABLE IF EXISTS temp.main."{name}"')


# ---- plain SQL ----------------------------------------------------------------------


def _run_sql(con, text: str, parameters: dict) -> Result:
    import duckdb

    translated = translate(text, con)
    result = Result()
    for i, statement in enumerate(translated.statements):
        names = translated.parameters if i == len(translated.statements) - 1 else []
        missing = [n for n in names if n not in parameters]
        if missing:
            raise WarehouseError(f"ERROR: no value given for parameter :{missing[0]}")
        values = {n: str(parameters[n]) for n in names}
        try:
            cursor = con.execute(statement, values) if values else con.execute(statement)
        except duckdb.Error as exc:
            if translated.fallback_error and not isinstance(exc, duckdb.InterruptException):
                raise WarehouseError(f"ERROR: syntax error: {translated.fallback_error}") from None
            raise
        if i < len(translated.statements) - 1:
            continue
        if translated.returns_rows:
            rows = cursor.fetchall()
            columns = _column_metadata(con, cursor.description or [], translated.source_table)
            result = Result(columns=columns, rows=rows, row_count=len(rows), has_result_set=True,
                            size=_estimate_size(rows))
        elif translated.counts_rows:
            row = cursor.fetchone()
            count = int(row[0]) if row and isinstance(row[0], int) else 0
            result = Result(row_count=count)
        else:
            result = Result()
    return result


_DUCK_MESSAGES = [
    (re.compile(r"Table with name (\S+?) does not exist"),
     lambda m: f'ERROR: relation "{m.group(1)}" does not exist'),
    (re.compile(r'Table with name "?(\S+?)"? already exists'),
     lambda m: f'ERROR: relation "{m.group(1)}" already exists'),
    (re.compile(r'Referenced column "?([^"\s]+)"? not found'),
     lambda m: f'ERROR: column "{m.group(1)}" does not exist'),
    (re.compile(r"CHECK constraint failed on table \S+ with expression CHECK\(\(strlen\((.+?)\) <= (\d+)\)\)"),
     lambda m: f"ERROR: value too long for type character varying({m.group(2)})"),
    (re.compile(r"NOT NULL constraint failed: (\S+)\.(\S+)"),
     lambda m: f'ERROR: Cannot insert a NULL value into column {m.group(2)}'),
]


def _redshift_message(exc: Exception) -> str:
    """A DuckDB error as Redshift would word it (DuckDB's own text when there is no match)."""
    text = str(exc)
    for pattern, build in _DUCK_MESSAGES:
        match = pattern.search(text)
        if match:
            return build(match)
    first = text.split("\n\nLINE ")[0].strip()
    return "ERROR: " + first


# ======================================================================================
# Redshift SQL -> DuckDB
# ======================================================================================


def _dialect():
    """sqlglot's Redshift dialect, with the TO_CHAR format names it does not map."""
    global _RedshiftSQL
    if _RedshiftSQL is None:
        from sqlglot.dialects.redshift import Redshift

        class EcomRedshift(Redshift):
            TIME_MAPPING = {
                **Redshift.TIME_MAPPING,
                "Mon": "%b", "mon": "%b", "Month": "%B", "month": "%B",
                "Day": "%A", "DAY": "%A", "day": "%A", "Dy": "%a", "DY": "%a", "dy": "%a",
                "HH": "%I", "AM": "%p", "PM": "%p", "am": "%p", "pm": "%p", "MS": "%g",
            }

        _RedshiftSQL = EcomRedshift
    return _RedshiftSQL


_RedshiftSQL: Any = None


def _tokens(sql: str) -> list:
    from sqlglot.errors import TokenError

    try:
        return _dialect()().tokenize(sql)
    except TokenError as exc:
        raise WarehouseError(f"ERROR: syntax error: {exc}") from None


def split_statements(sql: str) -> list[str]:
    """Redshift SQL split into statements at ';' (not inside quotes or comments)."""
    from sqlglot.tokens import TokenType

    pieces: list[str] = []
    start = 0
    have_tokens = False
    for token in _tokens(sql):
        if token.token_type == TokenType.SEMICOLON:
            if have_tokens:
                pieces.append(sql[start:token.start].strip())
            start, have_tokens = token.end + 1, False
        else:
            have_tokens = True
    if have_tokens:
        pieces.append(sql[start:].strip())
    return pieces


_NOOP_FIRST_WORDS = {"VACUUM", "ANALYZE", "GRANT", "REVOKE", "BEGIN", "START", "COMMIT", "END",
                     "ROLLBACK", "ABORT", "LOCK", "SET", "RESET", "COMMENT", "CANCEL"}
_NOOP_OBJECTS = {"USER", "GROUP", "ROLE", "DATASHARE", "IDENTITY"}
_PHYSICAL = {"DISTSTYLE", "DISTKEY", "SORTKEY", "ENCODE", "BACKUP", "COMPOUND", "INTERLEAVED"}


def _prepare(text: str, workdir: Path) -> _Piece:
    """Classify one statement; COPY is parsed and its S3 objects fetched now."""
    words = [t.text.upper() for t in _tokens(text)[:3]]
    first = words[0] if words else ""
    if first == "COPY":
        try:
            spec = parse_copy(text)
            return _Piece(text, "copy", copy=spec, fetched=_fetch(spec, workdir))
        except WarehouseError as exc:
            return _Piece(text, "copy", error=exc)
    if first == "UNLOAD":
        return _Piece(text, "noop", error=WarehouseError(
            "ERROR: UNLOAD is not supported by the local warehouse (ecomlib.local.warehouse)"))
    if first in _NOOP_FIRST_WORDS:
        return _Piece(text, "noop")
    if first in ("CREATE", "ALTER", "DROP") and len(words) > 1 and words[1] in _NOOP_OBJECTS:
        return _Piece(text, "noop")
    if first == "ALTER" and _alters_layout(text):
        return _Piece(text, "noop")
    return _Piece(text, "sql")


def _alters_layout(text: str) -> bool:
    """ALTER TABLE ... ALTER DISTKEY/SORTKEY/DISTSTYLE/ENCODE, or ALTER COLUMN c ENCODE."""
    words = [t.text.upper() for t in _tokens(text)]
    for i in range(2, len(words) - 1):
        if words[i] == "ALTER" and (words[i + 1] in _PHYSICAL or (
                words[i + 1] == "COLUMN" and "ENCODE" in words[i + 2:])):
            return True
    return False


@dataclass
class Translated:
    """Redshift SQL translated for DuckDB."""

    statements: list[str]
    returns_rows: bool = False
    counts_rows: bool = False  # INSERT / UPDATE / DELETE / CTAS: DuckDB returns a count
    parameters: list[str] = field(default_factory=list)  # :name placeholders, in order
    source_table: "_Source | None" = None  # where a single-table SELECT's columns come from
    fallback_error: str | None = None  # sqlglot could not parse: DuckDB gets the text as is


def translate(sql: str, con=None) -> Translated:
    """One Redshift statement as DuckDB statements (``con`` resolves CREATE TABLE LIKE)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel, ParseError

    text = _strip_physical(sql)
    try:
        parsed = sqlglot.parse(text, read=_dialect())
    except ParseError as exc:
        return Translated([text], returns_rows=_looks_like_query(text), fallback_error=str(exc).split("\n")[0])
    tree = next((p for p in parsed if p is not None), None)
    if tree is None:
        return Translated([])
    if isinstance(tree, exp.Command):
        return Translated([text], returns_rows=_looks_like_query(text))

    from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

    # Redshift folds every identifier to lower case, quoted or not.
    tree = normalize_identifiers(tree, dialect=_dialect())
    _name_columns(tree)  # first: the names come from the Redshift expressions
    before: list[str] = []
    if isinstance(tree, exp.Create) and tree.args.get("kind", "").upper() == "TABLE":
        like = _create_like(tree, con)
        if like:
            return Translated([like])
        before = _fix_create_table(tree)
    _fix_types(tree)
    _fix_functions(tree, getdate=bool(re.search(r"\bGETDATE\s*\(", text, re.I)))
    parameters = []
    for placeholder in tree.find_all(exp.Placeholder):
        name = placeholder.name
        if name and name not in parameters:
            parameters.append(name)
    duck = tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.IGNORE)
    returns_rows = isinstance(tree, (exp.Query, exp.Values, exp.Describe, exp.Show))
    counts_rows = isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Merge)) or (
        isinstance(tree, exp.Create) and isinstance(tree.expression, exp.Query))
    return Translated(before + [duck], returns_rows=returns_rows, counts_rows=counts_rows,
                      parameters=parameters, source_table=_single_table(tree))


def _looks_like_query(text: str) -> bool:
    return _first_word(text) in ("SELECT", "WITH", "VALUES", "SHOW", "DESCRIBE", "EXPLAIN", "TABLE", "PRAGMA")


def _strip_physical(sql: str) -> str:
    """CREATE TABLE without DISTSTYLE/DISTKEY/SORTKEY/ENCODE/BACKUP (physical layout only)."""
    from sqlglot.tokens import TokenType

    tokens = _tokens(sql)
    if not tokens or tokens[0].text.upper() not in ("CREATE", "ALTER"):
        return sql
    cut: list[tuple[int, int]] = []
    depth, i = 0, 0

    def through_parens(j: int) -> int:  # index of the token closing the '(' at j
        level = 0
        for k in range(j, len(tokens)):
            if tokens[k].token_type == TokenType.L_PAREN:
                level += 1
            elif tokens[k].token_type == TokenType.R_PAREN:
                level -= 1
                if level == 0:
                    return k
        return len(tokens) - 1

    while i < len(tokens):
        token, word = tokens[i], tokens[i].text.upper()
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and word in ("AS", "SELECT", "WITH"):
            break  # the query of a CREATE TABLE AS
        elif depth <= 1 and word in _PHYSICAL and not (
                word == "ENCODE" and nxt is not None and nxt.token_type == TokenType.L_PAREN) and not (
                i > 0 and tokens[i - 1].token_type in (TokenType.L_PAREN, TokenType.COMMA)):  # a column name
            end = i
            if word in ("DISTSTYLE", "ENCODE", "BACKUP") and nxt is not None:
                end = i + 1
            elif word in ("DISTKEY", "SORTKEY") and nxt is not None:
                if nxt.token_type == TokenType.L_PAREN:
                    end = through_parens(i + 1)
                elif nxt.text.upper() == "AUTO":
                    end = i + 1
            cut.append((token.start, tokens[end].end + 1))
            i = end + 1
            continue
        i += 1
    for begin, end in reversed(cut):
        sql = sql[:begin] + " " + sql[end:]
    return sql


_CHAR_TYPES = ("VARCHAR", "CHAR", "NCHAR", "NVARCHAR", "TEXT", "BPCHAR", "NAME")


def _char_length(data_type) -> int | None:
    """Bytes a Redshift character type holds: VARCHAR(n), VARCHAR(MAX)=65535, TEXT=256, CHAR=1."""
    kind = data_type.this.name if hasattr(data_type.this, "name") else str(data_type.this)
    if kind not in _CHAR_TYPES:
        return None
    params = data_type.expressions
    if params:
        value = params[0].this if hasattr(params[0], "this") else params[0]
        text = value.name if hasattr(value, "name") else str(value)
        if text.upper() == "MAX":
            return 65535
        with contextlib.suppress(ValueError):
            return int(text)
        return None
    return 1 if kind in ("CHAR", "NCHAR") else 256


def _fix_create_table(tree) -> list[str]:
    """Column lengths enforced, keys informational, IDENTITY as sequences; returns the
    statements to run before the CREATE TABLE (the sequences)."""
    from sqlglot import exp

    schema = tree.this
    if not isinstance(schema, exp.Schema):
        return []
    table = schema.this
    before = []
    for item in list(schema.expressions):
        if isinstance(item, (exp.PrimaryKey, exp.ForeignKey, exp.UniqueColumnConstraint)):
            item.pop()  # informational on Redshift: not enforced
            continue
        if not isinstance(item, exp.ColumnDef):
            continue
        for constraint in list(item.args.get("constraints") or []):
            kind = constraint.args.get("kind")
            if isinstance(kind, (exp.PrimaryKeyColumnConstraint, exp.UniqueColumnConstraint,
                                 exp.Reference, exp.EncodeColumnConstraint)):
                constraint.pop()
            elif isinstance(kind, exp.GeneratedAsIdentityColumnConstraint):
                sequence = f"{table.name}_{item.name}_seq"
                qualified = f'"{table.db}"."{sequence}"' if table.db else f'"{sequence}"'
                start = kind.args.get("start") or exp.Literal.number(1)
                step = kind.args.get("increment") or exp.Literal.number(1)
                kind_word = "TEMP SEQUENCE" if _is_temporary(tree) else "SEQUENCE"
                verb = (f"CREATE {kind_word} IF NOT EXISTS" if tree.args.get("exists")
                        else f"CREATE OR REPLACE {kind_word}")
                before.append(f"{verb} {qualified} START WITH {start.sql()} INCREMENT BY {step.sql()}")
                constraint.replace(exp.ColumnConstraint(kind=exp.DefaultColumnConstraint(
                    this=exp.Anonymous(this="nextval", expressions=[exp.Literal.string(qualified)]))))
        data_type = item.args.get("kind")
        length = _char_length(data_type) if isinstance(data_type, exp.DataType) else None
        if length is not None:
            item.set("kind", exp.DataType.build("VARCHAR"))
            check = exp.LTE(this=exp.Anonymous(this="strlen", expressions=[exp.column(item.name, quoted=True)]),
                            expression=exp.Literal.number(length))
            item.append("constraints", exp.ColumnConstraint(kind=exp.CheckColumnConstraint(this=check)))
    return before


def _is_temporary(tree) -> bool:
    from sqlglot import exp

    properties = tree.args.get("properties")
    return bool(properties and any(isinstance(p, exp.TemporaryProperty) for p in properties.expressions))


def _create_like(tree, con) -> str | None:
    """CREATE TABLE x (LIKE y): y's definition (lengths, defaults, NOT NULL) under x's name."""
    from sqlglot import exp

    schema = tree.this
    if not isinstance(schema, exp.Schema):
        return None
    like = next((e for e in schema.expressions if isinstance(e, exp.LikeProperty)), None)
    if like is None:
        return None
    target, source = schema.this, like.this
    temporary = _is_temporary(tree)
    name = _quoted_table(target)
    ddl = None
    if con is not None:
        conditions, args = ["table_name = ?"], [source.name]
        if source.db:
            conditions.append("schema_name = ?")
            args.append(source.db)
        row = con.execute(f"SELECT sql FROM duckdb_tables() WHERE {' AND '.join(conditions)} "
                          "ORDER BY temporary DESC LIMIT 1", args).fetchone()
        if row and row[0]:
            ddl = row[0]
    verb = "CREATE TEMPORARY TABLE" if temporary else "CREATE TABLE"
    exists = " IF NOT EXISTS" if tree.args.get("exists") else ""
    if ddl:
        body = ddl[ddl.index("("):].rstrip().rstrip(";")
        return f"{verb}{exists} {name}{body}"
    return f"{verb}{exists} {name} AS SELECT * FROM {_quoted_table(source)} LIMIT 0"


def _quoted_table(table) -> str:
    parts = [p for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p is not None]
    return ".".join(f'"{p.name}"' for p in parts)


def _fix_types(tree) -> None:
    """NUMERIC without precision is NUMERIC(18,0); a cast to VARCHAR(n) cuts at n."""
    from sqlglot import exp

    for data_type in list(tree.find_all(exp.DataType)):
        if data_type.this == exp.DataType.Type.DECIMAL:
            params = data_type.expressions
            if not params:
                data_type.set("expressions", [exp.DataTypeParam(this=exp.Literal.number(18)),
                                              exp.DataTypeParam(this=exp.Literal.number(0))])
            elif len(params) == 1:
                data_type.append("expressions", exp.DataTypeParam(this=exp.Literal.number(0)))
    for cast in list(tree.find_all(exp.Cast)):
        to = cast.args.get("to")
        if isinstance(to, exp.DataType) and to.expressions and _char_length(to) is not None:
            length = _char_length(to)
            cast.set("to", exp.DataType.build("VARCHAR"))
            if length is not None and length < 65535:
                cast.replace(exp.Anonymous(this="left", expressions=[cast.copy(), exp.Literal.number(length)]))


# Redshift date part names DuckDB does not know.
_DATE_PARTS = {"dw": "dow", "dayofweek": "dow", "weekday": "dow", "qtr": "quarter", "qtrs": "quarter",
               "wk": "week", "wks": "week", "dayofyear": "doy", "y": "year", "yy": "year",
               "yyyy": "year", "h": "hour", "mi": "minute", "mins": "minute", "sec": "second",
               "secs": "second", "mon": "month", "mons": "month", "d": "day", "msec": "millisecond",
               "msecs": "millisecond", "usec": "microsecond", "usecs": "microsecond", "c": "century",
               "dec": "decade", "mil": "millennium"}


def _date_part(name: str) -> str:
    lowered = name.strip("'\"").lower()
    return _DATE_PARTS.get(lowered, lowered)


def _fix_functions(tree, getdate: bool) -> None:
    """GETDATE() as a UTC TIMESTAMP in whole seconds, DATE_TRUNC as a TIMESTAMP (DuckDB
    returns a DATE), DATEPART(hour, x), and Redshift's date part names."""
    from sqlglot import exp

    for node in list(tree.find_all(exp.CurrentTimestamp)):
        if getdate and not node.args.get("sysdate"):
            utc = exp.AtTimeZone(this=exp.CurrentTimestamp(), zone=exp.Literal.string("UTC"))
            node.replace(exp.Anonymous(this="date_trunc", expressions=[exp.Literal.string("second"), utc]))
    for node in list(tree.find_all(exp.TimestampTrunc, exp.DateTrunc)):
        unit = node.args.get("unit")
        if unit is not None and unit.name.lower() in _DATE_PARTS:
            node.set("unit", exp.Literal.string(_date_part(unit.name)))
        node.replace(exp.Cast(this=node.copy(), to=exp.DataType.build("TIMESTAMP")))
    for node in list(tree.find_all(exp.Anonymous)):
        if node.name.upper() in ("DATEPART", "DATE_PART") and node.expressions:
            part = node.expressions[0]
            if isinstance(part, (exp.Column, exp.Var, exp.Identifier, exp.Literal)):
                node.set("this", "date_part")
                part.replace(exp.Literal.string(_date_part(part.name)))
    for node in list(tree.find_all(exp.Extract)):
        unit = node.this
        if isinstance(unit, (exp.Var, exp.Column, exp.Identifier)) and unit.name.lower() in _DATE_PARTS:
            node.set("this", exp.Var(this=_date_part(unit.name).upper()))


def _name_columns(tree) -> None:
    """Name unnamed result columns as Redshift does: count, sum, date_trunc, ?column?."""
    from sqlglot import exp

    for select in list(tree.find_all(exp.Select)):
        for projection in list(select.expressions):
            name = _redshift_name(projection)
            if name:
                projection.replace(exp.alias_(projection.copy(), exp.to_identifier(name, quoted=True)))


def _redshift_name(node) -> str | None:
    from sqlglot import exp

    if isinstance(node, (exp.Alias, exp.Column, exp.Star)):
        return None
    if isinstance(node, exp.Cast):
        inner = node.this
        if isinstance(inner, exp.Column):
            return inner.name
        return _redshift_name(inner) or _TYPE_NAMES.get(str(node.to.this.name).upper(), "?column?")
    if isinstance(node, (exp.Window, exp.WithinGroup)):
        return _redshift_name(node.this)
    if isinstance(node, exp.Extract):
        return "date_part"
    if isinstance(node, exp.CurrentDate):
        return "date"
    if isinstance(node, exp.CurrentTimestamp):
        return "timestamp" if node.args.get("sysdate") else "getdate"
    if isinstance(node, exp.Case):
        return "case"
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    if isinstance(node, exp.Func):
        text = node.sql(dialect="redshift")
        match = re.match(r"([A-Za-z_][A-Za-z_0-9]*)\s*\(", text)
        if match:
            return match.group(1).lower()
        return None  # a keyword function (CURRENT_USER, ...): DuckDB's own name
    return "?column?"


def _single_table(tree) -> "_Source | None":
    """Where the result columns of a SELECT from exactly one table come from (metadata)."""
    from sqlglot import exp

    if not isinstance(tree, exp.Select) or tree.args.get("joins") or tree.args.get("with_"):
        return None
    source = tree.args.get("from_") or tree.args.get("from")
    if source is None or not isinstance(source.this, exp.Table):
        return None
    names: dict[str, str] = {}
    star = False
    for projection in tree.expressions:
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.Star) or (isinstance(inner, exp.Column) and isinstance(inner.this, exp.Star)):
            star = True
        elif isinstance(inner, exp.Column):
            names[projection.alias_or_name] = inner.name
    return _Source(source.this.db or None, source.this.name, names, star)


@dataclass
class _Source:
    schema: str | None
    table: str
    columns: dict[str, str]  # result column -> table column
    star: bool


# ======================================================================================
# Results as the Data API shows them
# ======================================================================================


# DuckDB type -> (Redshift typeName, precision, scale, signed)
_TYPES = {
    "BOOLEAN": ("bool", 1, 0, False),
    "TINYINT": ("int2", 5, 0, True), "SMALLINT": ("int2", 5, 0, True),
    "INTEGER": ("int4", 10, 0, True), "BIGINT": ("int8", 19, 0, True), "HUGEINT": ("int8", 19, 0, True),
    "UTINYINT": ("int2", 5, 0, True), "USMALLINT": ("int4", 10, 0, True), "UINTEGER": ("int8", 19, 0, True),
    "UBIGINT": ("numeric", 20, 0, True), "UHUGEINT": ("numeric", 38, 0, True),
    "FLOAT": ("float4", 8, 8, True), "DOUBLE": ("float8", 17, 17, True),
    "DATE": ("date", 13, 0, False), "TIME": ("time", 15, 6, False), "TIME WITH TIME ZONE": ("timetz", 21, 6, False),
    "TIMESTAMP": ("timestamp", 29, 6, False), "TIMESTAMP_S": ("timestamp", 29, 6, False),
    "TIMESTAMP_MS": ("timestamp", 29, 6, False), "TIMESTAMP_NS": ("timestamp", 29, 6, False),
    "TIMESTAMP WITH TIME ZONE": ("timestamptz", 35, 6, False),
    "VARCHAR": ("varchar", 65535, 0, False), "UUID": ("varchar", 36, 0, False),
    "BLOB": ("varbyte", 65535, 0, False), "INTERVAL": ("interval", 49, 6, False),
}
_TYPE_NAMES = {"INT": "int4", "INTEGER": "int4", "BIGINT": "int8", "SMALLINT": "int2", "DECIMAL": "numeric",
               "DOUBLE": "float8", "FLOAT": "float8", "REAL": "float4", "BOOLEAN": "bool", "DATE": "date",
               "TIMESTAMP": "timestamp", "VARCHAR": "varchar", "TEXT": "text"}


def _redshift_type(duck_type: str) -> tuple[str, int, int, bool]:
    if duck_type.startswith("DECIMAL"):
        match = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", duck_type)
        precision, scale = (int(match.group(1)), int(match.group(2))) if match else (18, 3)
        return "numeric", precision, scale, True
    if duck_type in _TYPES:
        return _TYPES[duck_type]
    return "super", 0, 0, False  # lists, structs, maps, JSON


def _column_metadata(con, description: list, source: "_Source | None") -> list[dict]:
    table_columns = _table_columns(con, (source.schema, source.table)) if source else {}
    columns = []
    for entry in description:
        name, duck_type = entry[0], str(entry[1])
        type_name, precision, scale, signed = _redshift_type(duck_type)
        origin = None
        if source is not None:
            origin = table_columns.get(source.columns.get(name, name if source.star else ""))
        if origin and origin.length and type_name == "varchar":
            precision = origin.length
        columns.append({
            "isCaseSensitive": type_name in ("varchar", "super"),
            "isCurrency": False,
            "isSigned": signed,
            "label": name,
            "name": name,
            "nullable": (0 if origin and not origin.nullable else 1),
            "precision": precision,
            "scale": scale,
            "schemaName": origin.schema if origin else "",
            "tableName": origin.table if origin else "",
            "typeName": type_name,
            "length": 0,
        })
    return columns


def _estimate_size(rows: list[tuple]) -> int:
    if not rows:
        return 0
    sample = rows[:200]
    per_row = sum(len(str(v)) if v is not None else 4 for row in sample for v in row) / len(sample)
    return int(per_row * len(rows))


def _format_timestamp(value: datetime) -> str:
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    if value.tzinfo is not None:
        offset = value.utcoffset()
        hours = int(offset.total_seconds() // 3600) if offset else 0
        text += f"{hours:+03d}"
    return text


def _field(value: Any) -> dict:
    """One value as a Data API field."""
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        if -(2 ** 63) <= value < 2 ** 63:
            return {"longValue": value}
        return {"stringValue": str(value)}
    if isinstance(value, float):
        if math.isfinite(value):
            return {"doubleValue": value}
        return {"stringValue": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, Decimal):
        return {"stringValue": format(value, "f")}
    if isinstance(value, datetime):
        return {"stringValue": _format_timestamp(value)}
    if isinstance(value, (date, dtime)):
        return {"stringValue": value.isoformat()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"blobValue": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, (list, dict, tuple)):
        return {"stringValue": json.dumps(value, default=str)}
    return {"stringValue": str(value)}


def records(rows: list[tuple]) -> list[list[dict]]:
    """Rows as Data API Records."""
    return [[_field(v) for v in row] for row in rows]


# ======================================================================================
# Table information (COPY targets, column metadata)
# ======================================================================================


@dataclass
class _Column:
    name: str
    type: str  # DuckDB type, e.g. DECIMAL(10,3)
    nullable: bool = True
    default: str | None = None
    length: int | None = None  # bytes, for character columns
    schema: str = ""
    table: str = ""

    @property
    def identity(self) -> bool:
        return bool(self.default and self.default.startswith("nextval("))


def _table_columns(con, source: tuple[str | None, str]) -> dict[str, _Column]:
    try:
        return {c.name: c for c in _describe_table(con, source[0], source[1])}
    except WarehouseError:
        return {}


def _describe_table(con, schema: str | None, table: str) -> list[_Column]:
    """A table's columns in order, resolved as Redshift's search path would (temp first)."""
    import duckdb

    conditions, args = ["table_name = ?"], [table]
    if schema:
        conditions.append("schema_name = ?")
        args.append(schema)
    else:
        conditions.append("(temporary OR schema_name = 'public')")
    found = con.execute(
        f"SELECT database_name, schema_name, table_name, temporary FROM duckdb_tables() WHERE "
        f"{' AND '.join(conditions)} ORDER BY temporary DESC LIMIT 1", args).fetchone()
    if not found:
        raise WarehouseError(f'ERROR: relation "{(schema + ".") if schema else ""}{table}" does not exist')
    database, schema_name, table_name, temporary = found
    try:
        described = con.execute(
            f'DESCRIBE "{database}"."{schema_name}"."{table_name}"').fetchall()
        lengths = {}
        for expression, names in con.execute(
                "SELECT expression, constraint_column_names FROM duckdb_constraints() WHERE "
                "database_name = ? AND schema_name = ? AND table_name = ? AND constraint_type = 'CHECK'",
                [database, schema_name, table_name]).fetchall():
            match = re.fullmatch(r"\(strlen\(.+\) <= (\d+)\)", expression or "")
            if match and names and len(names) == 1:
                lengths[names[0]] = int(match.group(1))
    except duckdb.Error as exc:
        raise WarehouseError(_redshift_message(exc)) from None
    shown_schema = "pg_temp" if temporary else schema_name
    return [_Column(name=row[0], type=row[1], nullable=row[2] == "YES", default=row[4],
                    length=lengths.get(row[0]), schema=shown_schema, table=table_name) for row in described]


# ======================================================================================
# COPY
# ======================================================================================


@dataclass
class _CopySpec:
    table: str
    schema: str | None
    columns: list[str] | None
    source: str  # s3://bucket/prefix-or-key
    format: str = "TEXT"  # TEXT | CSV | JSON | PARQUET
    json_option: str = "auto"  # 'auto' | 'auto ignorecase' | s3://jsonpaths
    delimiter: str | None = None
    quote: str = '"'
    ignore_header: int = 0
    null_as: str = "\\N"
    time_format: str | None = None
    date_format: str | None = None
    compression: str | None = None  # gzip | bzip2 | zstd
    manifest: bool = False
    truncate_columns: bool = False
    blanks_as_null: bool = False
    empty_as_null: bool = False
    accept_inv_chars: str | None = None
    max_error: int = 0
    round_decimals: bool = False
    fill_record: bool = False
    trim_blanks: bool = False
    explicit_ids: bool = False
    remove_quotes: bool = False
    escape: bool = False
    no_load: bool = False

    @property
    def target(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table


_FLAGS = {
    "GZIP": ("compression", "gzip"), "BZIP2": ("compression", "bzip2"), "ZSTD": ("compression", "zstd"),
    "MANIFEST": ("manifest", True), "TRUNCATECOLUMNS": ("truncate_columns", True),
    "BLANKSASNULL": ("blanks_as_null", True), "EMPTYASNULL": ("empty_as_null", True),
    "ROUNDEC": ("round_decimals", True), "FILLRECORD": ("fill_record", True),
    "TRIMBLANKS": ("trim_blanks", True), "EXPLICIT_IDS": ("explicit_ids", True),
    "REMOVEQUOTES": ("remove_quotes", True), "ESCAPE": ("escape", True), "NOLOAD": ("no_load", True),
    "ACCEPTANYDATE": (None, None), "IGNOREBLANKLINES": (None, None), "IGNOREALLERRORS": ("max_error", 10**12),
}
# Options taking one value (which is accepted and ignored when the first item is None).
_VALUED = {
    "IAM_ROLE": None, "CREDENTIALS": None, "ACCESS_KEY_ID": None, "SECRET_ACCESS_KEY": None,
    "SESSION_TOKEN": None, "REGION": None, "MASTER_SYMMETRIC_KEY": None, "ENCODING": None,
    "DELIMITER": "delimiter", "IGNOREHEADER": "ignore_header", "TIMEFORMAT": "time_format",
    "DATEFORMAT": "date_format", "NULL": "null_as", "MAXERROR": "max_error", "QUOTE": "quote",
    "COMPROWS": None, "STATUPDATE": None, "COMPUPDATE": None,
}
_OPTIONAL_VALUE = {"COMPUPDATE", "STATUPDATE"}  # may stand alone


def parse_copy(sql: str) -> _CopySpec:
    """COPY table [(columns)] FROM 's3://...' options..., as Redshift reads it."""
    from sqlglot.tokens import TokenType

    tokens = [t for t in _tokens(sql) if t.token_type != TokenType.SEMICOLON]
    position = 1

    def error(message: str) -> WarehouseError:
        return WarehouseError(f"ERROR: {message}")

    def peek() -> Any:
        return tokens[position] if position < len(tokens) else None

    def take() -> Any:
        nonlocal position
        token = peek()
        if token is None:
            raise error("syntax error at end of input")
        position += 1
        return token

    def value(option: str) -> Any:
        token = take()
        if token.text.upper() == "AS" and token.token_type != TokenType.STRING:
            token = take()
        if token.token_type not in (TokenType.STRING, TokenType.NUMBER) and option not in (
                "IAM_ROLE", "ENCODING", "COMPUPDATE", "STATUPDATE"):
            raise error(f'syntax error at or near "{token.text}"')
        return token

    # Table name: identifiers separated by dots.
    names = []
    while True:
        token = take()
        if token.token_type in (TokenType.L_PAREN, TokenType.FROM):
            position -= 1
            break
        if token.token_type != TokenType.DOT:
            names.append(token.text)
    if not names or len(names) > 3:
        raise error("syntax error in COPY: table name expected")
    columns = None
    if peek() is not None and peek().token_type == TokenType.L_PAREN:
        take()
        columns = []
        while True:
            token = take()
            if token.token_type == TokenType.R_PAREN:
                break
            if token.token_type != TokenType.COMMA:
                columns.append(token.text.lower() if token.token_type != TokenType.IDENTIFIER else token.text)
    token = take()
    if token.token_type != TokenType.FROM:
        raise error(f'syntax error at or near "{token.text}"')
    source = take()
    if source.token_type != TokenType.STRING:
        raise error(f'syntax error at or near "{source.text}"')
    if not source.text.startswith("s3://"):
        raise error(f"COPY from '{source.text}' is not supported by the local warehouse: only s3:// sources")
    table = names[-1] if '"' in sql else names[-1].lower()
    spec = _CopySpec(table=table, schema=names[-2].lower() if len(names) > 1 else None,
                     columns=columns, source=source.text)
    while peek() is not None:
        word = take().text.upper()
        if word in ("FORMAT", "WITH"):
            if peek() is not None and peek().text.upper() == "AS":
                take()
            continue
        if word == "CSV":
            spec.format = "CSV"
            if peek() is not None and peek().text.upper() == "QUOTE":
                take()
                spec.quote = value("QUOTE").text
        elif word == "JSON":
            spec.format = "JSON"
            nxt = peek()
            if nxt is not None and nxt.text.upper() == "AS":
                take()
                nxt = peek()
            if nxt is not None and nxt.token_type == TokenType.STRING:
                spec.json_option = take().text
        elif word == "PARQUET":
            spec.format = "PARQUET"
        elif word in ("ORC", "AVRO", "FIXEDWIDTH", "SHAPEFILE"):
            raise error(f"COPY ... {word} is not supported by the local warehouse (ecomlib.local.warehouse)")
        elif word == "ACCEPTINVCHARS":
            spec.accept_inv_chars = "?"
            nxt = peek()
            if nxt is not None and nxt.text.upper() == "AS":
                take()
                nxt = peek()
            if nxt is not None and nxt.token_type == TokenType.STRING:
                spec.accept_inv_chars = take().text or "?"
        elif word in _FLAGS:
            attribute, setting = _FLAGS[word]
            if attribute:
                setattr(spec, attribute, setting)
        elif word in _VALUED:
            if word in _OPTIONAL_VALUE:
                nxt = peek()
                if nxt is not None and nxt.text.upper() in ("ON", "OFF", "TRUE", "FALSE", "PRESET"):
                    take()
                continue
            token = value(word)
            attribute = _VALUED[word]
            if attribute in ("ignore_header", "max_error"):
                try:
                    setattr(spec, attribute, int(token.text))
                except ValueError:
                    raise error(f"{word} takes a number, not '{token.text}'") from None
            elif attribute:
                setattr(spec, attribute, token.text)
        else:
            raise error(f'syntax error at or near "{word}" in COPY')
    if spec.delimiter is None:
        spec.delimiter = "," if spec.format == "CSV" else "|"
    if len(spec.delimiter) != 1 and spec.format in ("CSV", "TEXT"):
        raise error(f"COPY delimiter must be a single character, not '{spec.delimiter}'")
    return spec


# ---- reading S3 ---------------------------------------------------------------------


@dataclass
class _File:
    url: str  # s3://bucket/key it came from
    path: Path  # local copy (decompressed)
    json_format: str = "newline_delimited"  # or "unstructured" (objects not one per line)


@dataclass
class _Fetched:
    files: list[_File]
    jsonpaths: list[list[str | int]] | None = None
    seconds: float = 0.0  # reading and writing the objects
    size: int = 0  # bytes read from S3


def _split_url(url: str) -> tuple[str, str]:
    rest = url[len("s3://"):]
    bucket, _, key = rest.partition("/")
    return bucket, key


def _s3_backend():
    """moto 5.2 keeps S3 per account and partition ("aws"), not per region."""
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT_ID]["aws"]


def _read_object(backend, url: str, missing_ok: bool = False) -> bytes | None:
    """One object's bytes (caller holds MOTO_LOCK)."""
    from moto.s3.models import FakeKey

    bucket_name, key = _split_url(url)
    bucket = backend.buckets.get(bucket_name)
    if bucket is None:
        raise WarehouseError(f"ERROR: S3ServiceException:The specified bucket does not exist,Status 404,"
                             f"Error NoSuchBucket,Bucket {bucket_name} ({url})")
    found = bucket.keys.get(key)
    if not isinstance(found, FakeKey):
        if missing_ok:
            return None
        raise WarehouseError(f"ERROR: S3ServiceException:The specified key does not exist.,Status 404,"
                             f"Error NoSuchKey ({url})")
    return found.value


def _fetch(spec: _CopySpec, workdir: Path) -> _Fetched:
    """Read the COPY's objects from moto (under MOTO_LOCK), then write them to local files."""
    from moto.s3.models import FakeKey

    from ecomlib.local.server import MOTO_LOCK

    began = time.monotonic()
    objects: list[tuple[str, bytes]] = []
    jsonpaths_bytes = None
    with MOTO_LOCK:
        backend = _s3_backend()
        if spec.format == "JSON" and spec.json_option.lower().startswith("s3://"):
            jsonpaths_bytes = _read_object(backend, spec.json_option)
        if spec.manifest:
            manifest = _read_object(backend, spec.source)
            try:
                entries = json.loads(manifest)["entries"]
            except (ValueError, KeyError, TypeError):
                raise WarehouseError(f"ERROR: Manifest file is not in correct json format ({spec.source})") from None
            for entry in entries:
                url = entry.get("url", "") if isinstance(entry, dict) else ""
                if not url.startswith("s3://"):
                    raise WarehouseError(f"ERROR: Invalid manifest entry url '{url}' ({spec.source})")
                data = _read_object(backend, url, missing_ok=not entry.get("mandatory", False))
                if data is None and entry.get("mandatory", False):
                    raise WarehouseError(f"ERROR: Manifest file entry {url} is mandatory but the object "
                                         "does not exist")
                if data is not None:
                    objects.append((url, data))
        else:
            bucket_name, prefix = _split_url(spec.source)
            bucket = backend.buckets.get(bucket_name)
            if bucket is None:
                raise WarehouseError(f"ERROR: S3ServiceException:The specified bucket does not exist,Status 404,"
                                     f"Error NoSuchBucket,Bucket {bucket_name} ({spec.source})")
            names = sorted(k for k in dict.keys(bucket.keys) if k.startswith(prefix))
            for name in names:
                found = bucket.keys.get(name)
                if isinstance(found, FakeKey):
                    objects.append((f"s3://{bucket_name}/{name}", found.value))
            if not objects:
                raise WarehouseError(f"ERROR: The specified S3 prefix '{prefix}' does not exist "
                                     f"({spec.source})")
    read = time.monotonic()
    jsonpaths = _parse_jsonpaths(jsonpaths_bytes, spec.json_option) if jsonpaths_bytes is not None else None
    with _moto_released():  # an AWS request holds MOTO_LOCK; the bytes are ours now
        files = _write_files(spec, objects, workdir)
    fetched = _Fetched(files=files, jsonpaths=jsonpaths)
    fetched.seconds = time.monotonic() - began
    fetched.size = sum(len(data) for _, data in objects)
    log.info("COPY %s: read %d objects (%.1f MB) from moto in %.2f s, wrote them in %.2f s", spec.target,
             len(objects), fetched.size / 1e6, read - began, time.monotonic() - read)
    return fetched


def _write_files(spec: _CopySpec, objects: list[tuple[str, bytes]], workdir: Path) -> list[_File]:
    """Decompress and write each object to a local file, in parallel (zlib frees the GIL)."""

    def one(item: tuple[int, tuple[str, bytes]]) -> _File | None:
        index, (url, data) = item
        if spec.compression == "gzip":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise WarehouseError(f"ERROR: gzip: {url}: {exc} (is the object gzip-compressed?)") from None
        elif spec.compression == "bzip2":
            try:
                data = bz2.decompress(data)
            except (OSError, ValueError) as exc:
                raise WarehouseError(f"ERROR: bzip2: {url}: {exc}") from None
        if not data:
            return None
        if spec.accept_inv_chars and spec.format != "PARQUET":
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                data = data.decode("utf-8", errors="replace").replace("\ufffd", spec.accept_inv_chars[0]).encode()
        suffix = {"JSON": ".json", "CSV": ".csv", "PARQUET": ".parquet"}.get(spec.format, ".txt")
        if spec.compression == "zstd":
            suffix += ".zst"
        path = workdir / f"{index:06d}{suffix}"
        path.write_bytes(data)
        json_format = "newline_delimited"
        if spec.format == "JSON" and spec.compression != "zstd" and _not_one_object_per_line(data):
            json_format = "unstructured"
        return _File(url=url, path=path, json_format=json_format)

    if len(objects) <= 1:
        written = [one(item) for item in enumerate(objects)]
    else:
        with ThreadPoolExecutor(max_workers=min(8, len(objects))) as pool:
            written = list(pool.map(one, enumerate(objects)))
    return [f for f in written if f is not None]


def _not_one_object_per_line(data: bytes) -> bool:
    """True for objects written back to back ({...}{...}, as Firehose does without a
    newline delimiter) or spread over several lines; false for JSON Lines.

    Only the first and last lines are looked at: scanning 130 MB for "}{" costs more than
    DuckDB takes to load it.
    """
    decoder = json.JSONDecoder()
    first_end = data.find(b"\n")
    last_start = data.rstrip().rfind(b"\n") + 1
    lines = [data[:first_end] if first_end >= 0 else data, data[last_start:]]
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if not text.startswith(b"{"):
            return True  # arrays, or an object spread over lines
        try:
            _, end = decoder.raw_decode(text.decode("utf-8", errors="replace"))
        except ValueError:
            return True  # an object continues on the next line
        if end != len(text.decode("utf-8", errors="replace")):
            return True  # another object follows on the same line
    return False


_JSONPATH_STEP = re.compile(  # .key | ['key'] | ["key"] | [0]
    r"""\.([^.\[\]'"]+)|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\]|\[\s*(\d+)\s*\]""")


def _parse_jsonpaths(data: bytes, url: str) -> list[list[str | int]]:
    try:
        document = json.loads(data)
        paths = document["jsonpaths"]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise WarehouseError(f"ERROR: Invalid JSONPath format: the jsonpaths file {url} must be a JSON "
                             'object {"jsonpaths": ["$.field", ...]}') from None
    parsed = []
    for path in paths:
        text = path.strip()
        if not text.startswith("$"):
            raise WarehouseError(f"ERROR: Invalid JSONPath format: '{path}' must start with '$' ({url})")
        steps: list[str | int] = []
        position = 1
        while position < len(text):
            match = _JSONPATH_STEP.match(text, position)
            if not match:
                raise WarehouseError(f"ERROR: Invalid JSONPath format: '{path}' ({url})")
            key = match.group(1) or match.group(2) or match.group(3)
            steps.append(int(match.group(4)) if match.group(4) is not None else key)
            position = match.end()
        if not steps or not isinstance(steps[0], str):
            raise WarehouseError(f"ERROR: Invalid JSONPath format: '{path}' must name a member of the "
                                 f"top-level object ({url})")
        parsed.append(steps)
    return parsed


# ---- loading ------------------------------------------------------------------------


class _CopyFailed(WarehouseError):
    """A COPY failed after its INSERT had started (the transaction is rolled back)."""


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _targets(con, spec: _CopySpec) -> list[_Column]:
    table_columns = _describe_table(con, spec.schema, spec.table)
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


def _copy_source(con, spec: _CopySpec, fetched: _Fetched, targets: list[_Column]) -> tuple[str, list[str]]:
    """(FROM clause, one raw VARCHAR expression per target column) for the COPY's files."""
    files = fetched.files
    if spec.format == "JSON":
        return _json_source(con, spec, fetched, targets)
    if spec.format == "PARQUET":
        paths = "[" + ", ".join(_sql_string(str(f.path)) for f in files) + "]"
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({paths}, union_by_name=false)").fetchall()
        if len(described) != len(targets):
            raise WarehouseError(f"ERROR: Load into table '{spec.table}' failed: the Parquet files have "
                                 f"{len(described)} columns and the table or column list {len(targets)}")
        return (f"read_parquet({paths}, filename=true) AS src",
                [f"src.{_ident(row[0])}" for row in described])
    # CSV and delimited text: one VARCHAR per field, by position.
    names = [f"c{i}" for i in range(len(targets))]
    options = {
        "delim": spec.delimiter,
        "header": "false",
        "skip": str(spec.ignore_header),
        "auto_detect": "false",
        "nullstr": spec.null_as,
        "strict_mode": "true",
        "null_padding": "true" if spec.fill_record else "false",
        "filename": "true",
        "parallel": "true",
        "max_line_size": str(16 * 1024 * 1024),
    }
    if spec.format == "CSV":
        options.update(quote=spec.quote, escape=spec.quote)
    elif spec.remove_quotes:
        options.update(quote='"', escape='"')
    else:
        options.update(quote="", escape="\\" if spec.escape else "")
    if spec.compression == "zstd":
        options["compression"] = "zstd"
    rendered = ", ".join(f"{k}={_sql_string(v) if k in ('delim', 'quote', 'escape', 'nullstr', 'compression') else v}"
                         for k, v in options.items())
    columns = "{" + ", ".join(f"{_sql_string(n)}: 'VARCHAR'" for n in names) + "}"
    paths = "[" + ", ".join(_sql_string(str(f.path)) for f in files) + "]"
    return f"read_csv({paths}, columns={columns}, {rendered}) AS src", [f"src.{n}" for n in names]


def _json_source(con, spec: _CopySpec, fetched: _Fetched, targets: list[_Column]) -> tuple[str, list[str]]:
    option = spec.json_option.strip()
    if fetched.jsonpaths is not None:
        paths = fetched.jsonpaths
        if len(paths) != len(targets):
            raise WarehouseError(
                "ERROR: Number of jsonpaths and the number of columns should match. JSONPath size: "
                f"{len(paths)}, Number of columns in table or column list: {len(targets)} "
                f"(jsonpaths file {spec.json_option})")
        nested = {p[0] for p in paths if len(p) > 1}
        keys: dict[str, str] = {}
        for steps in paths:
            keys.setdefault(steps[0], "JSON" if steps[0] in nested else "VARCHAR")
        raw = []
        for steps in paths:
            column = f"src.{_ident(steps[0])}"
            if steps[0] in nested:
                path = "$" + "".join(f"[{s}]" if isinstance(s, int) else "." + json.dumps(s) for s in steps[1:])
                raw.append(f"json_extract_string({column}, {_sql_string(path)})")
            else:
                raw.append(column)
    elif option.lower() in ("auto", "auto ignorecase", "noshred"):
        if option.lower() == "auto ignorecase":
            present = _json_keys(con, fetched.files)
            by_lower: dict[str, list[str]] = {}
            for key in present:
                by_lower.setdefault(key.lower(), []).append(key)
            keys = {k: "VARCHAR" for k in present if k.lower() in {t.name.lower() for t in targets}}
            raw = []
            for target in targets:
                matches = by_lower.get(target.name.lower(), [])
                if not matches:
                    raw.append("NULL")
                elif len(matches) == 1:
                    raw.append(f"src.{_ident(matches[0])}")
                else:
                    raw.append("COALESCE(" + ", ".join(f"src.{_ident(m)}" for m in matches) + ")")
        else:
            # Redshift column names are lower case, and 'auto' matches them exactly.
            keys = {t.name: "VARCHAR" for t in targets}
            raw = [f"src.{_ident(t.name)}" for t in targets]
    else:
        raise WarehouseError(f"ERROR: Invalid JSON option '{option}': use 'auto', 'auto ignorecase' or "
                             "'s3://bucket/jsonpaths_file'")
    if not keys:
        keys = {"__ecomlib_none": "VARCHAR"}
    columns = "{" + ", ".join(f"{_sql_string(k)}: {_sql_string(v)}" for k, v in keys.items()) + "}"
    compression = ", compression='zstd'" if spec.compression == "zstd" else ""
    groups: dict[str, list[str]] = {}
    for f in fetched.files:
        groups.setdefault(f.json_format, []).append(str(f.path))
    reads = []
    for json_format, paths in groups.items():
        listed = "[" + ", ".join(_sql_string(p) for p in paths) + "]"
        reads.append(f"SELECT * FROM read_json({listed}, format='{json_format}', columns={columns}, "
                     f"filename=true, maximum_object_size=67108864{compression})")
    return "(" + " UNION ALL ".join(reads) + ") AS src", raw


def _json_keys(con, files: list[_File]) -> list[str]:
    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault(f.json_format, []).append(str(f.path))
    keys: set[str] = set()
    for json_format, paths in groups.items():
        listed = "[" + ", ".join(_sql_string(p) for p in paths) + "]"
        for (key,) in con.execute(f"SELECT DISTINCT unnest(json_keys(json)) FROM read_json_objects("
                                  f"{listed}, format='{json_format}')").fetchall():
            keys.add(key)
    return sorted(keys)


_TIME_ELEMENTS = [("YYYY", "%Y"), ("YY", "%y"), ("MONTH", "%B"), ("MON", "%b"), ("MM", "%m"), ("DD", "%d"),
                  ("HH24", "%H"), ("HH12", "%I"), ("HH", "%H"), ("MI", "%M"), ("SS", "%S"), ("AM", "%p"),
                  ("PM", "%p"), ("US", "%f"), ("OF", "%z")]


def _strptime_format(redshift_format: str) -> str:
    """A COPY DATEFORMAT/TIMEFORMAT string (YYYY-MM-DD HH:MI:SS) as a strptime format."""
    out, i, text = [], 0, redshift_format
    while i < len(text):
        for element, code in _TIME_ELEMENTS:
            if text[i:i + len(element)].upper() == element:
                out.append(code)
                i += len(element)
                break
        else:
            out.append("%%" if text[i] == "%" else text[i])
            i += 1
    return "".join(out)


@dataclass
class _Conversion:
    """How COPY turns one raw text field into a column value."""

    value: str  # SQL: the column value (raises, with Redshift's reason, on a bad field)
    valid: str  # SQL: true when the field converts (no volatile error(), usable in filters)


def _conversion(raw: str, column: _Column, spec: _CopySpec) -> _Conversion:
    """The conversion of a raw field to the column's type, as COPY does it."""
    duck = column.type.upper()
    if spec.format == "PARQUET":
        return _Conversion(f"CAST({raw} AS {column.type})",
                           f"({raw} IS NULL OR TRY_CAST({raw} AS {column.type}) IS NOT NULL)")
    if duck == "VARCHAR":
        value = raw
        if spec.trim_blanks:
            value = f"rtrim({value})"
        if spec.blanks_as_null:
            value = f"CASE WHEN trim({value}) = '' THEN NULL ELSE {value} END"
        if spec.empty_as_null:
            value = f"NULLIF({value}, '')"
        if spec.truncate_columns and column.length:
            n = column.length  # bytes: drop characters until the UTF-8 text fits
            value = (f"CASE WHEN strlen({value}) <= {n} THEN {value} ELSE "
                     f"left(left({value}, {n}), {n} - (strlen(left({value}, {n})) - {n})) END")
        return _Conversion(value, "true")
    blank = f"NULLIF(trim({raw}), '')"  # an empty field is NULL for every non-character type

    def guarded(test: str, value: str, reason: str, as_type: str) -> _Conversion:
        failing = f"CAST(error({_sql_string(reason + ', Value ')} || '''' || {raw} || '''') AS {as_type})"
        return _Conversion(f"CASE WHEN {blank} IS NULL THEN NULL WHEN {test} THEN {value} ELSE {failing} END",
                           f"({blank} IS NULL OR ({test}))")

    if duck in ("INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT"):
        digits = "[-+]?[0-9]+(\\.0*)?" if spec.format == "JSON" else "[-+]?[0-9]+"  # JSON 6.0 is 6
        test = f"regexp_full_match(trim({raw}), '{digits}') AND TRY_CAST(trim({raw}) AS {duck}) IS NOT NULL"
        kind = {"SMALLINT": "Short Integer", "BIGINT": "Long Integer"}.get(duck, "Integer")
        return guarded(test, f"CAST(trim({raw}) AS {duck})",
                       f"Invalid digit or integer out of range, Type: {kind}", duck)
    if duck.startswith("DECIMAL"):
        match = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", duck)
        scale = int(match.group(2)) if match else 0
        if spec.round_decimals:
            text = blank
        else:  # COPY truncates extra decimals (ROUNDEC rounds): cut the text, then cast exactly
            keep = f"[0-9]{{{scale}}}" if scale else ""
            pattern = rf"^([-+]?[0-9]*\.{keep})[0-9]+$" if scale else r"^([-+]?[0-9]*)\.[0-9]*$"
            text = f"regexp_replace({blank}, {_sql_string(pattern)}, '\\1')"
        test = f"TRY_CAST({text} AS {column.type}) IS NOT NULL"
        return guarded(test, f"CAST({text} AS {column.type})",
                       f"Invalid digit or numeric overflow (result precision), Type: {column.type}", column.type)
    if duck == "BOOLEAN":
        truth, falsity = "('t','true','1','y','yes','on')", "('f','false','0','n','no','off')"
        lowered = f"lower(trim({raw}))"
        return guarded(f"{lowered} IN {truth} OR {lowered} IN {falsity}", f"{lowered} IN {truth}",
                       "Invalid boolean value", "BOOLEAN")
    if duck in ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE"):
        target = "TIMESTAMPTZ" if "ZONE" in duck else "TIMESTAMP"
        fmt = spec.time_format
        if fmt is not None and fmt.lower() == "auto":
            parsed = f"TRY_CAST(trim({raw}) AS {target})"
        elif fmt is not None and fmt.lower() == "epochsecs":
            parsed = f"CAST(to_timestamp(TRY_CAST(trim({raw}) AS DOUBLE)) AT TIME ZONE 'UTC' AS {target})"
        elif fmt is not None and fmt.lower() == "epochmillisecs":
            parsed = f"CAST(epoch_ms(TRY_CAST(trim({raw}) AS BIGINT)) AS {target})"
        else:  # the default is strict: 'YYYY-MM-DD HH:MI:SS' (ISO 'T' needs TIMEFORMAT 'auto')
            strp = _strptime_format(fmt) if fmt else "%Y-%m-%d %H:%M:%S"
            formats = f"[{_sql_string(strp)}, {_sql_string(strp.replace('%S', '%S.%f'))}]"
            parsed = f"CAST(try_strptime(trim({raw}), {formats}) AS {target})"
        shown = (fmt or "YYYY-MM-DD HH24:MI:SS").replace("'", "")
        return guarded(f"{parsed} IS NOT NULL", parsed, f"Invalid timestamp format or value [{shown}]", target)
    if duck == "DATE":
        fmt = spec.date_format
        if fmt is not None and fmt.lower() == "auto":
            parsed = (f"coalesce(TRY_CAST(trim({raw}) AS DATE), CAST(try_strptime(trim({raw}), "
                      "['%Y/%m/%d', '%m/%d/%Y', '%Y%m%d', '%d-%b-%Y', '%b %d %Y']) AS DATE))")
        else:
            strp = _strptime_format(fmt) if fmt else "%Y-%m-%d"
            parsed = f"CAST(try_strptime(trim({raw}), {_sql_string(strp)}) AS DATE)"
        shown = (fmt or "YYYY-MM-DD").replace("'", "")
        return guarded(f"{parsed} IS NOT NULL", parsed, f"Invalid date format or value [{shown}]", "DATE")
    test = f"TRY_CAST({blank} AS {column.type}) IS NOT NULL"
    return guarded(test, f"CAST({blank} AS {column.type})", f"Invalid value for type {column.type}", column.type)


def _run_copy(con, piece: _Piece) -> Result:
    import duckdb

    spec, fetched = piece.copy, piece.fetched
    targets = _targets(con, spec)
    if not fetched.files:
        return Result(row_count=0)
    try:
        source, raw = _copy_source(con, spec, fetched, targets)
    except duckdb.Error as exc:
        raise WarehouseError(_load_failed(spec, _file_problem(exc, fetched))) from None
    conversions = [_conversion(r, t, spec) for r, t in zip(raw, targets)]
    column_list = ", ".join(_ident(t.name) for t in targets)
    where = ""
    if spec.max_error > 0:
        bad = " OR ".join(f"({b})" for b in _bad_conditions(raw, conversions, targets, spec))
        if bad:
            try:
                rejected = con.execute(f"SELECT count(*) FROM {source} WHERE {bad}").fetchone()[0]
            except duckdb.Error as exc:
                raise WarehouseError(_load_failed(spec, _file_problem(exc, fetched))) from None
            if rejected > spec.max_error:
                problem = _first_problem(con, fetched, source, raw, conversions, targets, spec)
                raise WarehouseError(_load_failed(spec, f"{rejected} rows could not be loaded, more than "
                                                        f"MAXERROR {spec.max_error}; the first: {problem}"))
            where = f" WHERE NOT ({bad})"
    select = f"SELECT {', '.join(c.value for c in conversions)} FROM {source}{where}"
    if spec.no_load:
        try:
            con.execute(f"SELECT count(*) FROM ({select})").fetchone()
        except duckdb.Error as exc:
            problem = _first_problem(con, fetched, source, raw, conversions, targets, spec)
            raise WarehouseError(_load_failed(spec, problem or _file_problem(exc, fetched))) from None
        return Result(row_count=0)
    began = time.monotonic()
    try:
        loaded = con.execute(f"INSERT INTO {_quoted_target(spec)} ({column_list}) {select}").fetchone()[0]
        log.info("COPY %s: loaded %d rows from %d files in %.2f s", spec.target, loaded, len(fetched.files),
                 time.monotonic() - began)
    except duckdb.InterruptException:
        raise
    except duckdb.Error as exc:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")  # the transaction is lost; the diagnosis reads the files again
        problem = (_first_problem(con, fetched, source, raw, conversions, targets, spec)
                   or _file_problem(exc, fetched))
        raise _CopyFailed(_load_failed(spec, problem)) from None
    return Result(row_count=int(loaded))


def _quoted_target(spec: _CopySpec) -> str:
    if spec.schema:
        return f"{_ident(spec.schema)}.{_ident(spec.table)}"
    return _ident(spec.table)


def _load_failed(spec: _CopySpec, detail: str) -> str:
    return (f"ERROR: Load into table '{spec.table}' failed. Check 'stl_load_errors' system table for details. "
            f"[local warehouse, no STL tables: {detail}]")


def _checks(conversion: _Conversion, column: _Column, spec: _CopySpec) -> list[tuple[str, str | None]]:
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


def _bad_conditions(raw: list[str], conversions: list[_Conversion], targets: list[_Column],
                    spec: _CopySpec) -> list[str]:
    return [condition for r, c, t in zip(raw, conversions, targets) if r != "NULL"
            for condition, _ in _checks(c, t, spec)]


def _first_problem(con, fetched: _Fetched, source: str, raw: list[str], conversions: list[_Conversion],
                   targets: list[_Column], spec: _CopySpec) -> str | None:
    """The first field that does not load, described as a STL_LOAD_ERRORS row would be."""
    import duckdb

    urls = {str(f.path): f.url for f in fetched.files}
    for r, conversion, column in zip(raw, conversions, targets):
        if r == "NULL":
            continue
        type_name = _redshift_type(column.type.upper())[0]
        for condition, reason in _checks(conversion, column, spec):
            try:
                row = con.execute(f"SELECT src.filename, CAST({r} AS VARCHAR) FROM {source} WHERE {condition} "
                                  "LIMIT 1").fetchone()
            except duckdb.Error:
                continue
            if row is None:
                continue
            if reason is None:  # convert the field alone, for its reason
                try:
                    con.execute(f"SELECT {conversion.value.replace(r, 'x.v')} FROM "
                                "(SELECT CAST(? AS VARCHAR) AS v) AS x", [row[1]]).fetchone()
                    reason = f"Invalid value for type {type_name}"
                except duckdb.Error as exc:
                    reason = _reason(str(exc), type_name)
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


def _file_problem(exc: Exception, fetched: _Fetched) -> str:
    """A reader error (malformed JSON, wrong number of CSV fields) with the S3 object named."""
    text = str(exc)
    for f in fetched.files:
        text = text.replace(str(f.path), f.url)
    lines = [line for line in text.split("\n") if line.strip()]
    detail = " ".join(lines[:3])
    if "Expected Number of Columns" in text or "Found:" in text:
        detail = "Extra column(s) found or delimiter not found: " + detail
    return detail


# ======================================================================================
# The Data API on moto
# ======================================================================================


@dataclass
class _Sub:
    id: str
    query_string: str
    status: str = "SUBMITTED"
    error: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    duration: int = 0
    has_result_set: bool = False
    result_rows: int = -1
    result_size: int = -1
    query_id: int = -1

    def describe(self) -> dict:
        body = {"Id": self.id, "QueryString": self.query_string, "Status": self.status,
                "CreatedAt": self.created, "UpdatedAt": self.updated, "Duration": self.duration,
                "HasResultSet": self.has_result_set, "ResultRows": self.result_rows,
                "ResultSize": self.result_size, "RedshiftQueryId": self.query_id}
        if self.error:
            body["Error"] = self.error
        return body


@dataclass
class _Statement:
    id: str
    cluster: str | None
    workgroup: str | None
    database: str | None
    db_user: str | None
    secret_arn: str | None
    statement_name: str | None
    parameters: list | None
    subs: list[_Sub]
    is_batch: bool
    status: str = "SUBMITTED"
    error: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    pid: int = field(default_factory=lambda: random.randint(1_073_741_824, 1_073_900_000))
    cancel: threading.Event = field(default_factory=threading.Event)

    def describe(self, only: _Sub | None = None) -> dict:
        body: dict[str, Any] = {"Id": self.id, "Status": self.status, "CreatedAt": self.created,
                                "UpdatedAt": self.updated, "RedshiftPid": self.pid}
        for key, value in (("ClusterIdentifier", self.cluster), ("WorkgroupName", self.workgroup),
                           ("Database", self.database), ("DbUser", self.db_user),
                           ("SecretArn", self.secret_arn), ("QueryParameters", self.parameters),
                           ("Error", self.error)):
            if value:
                body[key] = value
        subs = [only] if only is not None else self.subs
        if self.is_batch:
            done = [s for s in self.subs if s.status == "FINISHED"]
            body.update(
                Duration=sum(s.duration for s in self.subs),
                HasResultSet=any(s.has_result_set for s in self.subs) if only is None else False,
                ResultRows=sum(max(s.result_rows, 0) for s in done) if done else -1,
                ResultSize=sum(max(s.result_size, 0) for s in done) if done else -1,
                RedshiftQueryId=0,
                SubStatements=[s.describe() for s in subs],
            )
        else:
            sub = self.subs[0]
            body.update(QueryString=sub.query_string, Duration=sub.duration, HasResultSet=sub.has_result_set,
                        ResultRows=sub.result_rows, ResultSize=sub.result_size, RedshiftQueryId=sub.query_id)
        return body

    def listed(self) -> dict:
        body: dict[str, Any] = {"Id": self.id, "Status": self.status, "CreatedAt": self.created,
                                "UpdatedAt": self.updated, "IsBatchStatement": self.is_batch}
        if self.is_batch:
            body["QueryStrings"] = [s.query_string for s in self.subs]
        else:
            body["QueryString"] = self.subs[0].query_string
        for key, value in (("StatementName", self.statement_name), ("SecretArn", self.secret_arn),
                           ("QueryParameters", self.parameters)):
            if value:
                body[key] = value
        return body


_results: "OrderedDict[str, Result]" = OrderedDict()  # sub-statement id -> result
_results_lock = threading.Lock()
_query_ids = iter(range(100_000, 10**12))


def _keep_result(sub_id: str, result: Result) -> None:
    with _results_lock:
        _results[sub_id] = result
        total = sum(len(r.rows) for r in _results.values())
        while total > KEPT_RESULT_ROWS and len(_results) > 1:
            _, dropped = _results.popitem(last=False)
            total -= len(dropped.rows)


def _error(code: str, message: str):
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(code, message)


_ID_PATTERN = re.compile(r"^[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\d+)?$")


def _lookup(backend, statement_id: str) -> tuple[_Statement, _Sub | None]:
    if not statement_id or not _ID_PATTERN.match(statement_id):
        raise _error("ValidationException", "id must satisfy regex pattern: "
                                            r"^[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\d+)?$")
    parent_id, _, number = statement_id.partition(":")
    statement = backend.statements.get(parent_id)
    if not isinstance(statement, _Statement):
        raise _error("ResourceNotFoundException", "Query does not exist.")
    if not number:
        return statement, None
    index = int(number) - 1
    if not statement.is_batch or not 0 <= index < len(statement.subs):
        raise _error("ResourceNotFoundException", "Query does not exist.")
    return statement, statement.subs[index]


def _submit(response, sqls: list[str], is_batch: bool) -> dict:
    """ExecuteStatement / BatchExecuteStatement: run now, then answer with the Id."""
    get = response._get_param  # noqa: SLF001
    cluster, workgroup = get("ClusterIdentifier"), get("WorkgroupName")
    database, db_user, secret_arn = get("Database"), get("DbUser"), get("SecretArn")
    parameters = get("Parameters") or None
    if bool(cluster) == bool(workgroup):
        raise _error("ValidationException", "Either ClusterIdentifier or WorkgroupName must be specified, not both.")
    if not database:
        raise _error("ValidationException", "Database is required.")
    for sql in sqls:
        if not sql or not sql.strip():
            raise _error("ValidationException", "SQL statement must not be empty.")
        if len(sql.encode()) > MAX_SQL_BYTES:
            raise _error("ValidationException", "Cannot process query string larger than 100kB")
    names = [p.get("name") for p in parameters or []]
    if len(set(names)) != len(names):
        raise _error("ValidationException", "Parameter names must be unique.")
    try:
        token, db_name = _find_cluster(response.current_account, response.region, cluster, workgroup)
    except _ClusterError as exc:
        raise _error("ValidationException", str(exc)) from None
    backend = response.redshiftdata_backend
    statement_id = str(uuid.uuid4())
    subs = [_Sub(id=f"{statement_id}:{i + 1}" if is_batch else statement_id, query_string=sql)
            for i, sql in enumerate(sqls)]
    statement = _Statement(id=statement_id, cluster=cluster, workgroup=workgroup, database=database,
                           db_user=db_user, secret_arn=secret_arn, statement_name=get("StatementName"),
                           parameters=parameters, subs=subs, is_batch=is_batch)
    backend.statements[statement_id] = statement
    _run_statement(statement, cluster or workgroup, token, db_name, sqls,
                   {p["name"]: p["value"] for p in parameters or []})
    answer = {"Id": statement_id, "CreatedAt": statement.created, "Database": database}
    for key, value in (("ClusterIdentifier", cluster), ("WorkgroupName", workgroup), ("DbUser", db_user),
                       ("SecretArn", secret_arn)):
        if value:
            answer[key] = value
    return answer


def _run_statement(statement: _Statement, cluster: str, token: str | None, db_name: str, sqls: list[str],
                   parameters: dict) -> None:
    statement.status = "STARTED"
    for sub in statement.subs:
        sub.status = "STARTED" if not statement.is_batch else "SUBMITTED"
    if statement.database != db_name:
        outcomes = [_Outcome("FAILED", error=f'FATAL: database "{statement.database}" does not exist')] + [
            _Outcome("ABORTED") for _ in sqls[1:]]
    else:
        try:
            outcomes = _execute_units(cluster, token, sqls, parameters, statement.id, statement.cancel)
        except WarehouseError as exc:
            outcomes = [_Outcome("FAILED", error=str(exc))] + [_Outcome("ABORTED") for _ in sqls[1:]]
        except Exception as exc:  # noqa: BLE001  (a bug here must not leave it STARTED)
            log.exception("statement %s failed unexpectedly", statement.id)
            outcomes = [_Outcome("FAILED", error=f"ERROR: internal error in the local warehouse: {exc}")] + [
                _Outcome("ABORTED") for _ in sqls[1:]]
    now = time.time()
    for sub, outcome in zip(statement.subs, outcomes):
        sub.status = outcome.status
        sub.error = outcome.error
        sub.updated = outcome.ended or now
        sub.created = outcome.started or sub.created
        sub.duration = int(max(0.0, (outcome.ended or now) - (outcome.started or now)) * 1e9)
        sub.query_id = next(_query_ids)
        if outcome.status == "FINISHED" and outcome.result is not None:
            sub.has_result_set = outcome.result.has_result_set
            sub.result_rows = outcome.result.row_count
            sub.result_size = outcome.result.size if outcome.result.has_result_set else 0
            if outcome.result.has_result_set:
                _keep_result(sub.id, outcome.result)
    statuses = [s.status for s in statement.subs]
    if "FAILED" in statuses:
        statement.status = "FAILED"
        statement.error = next(s.error for s in statement.subs if s.status == "FAILED")
    elif "ABORTED" in statuses:
        statement.status = "ABORTED"
        statement.error = next((s.error for s in statement.subs if s.status == "ABORTED"), None)
    else:
        statement.status = "FINISHED"
    statement.updated = now


def _describe(response) -> dict:
    statement, sub = _lookup(response.redshiftdata_backend, response._get_param("Id"))  # noqa: SLF001
    return statement.describe(only=sub)


def _result_page(response) -> dict:
    statement_id = response._get_param("Id")  # noqa: SLF001
    statement, sub = _lookup(response.redshiftdata_backend, statement_id)
    if sub is None:
        if statement.is_batch:
            raise _error("ValidationException", "Query does not have result. Please check query status "
                                                "with DescribeStatement. (Use a sub-statement Id <id>:<n>.)")
        sub = statement.subs[0]
    if sub.status != "FINISHED" or not sub.has_result_set:
        raise _error("ResourceNotFoundException", "Query does not have result. Please check query status "
                                                  "with DescribeStatement.")
    with _results_lock:
        result = _results.get(sub.id)
    if result is None:
        raise _error("ResourceNotFoundException", "Query result has expired (the local warehouse keeps the "
                                                  f"latest {KEPT_RESULT_ROWS:,} result rows).")
    token = response._get_param("NextToken")  # noqa: SLF001
    offset = 0
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            offset = int(decoded["offset"])
            if decoded["id"] != sub.id:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise _error("ValidationException", "Invalid NextToken.") from None
    page = result.rows[offset:offset + PAGE_ROWS]
    body: dict[str, Any] = {"Records": records(page), "ColumnMetadata": result.columns,
                            "TotalNumRows": len(result.rows)}
    if offset + PAGE_ROWS < len(result.rows):
        body["NextToken"] = base64.urlsafe_b64encode(
            json.dumps({"id": sub.id, "offset": offset + PAGE_ROWS}).encode()).decode()
    return body


def _list(response) -> dict:
    get = response._get_param  # noqa: SLF001
    status = (get("Status") or "ALL").upper()
    name, cluster, database, workgroup = (get("StatementName"), get("ClusterIdentifier"), get("Database"),
                                          get("WorkgroupName"))
    limit = get("MaxResults") or 100
    if not 0 <= int(limit) <= 100:
        raise _error("ValidationException", "MaxResults must be between 0 and 100.")
    limit = int(limit) or 100
    found = [s for s in response.redshiftdata_backend.statements.values() if isinstance(s, _Statement)]
    found = [s for s in found if (status == "ALL" or s.status == status)
             and (not name or (s.statement_name or "").startswith(name))
             and (not cluster or s.cluster == cluster) and (not database or s.database == database)
             and (not workgroup or s.workgroup == workgroup)]
    found.sort(key=lambda s: s.created, reverse=True)
    offset = 0
    token = get("NextToken")
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token.encode()).decode())
        except ValueError:
            raise _error("ValidationException", "Invalid NextToken.") from None
    body: dict[str, Any] = {"Statements": [s.listed() for s in found[offset:offset + limit]]}
    if offset + limit < len(found):
        body["NextToken"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
    return body


def _cancel(response) -> dict:
    statement, _ = _lookup(response.redshiftdata_backend, response._get_param("Id"))  # noqa: SLF001
    if statement.status not in ("SUBMITTED", "PICKED", "STARTED"):
        raise _error("ValidationException", f"Could not cancel a query that is already in {statement.status} "
                                            f"state with ID: {statement.id}")
    statement.cancel.set()
    with _registry:
        running = [wh for wh in _warehouses.values() if wh.running == statement.id]
    for wh in running:
        con = wh.con
        if con is not None:
            with contextlib.suppress(Exception):
                con.interrupt()
    return {"Status": True}


_patched = False


def _patch_moto() -> None:
    """Replace moto's Redshift Data API responses with the ones above (idempotent)."""
    global _patched
    if _patched:
        return
    from moto.redshift.models import RedshiftBackend
    from moto.redshiftdata.responses import RedshiftDataAPIServiceResponse as Response

    def answer(build: Callable[[Any], dict]) -> Callable:
        def method(self):
            return 200, {}, json.dumps(build(self))
        method.__name__ = build.__name__
        return method

    Response.execute_statement = answer(lambda self: _submit(self, [self._get_param("Sql")], False))
    Response.batch_execute_statement = answer(lambda self: _submit(self, list(self._get_param("Sqls") or []), True))
    Response.describe_statement = answer(_describe)
    Response.get_statement_result = answer(_result_page)
    Response.list_statements = answer(_list)
    Response.cancel_statement = answer(_cancel)

    original_delete = RedshiftBackend.delete_cluster
    original_modify = RedshiftBackend.modify_cluster
    renaming = threading.local()

    def delete_cluster(self, **kwargs):
        cluster = original_delete(self, **kwargs)
        if not getattr(renaming, "active", False):
            drop_warehouse(cluster.cluster_identifier)  # its data goes with it, as on AWS
        return cluster

    def modify_cluster(self, **kwargs):
        # moto renames a cluster by deleting it and adding it back: keep its data.
        renaming.active = True
        try:
            cluster = original_modify(self, **kwargs)
        finally:
            renaming.active = False
        old, new = kwargs.get("cluster_identifier"), kwargs.get("new_cluster_identifier")
        if old and new and old != new:
            _rename_warehouse(old, new)
        return cluster

    RedshiftBackend.delete_cluster = delete_cluster
    RedshiftBackend.modify_cluster = modify_cluster
    _patched = True
