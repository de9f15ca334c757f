"""A local Redshift warehouse behind the Redshift Data API: a DuckDB file per cluster.

AWS: SQL reaches a Redshift cluster (or a Serverless workgroup) over HTTPS through the
Redshift Data API. ``ExecuteStatement`` returns an Id at once and the statement runs in
the background (SUBMITTED, PICKED, STARTED, then FINISHED, FAILED or ABORTED);
``DescribeStatement`` tells its status, ``Error``, ``HasResultSet``, ``ResultRows`` (rows
returned, or rows affected by INSERT/UPDATE/DELETE/COPY; -1 when there is none),
``ResultSize`` and ``Duration`` (nanoseconds); ``GetStatementResult`` pages the rows as
typed fields with Redshift's column metadata. ``BatchExecuteStatement`` runs up to 40
statements in one transaction, as sub-statements ``<id>:<n>``. An unknown cluster is a
ValidationException ("Redshift endpoint doesn't exist in this region.").

moto 5.2: ``ExecuteStatement`` accepts any SQL and runs nothing, ``DescribeStatement``
stays STARTED forever, ``GetStatementResult`` returns the same three canned rows, and
``BatchExecuteStatement`` and ``ListStatements`` are not implemented. There is no
Redshift Serverless.

Here: each cluster gets an embedded DuckDB database,
``$ECOM_HOME/warehouse/<pid>-<cluster>.duckdb``, deleted with the cluster, on reset and
at stop (a renamed cluster keeps it). Statements on one cluster run one at a time, at
once inside ``ExecuteStatement``, so they are FINISHED or FAILED when the client first
polls; ``MOTO_LOCK`` is released while DuckDB works, so a long COPY does not hold up
other AWS requests. Redshift SQL is translated and run by ``redshift_sql``, COPY is done
by ``redshift_copy``: their docstrings say what they emulate and what differs. Any
WorkgroupName is accepted (database ``dev``). Results are kept for the latest 2,000,000
result rows (AWS: 24 hours).

The state (the warehouses, the kept results) belongs to one :class:`RedshiftData`
component. In-process use (the Firehose worker loads through it): ``execute`` runs
Redshift SQL (COPY included) on a cluster's warehouse and returns a :class:`Result`,
raising :class:`WarehouseError` with Redshift's message; ``run_copy`` runs one COPY and
returns the rows loaded; ``query`` returns ``(column names, rows)``.

Not emulated: WLM and concurrency scaling, ``WithEvent`` (no EventBridge event), Data API
sessions (``SessionId``: every call is a session of its own, and its temporary tables end
with it), ``ResultFormat='CSV'`` and the metadata calls (ListTables, ...), BEGIN/COMMIT/
ROLLBACK inside a call (ignored: each call or batch is one transaction).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import random
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from moto.core import DEFAULT_ACCOUNT_ID

from ecomlib.local import redshift_copy
from ecomlib.local.component import Component
from ecomlib.local.redshift_copy import CopyFailed, CopySpec, Fetched, parse_copy
from ecomlib.local.redshift_sql import (SESSION_SETTINGS, Result, Translated, WarehouseError, first_word,
                                        records, redshift_message, run_sql, split_statements,
                                        statement_kind, translate)

# Names other modules and the tests import from here.
__all__ = ["WarehouseError", "Result", "Translated", "RedshiftData", "translate", "split_statements",
           "parse_copy", "records"]

log = logging.getLogger("ecomlib.warehouse")

PAGE_ROWS = 10_000  # rows per GetStatementResult page (AWS pages by size)
MAX_SQL_BYTES = 100 * 1024  # the Data API refuses longer query strings
KEPT_RESULT_ROWS = 2_000_000  # results kept in memory, oldest forgotten first (AWS: 24 h)
DEFAULT_DATABASE = "dev"


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

    def connect(self) -> Any:
        """The DuckDB connection, opened with Redshift's session settings on first use."""
        import duckdb

        if self.con is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(self.path))
            for setting in SESSION_SETTINGS:
                self.con.execute(setting)
            # Strings are stored uncompressed: analysing FSST and dictionary compression took
            # a fifth of a large COPY's time (the full data set: 0.60 s -> 0.47 s). The file
            # is bigger (47 MB for it, 13 MB compressed), on disk; queries run as fast.
            self.con.execute("SET disabled_compression_methods = 'fsst,dict_fsst,dictionary'")
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


