"""COPY from S3 into the local warehouse: options parsed, objects read from moto, rows loaded.

AWS: ``COPY table [(columns)] FROM 's3://bucket/prefix' options`` loads every object
whose key starts with the FROM prefix, or the objects a manifest lists (MANIFEST), read
as JSON (keys matched to columns by 'auto' names, or by a JSONPaths file), CSV, delimited
text or Parquet, optionally GZIP, BZIP2 or ZSTD compressed. Each raw field is converted
to its column's type (DECIMAL truncated to the column's scale unless ROUNDEC; TIMEFORMAT,
DATEFORMAT, EMPTYASNULL, BLANKSASNULL, TRUNCATECOLUMNS, ...). A COPY is all or nothing:
one bad value (more than MAXERROR) fails it, its error points at STL_LOAD_ERRORS, and no
row is loaded. Its ResultRows is the rows loaded, as the API reference says (AWS was
reported returning 0 in 2022, aws/aws-sdk#333).

moto 5.2 runs no SQL, COPY included.

Here: :func:`parse_copy` reads the statement; :func:`fetch` reads the objects from
moto's S3 in-process (under ``MOTO_LOCK``), decompresses them and writes them to
memory-backed temporary files (:func:`workdir`), JSON Lines objects back to back in one
file (DuckDB reads one big file much faster than many small ones); :func:`load` loads
them with DuckDB's JSON, CSV or Parquet reader in one ``INSERT ... SELECT`` that
converts each raw text field as COPY does (DECIMAL exact and truncated to the column's
scale unless ROUNDEC; integers must be integers; TIMEFORMAT 'auto' or the strict default
'YYYY-MM-DD HH:MI:SS'; EMPTYASNULL, BLANKSASNULL, TRUNCATECOLUMNS, MAXERROR, ...). JSON
'auto' matches keys equal to the (lower-case) column names and 'auto ignorecase' any
case, as the COPY reference says; objects may be one per line or back to back
(``{...}{...}``, as Firehose writes them). A failing COPY loads nothing; its error has
Redshift's first sentence and names the first bad value (S3 object, column, value,
reason), which is what STL_LOAD_ERRORS would say (to name the object, a failed load is
diagnosed again from one file per object).

Not emulated: STL_LOAD_ERRORS itself; COPY from DynamoDB, EMR or SSH, or as ORC, Avro
or fixed-width; credentials are accepted and not checked. JSON numbers pass through a
double (exact up to 15 significant digits; Redshift warns about JSON numbers too).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import logging
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ecomlib.local.redshift_sql import (Column, Result, WarehouseError, describe_table, redshift_type,
                                        tokenize)

log = logging.getLogger("ecomlib.warehouse")

ACCOUNT_ID = "123456789012"  # moto's default account, whose S3 buckets COPY reads


# ======================================================================================
# Parsing COPY
# ======================================================================================


@dataclass
class CopySpec:
    """A COPY statement's table, source and options."""

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
        """The table as written in the statement (schema.table or table)."""
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


