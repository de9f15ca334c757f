"""COPY ... FORMAT JSON: keys matched to columns ('auto', 'auto ignorecase') or JSONPaths.

AWS: with 'auto' each column takes the key of the same (lower-case) name, with 'auto
ignorecase' a key in any case; a JSONPaths file lists one path per column
(``$.key``, ``$['key']``, ``$.key[0]``), and their numbers must match. Objects may be
one per line or back to back (``{...}{...}``, as Firehose writes them).

Here: DuckDB's ``read_json`` reads every matched key as text (``VARCHAR``, or ``JSON``
for a key a nested path goes into); :func:`json_source` returns that FROM clause and one
raw text expression per target column, which ``convert`` then turns into the column's
type. JSON numbers pass through a double (exact up to 15 significant digits).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from ecomlib.local.redshift_copy.options import CopySpec
from ecomlib.local.redshift_copy.sqltext import ident, sql_string
from ecomlib.local.redshift_sql import Column, WarehouseError

if TYPE_CHECKING:
    from ecomlib.local.redshift_copy.files import CopyFile, Fetched


# ======================================================================================
# Files: one object per line or not; JSONPaths
# ======================================================================================


def not_one_object_per_line(data: bytes) -> bool:
    """True for objects written back to back ({...}{...}, as Firehose does without a
    newline delimiter) or spread over several lines; false for JSON Lines.

    Only the first and last lines are looked at: scanning 130 MB for "}{" costs more than
    DuckDB takes to load it.
    """
    first_end = data.find(b"\n")
    last_start = data.rstrip().rfind(b"\n") + 1
    lines = [data[:first_end] if first_end >= 0 else data, data[last_start:]]
    return any(_not_one_object(line.strip()) for line in lines)


def _not_one_object(text: bytes) -> bool:
    """True unless the line is empty or holds exactly one JSON object."""
    if not text:
        return False
    if not text.startswith(b"{"):
        return True  # arrays, or an object spread over lines
    decoded = text.decode("utf-8", errors="replace")
    try:
        _, end = json.JSONDecoder().raw_decode(decoded)
    except ValueError:
        return True  # an object continues on the next line
    return end != len(decoded)  # another object follows on the same line


_JSONPATH_STEP = re.compile(  # .key | ['key'] | ["key"] | [0]
    r"""\.([^.\[\]'"]+)|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\]|\[\s*(\d+)\s*\]""")


def parse_jsonpaths(data: bytes, url: str) -> list[list[str | int]]:
    """A JSONPaths file's paths, each as its steps (keys and array indexes)."""
    try:
        document = json.loads(data)
        paths = document["jsonpaths"]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise WarehouseError(f"ERROR: Invalid JSONPath format: the jsonpaths file {url} must be a JSON "
                             'object {"jsonpaths": ["$.field", ...]}') from None
    return [_jsonpath_steps(path, url) for path in paths]


def _jsonpath_steps(path: str, url: str) -> list[str | int]:
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
    return steps


# ======================================================================================
# Keys to columns
# ======================================================================================


def _by_jsonpaths(spec: CopySpec, paths: list[list[str | int]],
                  targets: list[Column]) -> tuple[dict[str, str], list[str]]:
    """(keys to read and their types, raw expression per column) for a JSONPaths file."""
    if len(paths) != len(targets):
        raise WarehouseError(
            "ERROR: Number of jsonpaths and the number of columns should match. JSONPath size: "
            f"{len(paths)}, Number of columns in table or column list: {len(targets)} "
            f"(jsonpaths file {spec.json_option})")
    nested = {p[0] for p in paths if len(p) > 1}
    keys: dict[str, str] = {}
    for steps in paths:
        keys.setdefault(steps[0], "JSON" if steps[0] in nested else "VARCHAR")
    return keys, [_path_expression(steps, nested) for steps in paths]


def _path_expression(steps: list[str | int], nested: set) -> str:
    column = f"src.{ident(steps[0])}"
    if steps[0] not in nested:
        return column
    path = "$" + "".join(f"[{s}]" if isinstance(s, int) else "." + json.dumps(s) for s in steps[1:])
    return f"json_extract_string({column}, {sql_string(path)})"


def _by_any_case(con, files: list[CopyFile], targets: list[Column]) -> tuple[dict[str, str], list[str]]:
    """'auto ignorecase': each column takes the keys equal to its name in any case."""
    present = _json_keys(con, files)
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
            raw.append(f"src.{ident(matches[0])}")
        else:
            raw.append("COALESCE(" + ", ".join(f"src.{ident(m)}" for m in matches) + ")")
    return keys, raw


def _by_name(targets: list[Column]) -> tuple[dict[str, str], list[str]]:
    """'auto': Redshift column names are lower case, and 'auto' matches them exactly."""
    return {t.name: "VARCHAR" for t in targets}, [f"src.{ident(t.name)}" for t in targets]


def _keys_and_columns(con, spec: CopySpec, fetched: Fetched,
                      targets: list[Column]) -> tuple[dict[str, str], list[str]]:
    option = spec.json_option.strip().lower()
    if fetched.jsonpaths is not None:
        return _by_jsonpaths(spec, fetched.jsonpaths, targets)
    if option == "auto ignorecase":
        return _by_any_case(con, fetched.files, targets)
    if option in ("auto", "noshred"):
        return _by_name(targets)
    raise WarehouseError(f"ERROR: Invalid JSON option '{spec.json_option.strip()}': use 'auto', "
                         "'auto ignorecase' or 's3://bucket/jsonpaths_file'")


def json_source(con, spec: CopySpec, fetched: Fetched, targets: list[Column],
                filename: bool = True) -> tuple[str, list[str]]:
    """(FROM clause, one raw VARCHAR expression per target column) for the COPY's files."""
    keys, raw = _keys_and_columns(con, spec, fetched, targets)
    if not keys:
        keys = {"__ecomlib_none": "VARCHAR"}
    columns = "{" + ", ".join(f"{sql_string(k)}: {sql_string(v)}" for k, v in keys.items()) + "}"
    options = ", filename=true" if filename else ""
    if spec.compression == "zstd":
        options += ", compression='zstd'"
    reads = [f"SELECT * FROM read_json({listed}, format='{json_format}', columns={columns}, "
             f"maximum_object_size=67108864{options})"
             for json_format, listed in _paths_by_format(fetched.files).items()]
    return "(" + " UNION ALL ".join(reads) + ") AS src", raw


def _paths_by_format(files: list[CopyFile]) -> dict[str, str]:
    """The files as DuckDB lists of paths, by JSON format, in order (a shared file once)."""
    groups: dict[str, dict[str, None]] = {}
    for f in files:
        groups.setdefault(f.json_format, {})[str(f.path)] = None
    return {json_format: "[" + ", ".join(sql_string(p) for p in paths) + "]"
            for json_format, paths in groups.items()}


def _json_keys(con, files: list[CopyFile]) -> list[str]:
    keys: set[str] = set()
    for json_format, listed in _paths_by_format(files).items():
        for (key,) in con.execute(f"SELECT DISTINCT unnest(json_keys(json)) FROM read_json_objects("
                                  f"{listed}, format='{json_format}')").fetchall():
            keys.add(key)
    return sorted(keys)