def _path(cluster: str) -> Path:
    from ecomlib.config import settings

    return settings().home / "warehouse" / f"{os.getpid()}-{cluster}.duckdb"


def _warm_up() -> None:
    """Pay one-time costs now, not in the first statement: DuckDB imports pandas and numpy
    the first time it binds a parameter (~0.4 s), and sqlglot builds its dialects."""
    import duckdb

    with contextlib.suppress(Exception):
        duckdb.connect().execute("SELECT ?", ["warm"]).fetchall()
        translate("SELECT DATE_TRUNC('month', GETDATE()) AS m")


def _find_cluster(account: str, region: str | None, cluster: str | None,
                  workgroup: str | None) -> tuple[str | None, str]:
    """(token, database name) of a cluster in moto, or a ValidationException-worthy error.

    moto 5.2 has no Redshift Serverless, so any workgroup name is accepted (database dev).
    """
    from ecomlib.local.component import MOTO_LOCK

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
    """How one unit (a statement, or a batch's sub-statement) ended."""

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
    copy: CopySpec | None = None
    fetched: Fetched | None = None
    error: WarehouseError | None = None  # found while preparing; raised when its turn comes


class _Cancelled(Exception):
    """CancelStatement was called for the running statement."""


@contextlib.contextmanager
def _moto_released() -> Iterator[None]:
    """Let other AWS requests run while DuckDB works, if this thread holds MOTO_LOCK.

    An AWS request holds MOTO_LOCK for its whole duration (``server.Serialised``); a COPY
    may take seconds. The lock is released fully (whatever its recursion depth) and taken
    back afterwards. Warehouse locks are only ever taken with MOTO_LOCK released, so the
    two can not deadlock (a reset holds MOTO_LOCK and then waits for warehouse locks).
    """
    from ecomlib.local.component import MOTO_LOCK

    if not MOTO_LOCK._is_owned():  # noqa: SLF001
        yield
        return
    state = MOTO_LOCK._release_save()  # noqa: SLF001
    try:
        yield
    finally:
        MOTO_LOCK._acquire_restore(state)  # noqa: SLF001


def _prepare(text: str, folder: Path, cluster: str | None = None, db_user: str | None = None) -> _Piece:
    """Classify one statement; COPY is parsed, its role checked and its S3 objects fetched now."""
    kind = statement_kind(text)
    if kind == "copy":
        try:
            spec = parse_copy(text)
            if cluster is not None:
                authorize_copy(cluster, spec, db_user)
            return _Piece(text, "copy", copy=spec, fetched=redshift_copy.fetch(spec, folder))
        except WarehouseError as exc:
            return _Piece(text, "copy", error=exc)
    if kind == "unload":
        return _Piece(text, "noop", error=WarehouseError(
            "ERROR: UNLOAD is not supported by the local warehouse (ecomlib.local.redshift_data)"))
    return _Piece(text, kind)


# When IAM_ROLE default names no role: the text users report (AWS documents none).
NO_DEFAULT_ROLE = "ERROR: Cannot find default IAM role"