def parse_copy(sql: str) -> CopySpec:
    """COPY table [(columns)] FROM 's3://...' options..., as Redshift reads it."""
    from sqlglot.tokens import TokenType

    tokens = [t for t in tokenize(sql) if t.token_type != TokenType.SEMICOLON]
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

    def optional_string() -> str | None:
        """The text of an optional ``[AS] 'text'`` after a keyword, or None."""
        if peek() is not None and peek().text.upper() == "AS":
            take()
        if peek() is not None and peek().token_type == TokenType.STRING:
            return take().text
        return None

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
    spec = CopySpec(table=table, schema=names[-2].lower() if len(names) > 1 else None,
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
            option = optional_string()
            if option is not None:
                spec.json_option = option
        elif word == "PARQUET":
            spec.format = "PARQUET"
        elif word in ("ORC", "AVRO", "FIXEDWIDTH", "SHAPEFILE"):
            raise error(f"COPY ... {word} is not supported by the local warehouse (ecomlib.local.warehouse)")
        elif word == "ACCEPTINVCHARS":
            spec.accept_inv_chars = optional_string() or "?"
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


# ======================================================================================
# Reading the objects from moto's S3
# ======================================================================================


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A temporary folder for the objects of one call's COPYs, deleted afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"ecomlib-copy-{os.getpid()}-", dir=_workdir_root()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


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


def remove_leftover_workdirs() -> None:
    """Delete the folders of COPYs this process cut short (called at stop)."""
    from ecomlib.config import settings

    for root in (Path("/dev/shm"), settings().home / "warehouse"):
        for leftover in root.glob(f"ecomlib-copy-{os.getpid()}-*"):
            shutil.rmtree(leftover, ignore_errors=True)


@dataclass
class _File:
    """One S3 object, decompressed into a local file of its own, or into bytes
    ``span`` of a file shared with the COPY's other JSON Lines objects."""

    url: str  # s3://bucket/key it came from
    path: Path  # local copy (decompressed)
    json_format: str = "newline_delimited"  # or "unstructured" (objects not one per line)
    span: tuple[int, int] | None = None  # (start, end) in a shared file


@dataclass
class Fetched:
    """A COPY's objects in local files, and its JSONPaths (one list of steps per column)."""

    files: list[_File]
    jsonpaths: list[list[str | int]] | None = None
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


def fetch(spec: CopySpec, folder: Path) -> Fetched:
    """Read the COPY's objects from moto (under MOTO_LOCK), then write them to local files
    in ``folder`` (the caller should not hold MOTO_LOCK: writing takes a while)."""
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
    files = _write_files(spec, objects, folder)
    fetched = Fetched(files=files, jsonpaths=jsonpaths, size=sum(len(data) for _, data in objects))
    log.info("COPY %s: read %d objects (%.1f MB) from moto in %.2f s, wrote them in %.2f s", spec.target,
             len(objects), fetched.size / 1e6, read - began, time.monotonic() - read)
    return fetched


def _write_files(spec: CopySpec, objects: list[tuple[str, bytes]], folder: Path) -> list[_File]:
    """Decompress the objects (in parallel: zlib and bz2 free the GIL) and write them to local
    files, in order. JSON Lines objects go back to back into one shared file: DuckDB loads
    one big file much faster than many small ones. Any other object gets a file of its own.
    """
    suffix = {"JSON": ".json", "CSV": ".csv", "PARQUET": ".parquet"}.get(spec.format, ".txt")
    if spec.compression == "zstd":
        suffix += ".zst"
    shareable = spec.format == "JSON" and spec.compression != "zstd"
    shared = folder / f"lines{suffix}"
    files: list[_File] = []
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(objects)))) as pool, open(shared, "wb") as lines:
        decoded = pool.map(lambda item: _decoded(spec, *item), objects)
        last_byte = b"\n"
        for index, ((url, _), data) in enumerate(zip(objects, decoded)):
            if not data:
                continue
            json_format = "newline_delimited"
            if shareable and _not_one_object_per_line(data):
                json_format = "unstructured"
            if shareable and json_format == "newline_delimited":
                if last_byte != b"\n":
                    lines.write(b"\n")  # the previous object's last line ends here
                start = lines.tell()
                lines.write(data)
                last_byte = data[-1:]
                files.append(_File(url=url, path=shared, span=(start, start + len(data))))
            else:
                path = folder / f"{index:06d}{suffix}"
                path.write_bytes(data)
                files.append(_File(url=url, path=path, json_format=json_format))
    in_shared = [f for f in files if f.path == shared]
    if len(in_shared) == 1:
        in_shared[0].span = None  # the file holds that one object exactly: it is its own
    elif not in_shared:
        shared.unlink()
    return files


def _decoded(spec: CopySpec, url: str, data: bytes) -> bytes:
    """An object's bytes decompressed, and with invalid UTF-8 replaced if ACCEPTINVCHARS."""
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
    if data and spec.accept_inv_chars and spec.format != "PARQUET":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data = data.decode("utf-8", errors="replace").replace("\ufffd", spec.accept_inv_chars[0]).encode()
    return data


def _one_file_per_object(fetched: Fetched) -> Fetched:
    """The same objects with a file each (copied out of the shared file), so that DuckDB's
    ``filename`` and its error messages name the object a row comes from."""
    if all(f.span is None for f in fetched.files):
        return fetched
    files = []
    for index, f in enumerate(fetched.files):
        if f.span is None:
            files.append(f)
            continue
        start, end = f.span
        with open(f.path, "rb") as shared:
            shared.seek(start)
            data = shared.read(end - start)
        alone = _File(url=f.url, path=f.path.with_name(f"{index:06d}-alone{f.path.suffix}"),
                      json_format=f.json_format)
        alone.path.write_bytes(data)
        files.append(alone)
    return Fetched(files=files, jsonpaths=fetched.jsonpaths, size=fetched.size)


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


