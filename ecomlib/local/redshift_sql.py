"""Redshift SQL on DuckDB: statements split, translated and run; results typed as Redshift's.

AWS: Redshift speaks a PostgreSQL dialect of its own. Tables take physical options
(DISTSTYLE, DISTKEY, SORTKEY, ENCODE, BACKUP); VARCHAR(n) and CHAR(n) count bytes, TEXT
is VARCHAR(256); PRIMARY KEY, UNIQUE and FOREIGN KEY are informational, not enforced;
IDENTITY columns number the rows. Identifiers fold to lower case, ``/`` between integers
is integer division, NULLs sort as the largest values, the session time zone is UTC.
Functions include GETDATE(), DATEPART, DATE_TRUNC and TO_CHAR with Redshift's part and
format names. The Data API returns rows as typed fields (``longValue`` for integers,
``stringValue`` for exact NUMERIC text such as ``"2.550"`` and for timestamps
``"2010-12-01 08:26:00"``, ``doubleValue``, ``booleanValue``, ``isNull``) with Redshift's
column metadata (``typeName`` ``int4``, ``numeric``, ``varchar``...); an unnamed result
column is named after its function (``count``, ``sum``) or ``?column?``.

moto 5.2 runs no SQL at all.

Here: sqlglot translates (``read="redshift"``, ``write="duckdb"``), plus fix-ups:
DISTSTYLE/DISTKEY/SORTKEY/ENCODE/BACKUP are dropped; VARCHAR(n)/CHAR(n) lengths are
enforced in bytes (TEXT and VARCHAR without a length are VARCHAR(256), as on Redshift);
PRIMARY KEY/UNIQUE/FOREIGN KEY are dropped (informational on Redshift); IDENTITY columns
become sequences; identifiers fold to lower case; ``/`` between integers is integer
division; NULLs sort as the largest values; the session time zone is UTC; GETDATE() is a
TIMESTAMP in whole seconds; DATE_TRUNC returns a TIMESTAMP; DATEPART/EXTRACT take
Redshift's part names; TO_CHAR takes Mon, Month, Day, Dy, HH, AM; unnamed result
columns get Redshift's names. Parameters (``:name``) are bound as values, never spliced
into the SQL. VACUUM, ANALYZE, GRANT, users, groups, locks and transaction statements
are accepted and do nothing. :func:`run_sql` runs one statement on a DuckDB connection
and returns a :class:`Result`; :func:`records` turns its rows into Data API fields.

Not emulated: distribution, sort keys and compression (nothing physical), users, groups
and GRANT (accepted, no effect), system tables (STL_*, STV_*, SVV_*, PG_TABLE_DEF),
UNLOAD, Spectrum, stored procedures. Where DuckDB's semantics differ they are DuckDB's:
division by zero gives NULL, not an error; AVG of integers or decimals is a DOUBLE;
regular expressions are RE2; ``ResultSize`` is an estimate.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any


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
        """The column names, in order."""
        return [c["name"] for c in self.columns]


# What a Redshift session looks like, as far as DuckDB can be told (run on each connection).
SESSION_SETTINGS = [
    "SET integer_division = true",  # 7 / 2 = 3 between integers
    # Redshift sorts NULL as the largest value (last on ASC, first on DESC); sqlglot writes
    # that order out explicitly, so DuckDB's own default must stay (an explicit
    # ``DESC NULLS LAST`` is written without its NULLS clause, as DuckDB's default).
    "SET default_null_order = 'nulls_last'",
    "SET TimeZone = 'UTC'",
    "CREATE SCHEMA IF NOT EXISTS public",
    "SET schema = 'public'",
]


# ======================================================================================
# Statements: tokens, splitting, what kind of statement
# ======================================================================================


@functools.cache
def _dialect() -> type:
    """sqlglot's Redshift dialect, with the TO_CHAR format names it does not map."""
    from sqlglot.dialects.redshift import Redshift

    class EcomRedshift(Redshift):
        TIME_MAPPING = {
            **Redshift.TIME_MAPPING,
            "Mon": "%b", "mon": "%b", "Month": "%B", "month": "%B",
            "Day": "%A", "DAY": "%A", "day": "%A", "Dy": "%a", "DY": "%a", "dy": "%a",
            "HH": "%I", "AM": "%p", "PM": "%p", "am": "%p", "pm": "%p", "MS": "%g",
        }

    return EcomRedshift


def tokenize(sql: str) -> list:
    """sqlglot tokens of Redshift SQL; a WarehouseError (syntax error) if it cannot be read."""
    from sqlglot.errors import TokenError

    try:
        return _dialect()().tokenize(sql)
    except TokenError as exc:
        raise WarehouseError(f"ERROR: syntax error: {exc}") from None