def authorize_copy(cluster_id: str, spec: CopySpec, db_user: str | None = None) -> None:
    """Refuse a COPY whose role the cluster may not assume, as Redshift does.

    AWS (COPY, "Authorization parameters"): ``IAM_ROLE 'arn'`` (or ``CREDENTIALS
    'aws_iam_role=arn'``) must name a role attached to the cluster (IamRoles) whose trust
    policy lets ``redshift.amazonaws.com`` assume it; ``IAM_ROLE default`` means the
    cluster's default role (DefaultIamRoleArn). Otherwise: ``ERROR: User
    arn:aws:redshift:<region>:<account>:dbuser:<cluster>/<user> is not authorized to assume
    IAM Role <arn>``. Access keys (``ACCESS_KEY_ID`` or a credentials string of keys) are
    not checked here.
    """
    from moto.iam.models import iam_backends
    from moto.redshift.models import redshift_backends

    from ecomlib.local.redshift_copy.options import role_of
    from ecomlib.local.component import MOTO_LOCK

    role = role_of(spec)
    if role is None:
        return
    with MOTO_LOCK:
        found = [(region, backend.clusters[cluster_id]) for region, backend in
                 redshift_backends[DEFAULT_ACCOUNT_ID].items() if cluster_id in backend.clusters]
        if not found:
            return  # the statement fails on the cluster lookup
        region, cluster = found[0]
        if role.lower() == "default":
            role = getattr(cluster, "default_iam_role_arn", None)
            if not role:
                raise WarehouseError(NO_DEFAULT_ROLE)
        trusted = False
        try:
            document = iam_backends[DEFAULT_ACCOUNT_ID]["global"].get_role(role.split("/")[-1]).assume_role_policy_document
            trusted = _trusts_redshift(document)
        except Exception:  # noqa: BLE001  (no such role)
            trusted = False
        if role not in (cluster.iam_roles_arn or []) or not trusted:
            user = db_user or cluster.master_username
            raise WarehouseError(f"ERROR: User arn:aws:redshift:{region}:{DEFAULT_ACCOUNT_ID}:dbuser:{cluster_id}/{user} "
                                 f"is not authorized to assume IAM Role {role}")