# ======================================================================================
# Loading
# ======================================================================================


class CopyFailed(WarehouseError):
    """A COPY failed after its INSERT had started (the transaction is rolled back)."""


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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


def _copy_source(con, spec: CopySpec, fetched: Fetched, targets: list[Column]) -> tuple[str, list[str]]:
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


def _json_source(con, spec: CopySpec, fetched: Fetched, targets: list[Column],
                 filename: bool = True) -> tuple[str, list[str]]:
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
    options = ", filename=true" if filename else ""
    if spec.compression == "zstd":
        options += ", compression='zstd'"
    reads = [f"SELECT * FROM read_json({listed}, format='{json_format}', columns={columns}, "
             f"maximum_object_size=67108864{options})"
             for json_format, listed in _paths_by_format(fetched.files).items()]
    return "(" + " UNION ALL ".join(reads) + ") AS src", raw


def _paths_by_format(files: list[_File]) -> dict[str, str]:
    """The files as DuckDB lists of paths, by JSON format, in order (a shared file once)."""
    groups: dict[str, dict[str, None]] = {}
    for f in files:
        groups.setdefault(f.json_format, {})[str(f.path)] = None
    return {json_format: "[" + ", ".join(_sql_string(p) for p in paths) + "]"
            for json_format, paths in groups.items()}


def _json_keys(con, files: list[_File]) -> list[str]:
    keys: set[str] = set()
    for json_format, listed in _paths_by_format(files).items():
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


