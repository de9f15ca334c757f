"""COPY's conversion of each raw text field to its column's type, as SQL for DuckDB.

AWS: an empty field is NULL for every non-character type; integers must be integers;
DECIMAL is exact and truncated to the column's scale unless ROUNDEC; booleans take
t/true/1/y/yes/on and their opposites; TIMEFORMAT and DATEFORMAT are 'auto', 'epochsecs',
'epochmillisecs' or a pattern (default 'YYYY-MM-DD HH:MI:SS', strict); character fields
may be trimmed (TRIMBLANKS), made NULL (EMPTYASNULL, BLANKSASNULL) or cut to the column's
length in bytes (TRUNCATECOLUMNS). A field that does not convert fails the COPY with
Redshift's reason (as STL_LOAD_ERRORS shows it).

Here: :func:`conversion` returns, for one column, the SQL value (which raises with that
reason on a bad field) and the SQL test that the field converts; one function per type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ecomlib.local.redshift_copy.options import CopySpec
from ecomlib.local.redshift_copy.sqltext import sql_string
from ecomlib.local.redshift_sql import Column


@dataclass
class Conversion:
    """How COPY turns one raw text field into a column value."""

    value: str  # SQL: the column value (raises, with Redshift's reason, on a bad field)
    valid: str  # SQL: true when the field converts (no volatile error(), usable in filters)


_TIME_ELEMENTS = [("YYYY", "%Y"), ("YY", "%y"), ("MONTH", "%B"), ("MON", "%b"), ("MM", "%m"), ("DD", "%d"),
                  ("HH24", "%H"), ("HH12", "%I"), ("HH", "%H"), ("MI", "%M"), ("SS", "%S"), ("AM", "%p"),
                  ("PM", "%p"), ("US", "%f"), ("OF", "%z")]


def strptime_format(redshift_format: str) -> str:
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


def _blank(raw: str) -> str:
    return f"NULLIF(trim({raw}), '')"  # an empty field is NULL for every non-character type


def _guarded(raw: str, converted: str, test: str, reason: str, as_type: str) -> Conversion:
    """``converted``: the value, NULL when the field is empty or does not convert;
    ``test``: true when it converts. A field that does not convert fails the COPY."""
    failing = f"CAST(error({sql_string(reason + ', Value ')} || '''' || {raw} || '''') AS {as_type})"
    return Conversion(f"coalesce({converted}, CASE WHEN {_blank(raw)} IS NULL THEN NULL ELSE {failing} END)",
                      f"({_blank(raw)} IS NULL OR ({test}))")


def _varchar(raw: str, column: Column, spec: CopySpec) -> Conversion:
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
    return Conversion(value, "true")


def _integer(raw: str, column: Column, spec: CopySpec) -> Conversion:
    duck = column.type.upper()
    digits = "[-+]?[0-9]+(\\.0*)?" if spec.format == "JSON" else "[-+]?[0-9]+"  # JSON 6.0 is 6
    integral = f"regexp_full_match(trim({raw}), '{digits}')"
    kind = {"SMALLINT": "Short Integer", "BIGINT": "Long Integer"}.get(duck, "Integer")
    return _guarded(raw, f"CASE WHEN {integral} THEN TRY_CAST(trim({raw}) AS {duck}) END",
                    f"{integral} AND TRY_CAST(trim({raw}) AS {duck}) IS NOT NULL",
                    f"Invalid digit or integer out of range, Type: {kind}", duck)


def _decimal(raw: str, column: Column, spec: CopySpec) -> Conversion:
    match = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", column.type.upper())
    scale = int(match.group(2)) if match else 0
    if spec.round_decimals:
        text = _blank(raw)
    else:  # COPY truncates extra decimals (ROUNDEC rounds): cut the text, then cast exactly
        keep = f"[0-9]{{{scale}}}" if scale else ""
        pattern = rf"^([-+]?[0-9]*\.{keep})[0-9]+$" if scale else r"^([-+]?[0-9]*)\.[0-9]*$"
        text = f"regexp_replace({_blank(raw)}, {sql_string(pattern)}, '\\1')"
    converted = f"TRY_CAST({text} AS {column.type})"
    return _guarded(raw, converted, f"{converted} IS NOT NULL",
                    f"Invalid digit or numeric overflow (result precision), Type: {column.type}", column.type)


def _boolean(raw: str, column: Column, spec: CopySpec) -> Conversion:
    truth, falsity = "('t','true','1','y','yes','on')", "('f','false','0','n','no','off')"
    lowered = f"lower(trim({raw}))"
    return _guarded(raw, f"CASE WHEN {lowered} IN {truth} THEN true WHEN {lowered} IN {falsity} THEN false END",
                    f"{lowered} IN {truth} OR {lowered} IN {falsity}", "Invalid boolean value", "BOOLEAN")


def _parsed_timestamp(raw: str, fmt: str | None, target: str) -> str:
    """SQL parsing the field with TIMEFORMAT ``fmt`` (NULL if it does not parse)."""
    special = {
        "auto": f"TRY_CAST(trim({raw}) AS {target})",
        "epochsecs": f"CAST(to_timestamp(TRY_CAST(trim({raw}) AS DOUBLE)) AT TIME ZONE 'UTC' AS {target})",
        "epochmillisecs": f"CAST(epoch_ms(TRY_CAST(trim({raw}) AS BIGINT)) AS {target})",
    }
    if fmt is not None and fmt.lower() in special:
        return special[fmt.lower()]
    # the default is strict: 'YYYY-MM-DD HH:MI:SS' (ISO 'T' needs TIMEFORMAT 'auto')
    strp = strptime_format(fmt) if fmt else "%Y-%m-%d %H:%M:%S"
    formats = f"[{sql_string(strp)}, {sql_string(strp.replace('%S', '%S.%f'))}]"
    return f"CAST(try_strptime(trim({raw}), {formats}) AS {target})"


def _timestamp(raw: str, column: Column, spec: CopySpec) -> Conversion:
    target = "TIMESTAMPTZ" if "ZONE" in column.type.upper() else "TIMESTAMP"
    parsed = _parsed_timestamp(raw, spec.time_format, target)
    shown = (spec.time_format or "YYYY-MM-DD HH24:MI:SS").replace("'", "")
    return _guarded(raw, parsed, f"{parsed} IS NOT NULL", f"Invalid timestamp format or value [{shown}]", target)


def _date(raw: str, column: Column, spec: CopySpec) -> Conversion:
    fmt = spec.date_format
    if fmt is not None and fmt.lower() == "auto":
        parsed = (f"coalesce(TRY_CAST(trim({raw}) AS DATE), CAST(try_strptime(trim({raw}), "
                  "['%Y/%m/%d', '%m/%d/%Y', '%Y%m%d', '%d-%b-%Y', '%b %d %Y']) AS DATE))")
    else:
        strp = strptime_format(fmt) if fmt else "%Y-%m-%d"
        parsed = f"CAST(try_strptime(trim({raw}), {sql_string(strp)}) AS DATE)"
    shown = (fmt or "YYYY-MM-DD").replace("'", "")
    return _guarded(raw, parsed, f"{parsed} IS NOT NULL", f"Invalid date format or value [{shown}]", "DATE")


def _other(raw: str, column: Column, spec: CopySpec) -> Conversion:
    converted = f"TRY_CAST({_blank(raw)} AS {column.type})"
    return _guarded(raw, converted, f"{converted} IS NOT NULL", f"Invalid value for type {column.type}",
                    column.type)


def _parquet(raw: str, column: Column, spec: CopySpec) -> Conversion:
    return Conversion(f"CAST({raw} AS {column.type})",
                      f"({raw} IS NULL OR TRY_CAST({raw} AS {column.type}) IS NOT NULL)")


_BY_TYPE = {
    "VARCHAR": _varchar, "BOOLEAN": _boolean, "DATE": _date,
    **dict.fromkeys(("INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT"), _integer),
    **dict.fromkeys(("TIMESTAMP", "TIMESTAMP WITH TIME ZONE"), _timestamp),
}


def conversion(raw: str, column: Column, spec: CopySpec) -> Conversion:
    """The conversion of a raw field to the column's type, as COPY does it."""
    duck = column.type.upper()
    if spec.format == "PARQUET":
        return _parquet(raw, column, spec)
    if duck.startswith("DECIMAL"):
        return _decimal(raw, column, spec)
    return _BY_TYPE.get(duck, _other)(raw, column, spec)