def first_word(sql: str) -> str:
    """The statement's first keyword in upper case (comments skipped), or ""."""
    match = re.match(r"\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*([A-Za-z_]+)", sql, re.S)
    return match.group(1).upper() if match else ""


def split_statements(sql: str) -> list[str]:
    """Redshift SQL split into statements at ';' (not inside quotes or comments)."""
    from sqlglot.tokens import TokenType

    pieces: list[str] = []
    start = 0
    have_tokens = False
    for token in tokenize(sql):
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


def statement_kind(sql: str) -> str:
    """What one statement is: "copy", "unload", "noop" (accepted, does nothing here) or "sql"."""
    words = [t.text.upper() for t in tokenize(sql)[:3]]
    first = words[0] if words else ""
    if first in ("COPY", "UNLOAD"):
        return first.lower()
    if first in _NOOP_FIRST_WORDS:
        return "noop"
    if first in ("CREATE", "ALTER", "DROP") and len(words) > 1 and words[1] in _NOOP_OBJECTS:
        return "noop"
    if first == "ALTER" and _alters_layout(sql):
        return "noop"
    return "sql"


def _alters_layout(text: str) -> bool:
    """ALTER TABLE ... ALTER DISTKEY/SORTKEY/DISTSTYLE/ENCODE, or ALTER COLUMN c ENCODE."""
    words = [t.text.upper() for t in tokenize(text)]
    for i in range(2, len(words) - 1):
        if words[i] == "ALTER" and (words[i + 1] in _PHYSICAL or (
                words[i + 1] == "COLUMN" and "ENCODE" in words[i + 2:])):
            return True
    return False


# ======================================================================================
# Redshift SQL -> DuckDB
# ======================================================================================


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
    return first_word(text) in ("SELECT", "WITH", "VALUES", "SHOW", "DESCRIBE", "EXPLAIN", "TABLE", "PRAGMA")


def _strip_physical(sql: str) -> str:
    """CREATE TABLE without DISTSTYLE/DISTKEY/SORTKEY/ENCODE/BACKUP (physical layout only)."""
    from sqlglot.tokens import TokenType

    tokens = tokenize(sql)
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
    """The table a single-table SELECT reads, for the result's column metadata."""

    schema: str | None
    table: str
    columns: dict[str, str]  # result column -> table column
    star: bool


# ======================================================================================
# Running a statement
# ======================================================================================


def run_sql(con, text: str, parameters: dict) -> Result:
    """Run one Redshift statement on a DuckDB connection, ``:name`` bound from ``parameters``."""
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
    (re.compile(r'(?:Table|View) with name "?(\S+?)"? already exists'),
     lambda m: f'ERROR: relation "{m.group(1)}" already exists'),
    (re.compile(r'Referenced column "?([^"\s]+)"? not found'),
     lambda m: f'ERROR: column "{m.group(1)}" does not exist'),
    (re.compile(r"CHECK constraint failed on table \S+ with expression CHECK\(\(strlen\((.+?)\) <= (\d+)\)\)"),
     lambda m: f"ERROR: value too long for type character varying({m.group(2)})"),
    (re.compile(r"NOT NULL constraint failed: (\S+)\.(\S+)"),
     lambda m: f'ERROR: Cannot insert a NULL value into column {m.group(2)}'),
]


def redshift_message(exc: Exception) -> str:
    """A DuckDB error as Redshift would word it (DuckDB's own text when there is no match)."""
    text = str(exc)
    for pattern, build in _DUCK_MESSAGES:
        match = pattern.search(text)
        if match:
            return build(match)
    first = text.split("\n\nLINE ")[0].strip()
    return "ERROR: " + first


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


def redshift_type(duck_type: str) -> tuple[str, int, int, bool]:
    """A DuckDB type as Redshift's (typeName, precision, scale, signed)."""
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
        type_name, precision, scale, signed = redshift_type(duck_type)
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
class Column:
    """One column of a table, as COPY and the column metadata need it."""

    name: str
    type: str  # DuckDB type, e.g. DECIMAL(10,3)
    nullable: bool = True
    default: str | None = None
    length: int | None = None  # bytes, for character columns
    schema: str = ""
    table: str = ""

    @property
    def identity(self) -> bool:
        """An IDENTITY column (its default draws from a sequence)."""
        return bool(self.default and self.default.startswith("nextval("))


def _table_columns(con, source: tuple[str | None, str]) -> dict[str, Column]:
    try:
        return {c.name: c for c in describe_table(con, source[0], source[1])}
    except WarehouseError:
        return {}


def describe_table(con, schema: str | None, table: str) -> list[Column]:
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
        raise WarehouseError(redshift_message(exc)) from None
    shown_schema = "pg_temp" if temporary else schema_name
    return [Column(name=row[0], type=row[1], nullable=row[2] == "YES", default=row[4],
                   length=lengths.get(row[0]), schema=shown_schema, table=table_name) for row in described]