def _conversion(raw: str, column: Column, spec: CopySpec) -> _Conversion:
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

    def guarded(converted: str, test: str, reason: str, as_type: str) -> _Conversion:
        """``converted``: the value, NULL when the field is empty or does not convert;
        ``test``: true when it converts. A field that does not convert fails the COPY."""
        failing = f"CAST(error({_sql_string(reason + ', Value ')} || '''' || {raw} || '''') AS {as_type})"
        return _Conversion(f"coalesce({converted}, CASE WHEN {blank} IS NULL THEN NULL ELSE {failing} END)",
                           f"({blank} IS NULL OR ({test}))")

    if duck in ("INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT"):
        digits = "[-+]?[0-9]+(\\.0*)?" if spec.format == "JSON" else "[-+]?[0-9]+"  # JSON 6.0 is 6
        integral = f"regexp_full_match(trim({raw}), '{digits}')"
        kind = {"SMALLINT": "Short Integer", "BIGINT": "Long Integer"}.get(duck, "Integer")
        return guarded(f"CASE WHEN {integral} THEN TRY_CAST(trim({raw}) AS {duck}) END",
                       f"{integral} AND TRY_CAST(trim({raw}) AS {duck}) IS NOT NULL",
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
        converted = f"TRY_CAST({text} AS {column.type})"
        return guarded(converted, f"{converted} IS NOT NULL",
                       f"Invalid digit or numeric overflow (result precision), Type: {column.type}", column.type)
    if duck == "BOOLEAN":
        truth, falsity = "('t','true','1','y','yes','on')", "('f','false','0','n','no','off')"
        lowered = f"lower(trim({raw}))"
        return guarded(f"CASE WHEN {lowered} IN {truth} THEN true WHEN {lowered} IN {falsity} THEN false END",
                       f"{lowered} IN {truth} OR {lowered} IN {falsity}", "Invalid boolean value", "BOOLEAN")
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
        return guarded(parsed, f"{parsed} IS NOT NULL", f"Invalid timestamp format or value [{shown}]", target)
    if duck == "DATE":
        fmt = spec.date_format
        if fmt is not None and fmt.lower() == "auto":
            parsed = (f"coalesce(TRY_CAST(trim({raw}) AS DATE), CAST(try_strptime(trim({raw}), "
                      "['%Y/%m/%d', '%m/%d/%Y', '%Y%m%d', '%d-%b-%Y', '%b %d %Y']) AS DATE))")
        else:
            strp = _strptime_format(fmt) if fmt else "%Y-%m-%d"
            parsed = f"CAST(try_strptime(trim({raw}), {_sql_string(strp)}) AS DATE)"
        shown = (fmt or "YYYY-MM-DD").replace("'", "")
        return guarded(parsed, f"{parsed} IS NOT NULL", f"Invalid date format or value [{shown}]", "DATE")
    converted = f"TRY_CAST({blank} AS {column.type})"
    return guarded(converted, f"{converted} IS NOT NULL", f"Invalid value for type {column.type}", column.type)


def load(con, spec: CopySpec, fetched: Fetched) -> Result:
    """Load the fetched objects into the COPY's table on a DuckDB connection (in its
    transaction); returns the rows loaded. Raises WarehouseError, or CopyFailed once the
    INSERT has started (the transaction is then rolled back)."""
    import duckdb

    targets = _targets(con, spec)
    if not fetched.files:
        return Result(row_count=0)
    if spec.max_error or spec.no_load or all(f.span is None for f in fetched.files):
        return _load_one_file_per_object(con, spec, _one_file_per_object(fetched), targets)
    # JSON Lines in one shared file: the fast way, without naming each row's object.
    began = time.monotonic()
    try:
        source, raw = _json_source(con, spec, fetched, targets, filename=False)
        select = f"SELECT {', '.join(_conversion(r, t, spec).value for r, t in zip(raw, targets))} FROM {source}"
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
        _load_one_file_per_object(con, spec, _one_file_per_object(fetched), targets)
    except WarehouseError as again:
        return str(again)
    finally:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
    return _load_failed(spec, str(exc).split("\n")[0])  # not expected: the same rows loaded one by one


def _load_one_file_per_object(con, spec: CopySpec, fetched: Fetched, targets: list[Column]) -> Result:
    """Load with DuckDB's ``filename`` column at hand, to name the object of a bad row."""
    import duckdb

    try:
        source, raw = _copy_source(con, spec, fetched, targets)
    except duckdb.Error as exc:
        raise WarehouseError(_load_failed(spec, _file_problem(exc, fetched))) from None
    conversions = [_conversion(r, t, spec) for r, t in zip(raw, targets)]
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
        loaded = con.execute(_insert(spec, targets, select)).fetchone()[0]
        log.info("COPY %s: loaded %d rows from %d files in %.2f s", spec.target, loaded, len(fetched.files),
                 time.monotonic() - began)
    except duckdb.InterruptException:
        raise
    except duckdb.Error as exc:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")  # the transaction is lost; the diagnosis reads the files again
        problem = (_first_problem(con, fetched, source, raw, conversions, targets, spec)
                   or _file_problem(exc, fetched))
        raise CopyFailed(_load_failed(spec, problem)) from None
    return Result(row_count=int(loaded))


def _insert(spec: CopySpec, targets: list[Column], select: str) -> str:
    """INSERT INTO the COPY's table (its target columns) the rows of ``select``."""
    return f"INSERT INTO {_quoted_target(spec)} ({', '.join(_ident(t.name) for t in targets)}) {select}"


def _quoted_target(spec: CopySpec) -> str:
    if spec.schema:
        return f"{_ident(spec.schema)}.{_ident(spec.table)}"
    return _ident(spec.table)


def _load_failed(spec: CopySpec, detail: str) -> str:
    return (f"ERROR: Load into table '{spec.table}' failed. Check 'stl_load_errors' system table for details. "
            f"[local warehouse, no STL tables: {detail}]")


def _checks(conversion: _Conversion, column: Column, spec: CopySpec) -> list[tuple[str, str | None]]:
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


def _bad_conditions(raw: list[str], conversions: list[_Conversion], targets: list[Column],
                    spec: CopySpec) -> list[str]:
    return [condition for r, c, t in zip(raw, conversions, targets) if r != "NULL"
            for condition, _ in _checks(c, t, spec)]


def _first_problem(con, fetched: Fetched, source: str, raw: list[str], conversions: list[_Conversion],
                   targets: list[Column], spec: CopySpec) -> str | None:
    """The first field that does not load, described as a STL_LOAD_ERRORS row would be."""
    import duckdb

    urls = {str(f.path): f.url for f in fetched.files}
    for r, conversion, column in zip(raw, conversions, targets):
        if r == "NULL":
            continue
        type_name = redshift_type(column.type.upper())[0]
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