def _trusts_redshift(document) -> bool:
    """Does a role's trust policy let redshift.amazonaws.com assume it?"""
    from urllib.parse import unquote

    if isinstance(document, str):
        document = json.loads(unquote(document))
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        services = (statement.get("Principal") or {}).get("Service", [])
        services = [services] if isinstance(services, str) else services
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if statement.get("Effect") == "Allow" and "redshift.amazonaws.com" in services and (
                "sts:AssumeRole" in actions or "sts:*" in actions):
            return True
    return False


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
                        result = redshift_copy.load(con, piece.copy, piece.fetched)
                    elif piece.kind == "sql":
                        result = run_sql(con, piece.text, parameters)
                    else:
                        result = Result()
                outcomes.append(_Outcome("FINISHED", result or Result(), started=started, ended=time.time()))
            except (_Cancelled, duckdb.InterruptException):
                failed = True
                outcomes.append(_Outcome("ABORTED", error="Query cancelled on user's request",
                                         started=started, ended=time.time()))
            except CopyFailed as exc:
                failed = True
                in_transaction = False  # the COPY rolled back to read the files again
                outcomes.append(_Outcome("FAILED", error=str(exc), started=started, ended=time.time()))
            except WarehouseError as exc:
                failed = True
                outcomes.append(_Outcome("FAILED", error=str(exc), started=started, ended=time.time()))
            except duckdb.Error as exc:
                failed = True
                outcomes.append(_Outcome("FAILED", error=redshift_message(exc), started=started,
                                         ended=time.time()))
        if in_transaction:
            if failed:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
            else:
                try:
                    con.execute("COMMIT")
                except duckdb.Error as exc:
                    outcomes[-1] = _Outcome("FAILED", error=redshift_message(exc),
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


# ======================================================================================
# The Data API on moto
# ======================================================================================


@dataclass
class _Sub:
    """One SQL text of a statement (a batch has several, with Ids <id>:<n>)."""

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
    """A Data API statement, kept in moto's backend.statements under its Id."""

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


def describe(response) -> dict:
    statement, sub = _lookup(response.redshiftdata_backend, response._get_param("Id"))  # noqa: SLF001
    return statement.describe(only=sub)


def list_statements(response) -> dict:
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


class RedshiftData(Component):
    """The warehouses (a DuckDB database per cluster) and the Data API's kept results.

    moto's Redshift Data API answers through :meth:`submit`, :meth:`result_page` and
    :meth:`cancel` (see ``patches``); the other gap-fillers run SQL with :meth:`execute`.
    """

    name = "redshift-data"

    def __init__(self) -> None:
        self._warehouses: dict[str, _Warehouse] = {}
        self._registry = threading.Lock()
        self._results: "OrderedDict[str, Result]" = OrderedDict()  # sub-statement id -> result
        self._results_lock = threading.Lock()
        self._query_ids = iter(range(100_000, 10**12))

    # ---- lifecycle (called by ecomlib.local.server) -------------------------------------

    def start(self, endpoint: str) -> None:  # noqa: ARG002
        """Warm up (moto's Redshift Data API runs statements here: see ``patches``)."""
        logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "unsupported syntax" chatter
        # Import sqlglot whole here: a first import racing the warm-up thread's (its modules
        # import each other) would leave a request with a half-initialised module.
        import sqlglot.dialects.duckdb  # noqa: F401
        import sqlglot.dialects.redshift  # noqa: F401

        threading.Thread(target=_warm_up, name="warehouse-warm-up", daemon=True).start()

    def stop(self) -> None:
        """Delete every warehouse and what a COPY cut short left behind."""
        self._drop_all()
        redshift_copy.remove_leftover_workdirs()

    def reset(self) -> None:
        """moto forgot every cluster and statement: forget their data too."""
        self._drop_all()
        with self._results_lock:
            self._results.clear()

    def status(self) -> dict:
        """The clusters that have a warehouse (for the server's status route)."""
        return {"warehouses": self.warehouses()}

    # ---- warehouses -------------------------------------------------------------------

    def _warehouse_for(self, cluster: str, token: str | None) -> _Warehouse:
        """The cluster's warehouse; a new, empty one if the cluster was deleted and recreated."""
        with self._registry:
            wh = self._warehouses.get(cluster)
            if wh is not None and token is not None and wh.token is not None and wh.token != token:
                self._warehouses.pop(cluster)
                wh.drop()
                wh = None
            if wh is None:
                wh = _Warehouse(cluster, token, _path(cluster))
                for stale in (wh.path, wh.path.with_name(wh.path.name + ".wal")):
                    stale.unlink(missing_ok=True)  # left by a crashed process that had our pid
                self._warehouses[cluster] = wh
            return wh

    def drop_warehouse(self, cluster: str) -> bool:
        """Delete a cluster's warehouse (its data is gone, as when a cluster is deleted)."""
        with self._registry:
            wh = self._warehouses.pop(cluster, None)
        if wh is None:
            return False
        wh.drop()
        return True

    def rename_warehouse(self, old: str, new: str) -> None:
        """A renamed cluster keeps its data: move its file to the new name."""
        with self._registry:
            wh = self._warehouses.pop(old, None)
            if wh is None:
                return
            stale = self._warehouses.pop(new, None)
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
            self._warehouses[new] = wh

    def _drop_all(self) -> None:
        with self._registry:
            found = list(self._warehouses.values())
            self._warehouses.clear()
        for wh in found:
            wh.drop()

    def warehouses(self) -> list[str]:
        """Clusters (or workgroups) that have a warehouse in this process."""
        with self._registry:
            return sorted(self._warehouses)

    # ---- in-process API (for the other gap-fillers) -----------------------------------

    def execute(self, cluster: str, database: str | None, sql: str, parameters: dict | None = None,
                region: str | None = None) -> Result:
        """Run Redshift SQL (one or more statements, COPY included) on a cluster's warehouse.

        All statements run in one transaction; the result is the last statement's. Raises
        :class:`WarehouseError` (Redshift's message) if a statement fails, and does not hold
        ``MOTO_LOCK`` while DuckDB works. ``database`` None skips the database-name check;
        ``region`` None finds the cluster in any region.
        """
        token, db_name = _find_cluster(DEFAULT_ACCOUNT_ID, region, cluster, workgroup=None)
        if database is not None and database != db_name:
            raise WarehouseError(f'FATAL: database "{database}" does not exist')
        outcome = self._execute_units(cluster, token, [sql], parameters or {})[0]
        if outcome.status != "FINISHED":
            raise WarehouseError(outcome.error or outcome.status)
        return outcome.result or Result()

    def run_copy(self, cluster: str, database: str | None, sql: str, region: str | None = None) -> int:
        """Run one COPY statement; returns the number of rows loaded."""
        if first_word(sql) != "COPY":
            raise WarehouseError("run_copy runs COPY statements only")
        return self.execute(cluster, database, sql, region=region).row_count

    def query(self, cluster: str, sql: str, parameters: dict | None = None,
              region: str | None = None) -> tuple[list[str], list[tuple]]:
        """Run Redshift SQL on a cluster's warehouse; returns (column names, rows)."""
        result = self.execute(cluster, None, sql, parameters, region=region)
        return result.names, result.rows

    def _execute_units(self, cluster: str, token: str | None, units: list[str], parameters: dict,
                       statement_id: str | None = None,
                       cancelled: threading.Event | None = None, db_user: str | None = None) -> list[_Outcome]:
        """Run units (each one or more statements) in one transaction; one outcome per unit.

        Phase 1: split, parse COPYs and read their S3 objects to local files. Phase 2
        (warehouse locked): run everything. Neither holds MOTO_LOCK (COPY takes it to read S3).
        """
        with _moto_released(), redshift_copy.workdir() as folder:
            prepared: list[list[_Piece]] = []
            for unit in units:
                try:
                    prepared.append([_prepare(text, folder, cluster, db_user) for text in split_statements(unit)])
                except WarehouseError as exc:
                    prepared.append([_Piece(text=unit, kind="noop", error=exc)])
            wh = self._warehouse_for(cluster, token)
            with wh.lock:
                if wh.closed:
                    raise _ClusterError(f"Cluster {cluster} was deleted while the statement waited.")
                wh.running = statement_id
                try:
                    return _run_prepared(wh, prepared, parameters, cancelled)
                finally:
                    wh.running = None

    # ---- the Data API on moto ---------------------------------------------------------

    def _keep_result(self, sub_id: str, result: Result) -> None:
        with self._results_lock:
            self._results[sub_id] = result
            total = sum(len(r.rows) for r in self._results.values())
            while total > KEPT_RESULT_ROWS and len(self._results) > 1:
                _, dropped = self._results.popitem(last=False)
                total -= len(dropped.rows)

    def submit(self, response, sqls: list[str], is_batch: bool) -> dict:
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
        self._run_statement(statement, cluster or workgroup, token, db_name, sqls,
                       {p["name"]: p["value"] for p in parameters or []})
        answer = {"Id": statement_id, "CreatedAt": statement.created, "Database": database}
        for key, value in (("ClusterIdentifier", cluster), ("WorkgroupName", workgroup), ("DbUser", db_user),
                           ("SecretArn", secret_arn)):
            if value:
                answer[key] = value
        return answer

    def _run_statement(self, statement: _Statement, cluster: str, token: str | None, db_name: str, sqls: list[str],
                       parameters: dict) -> None:
        statement.status = "STARTED"
        for sub in statement.subs:
            sub.status = "STARTED" if not statement.is_batch else "SUBMITTED"
        if statement.database != db_name:
            outcomes = [_Outcome("FAILED", error=f'FATAL: database "{statement.database}" does not exist')] + [
                _Outcome("ABORTED") for _ in sqls[1:]]
        else:
            try:
                outcomes = self._execute_units(cluster, token, sqls, parameters, statement.id, statement.cancel,
                                               statement.db_user)
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
            sub.query_id = next(self._query_ids)
            if outcome.status == "FINISHED" and outcome.result is not None:
                sub.has_result_set = outcome.result.has_result_set
                sub.result_rows = outcome.result.row_count
                sub.result_size = outcome.result.size if outcome.result.has_result_set else 0
                if outcome.result.has_result_set:
                    self._keep_result(sub.id, outcome.result)
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

    def result_page(self, response) -> dict:
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
        with self._results_lock:
            result = self._results.get(sub.id)
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

    def cancel(self, response) -> dict:
        statement, _ = _lookup(response.redshiftdata_backend, response._get_param("Id"))  # noqa: SLF001
        if statement.status not in ("SUBMITTED", "PICKED", "STARTED"):
            raise _error("ValidationException", f"Could not cancel a query that is already in {statement.status} "
                                                f"state with ID: {statement.id}")
        statement.cancel.set()
        with self._registry:
            running = [wh for wh in self._warehouses.values() if wh.running == statement.id]
        for wh in running:
            con = wh.con
            if con is not None:
                with contextlib.suppress(Exception):
                    con.interrupt()
        return {"Status": True}
