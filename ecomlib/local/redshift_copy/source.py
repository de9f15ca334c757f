"""COPY's objects read from moto's S3 (a prefix or a manifest), decompressed into local files.

AWS: COPY loads every object whose key starts with the FROM prefix (an empty match is
an error), or with MANIFEST the objects the manifest's ``entries`` list (a missing
``mandatory`` one is an error); GZIP, BZIP2 and ZSTD objects are decompressed;
ACCEPTINVCHARS replaces invalid UTF-8.

Here: :func:`fetch` reads the objects from moto in-process (under ``MOTO_LOCK``), then
decompresses them in parallel and writes them to memory-backed temporary files
(:func:`workdir`), JSON Lines objects back to back in one shared file (DuckDB reads one
big file much faster than many small ones); :func:`one_file_per_object` copies them out
again when a failed load must name the object of a bad row.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

from ecomlib.local.redshift_copy.files import CopyFile, Fetched
from ecomlib.local.redshift_copy.json_reader import not_one_object_per_line, parse_jsonpaths
from ecomlib.local.redshift_copy.options import CopySpec
from ecomlib.local.redshift_sql import WarehouseError

log = logging.getLogger("ecomlib.warehouse")

from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT_ID  # moto's account, whose S3 buckets COPY reads  # noqa: E402


# ======================================================================================
# Where the objects go
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


# ======================================================================================
# Reading moto's S3
# ======================================================================================


def _split_url(url: str) -> tuple[str, str]:
    rest = url[len("s3://"):]
    bucket, _, key = rest.partition("/")
    return bucket, key


def _s3_backend():
    """moto 5.2 keeps S3 per account and partition ("aws"), not per region."""
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT_ID]["aws"]


def _bucket(backend, bucket_name: str, url: str):
    bucket = backend.buckets.get(bucket_name)
    if bucket is None:
        raise WarehouseError(f"ERROR: S3ServiceException:The specified bucket does not exist,Status 404,"
                             f"Error NoSuchBucket,Bucket {bucket_name} ({url})")
    return bucket


def _read_object(backend, url: str, missing_ok: bool = False) -> bytes | None:
    """One object's bytes (caller holds MOTO_LOCK)."""
    from moto.s3.models import FakeKey

    bucket_name, key = _split_url(url)
    found = _bucket(backend, bucket_name, url).keys.get(key)
    if not isinstance(found, FakeKey):
        if missing_ok:
            return None
        raise WarehouseError(f"ERROR: S3ServiceException:The specified key does not exist.,Status 404,"
                             f"Error NoSuchKey ({url})")
    return found.value


def _read_manifest(backend, source: str) -> list[tuple[str, bytes]]:
    """The objects a manifest lists (a missing optional one is skipped)."""
    try:
        entries = json.loads(_read_object(backend, source))["entries"]
    except (ValueError, KeyError, TypeError):
        raise WarehouseError(f"ERROR: Manifest file is not in correct json format ({source})") from None
    objects = []
    for entry in entries:
        url = entry.get("url", "") if isinstance(entry, dict) else ""
        if not url.startswith("s3://"):
            raise WarehouseError(f"ERROR: Invalid manifest entry url '{url}' ({source})")
        mandatory = entry.get("mandatory", False)
        data = _read_object(backend, url, missing_ok=not mandatory)
        if data is None and mandatory:
            raise WarehouseError(f"ERROR: Manifest file entry {url} is mandatory but the object does not exist")
        if data is not None:
            objects.append((url, data))
    return objects


def _read_prefix(backend, source: str) -> list[tuple[str, bytes]]:
    """The objects whose keys start with the prefix, in key order."""
    from moto.s3.models import FakeKey

    bucket_name, prefix = _split_url(source)
    bucket = _bucket(backend, bucket_name, source)
    names = sorted(k for k in dict.keys(bucket.keys) if k.startswith(prefix))
    objects = []
    for name in names:
        found = bucket.keys.get(name)
        if isinstance(found, FakeKey):
            objects.append((f"s3://{bucket_name}/{name}", found.value))
    if not objects:
        raise WarehouseError(f"ERROR: The specified S3 prefix '{prefix}' does not exist ({source})")
    return objects


def fetch(spec: CopySpec, folder: Path) -> Fetched:
    """Read the COPY's objects from moto (under MOTO_LOCK), then write them to local files
    in ``folder`` (the caller should not hold MOTO_LOCK: writing takes a while)."""
    from ecomlib.local.component import MOTO_LOCK

    began = time.monotonic()
    jsonpaths_bytes = None
    with MOTO_LOCK:
        backend = _s3_backend()
        if spec.format == "JSON" and spec.json_option.lower().startswith("s3://"):
            jsonpaths_bytes = _read_object(backend, spec.json_option)
        objects = (_read_manifest if spec.manifest else _read_prefix)(backend, spec.source)
    read = time.monotonic()
    jsonpaths = parse_jsonpaths(jsonpaths_bytes, spec.json_option) if jsonpaths_bytes is not None else None
    files = _write_files(spec, objects, folder)
    fetched = Fetched(files=files, jsonpaths=jsonpaths, size=sum(len(data) for _, data in objects))
    log.info("COPY %s: read %d objects (%.1f MB) from moto in %.2f s, wrote them in %.2f s", spec.target,
             len(objects), fetched.size / 1e6, read - began, time.monotonic() - read)
    return fetched


# ======================================================================================
# Writing local files
# ======================================================================================


class _SharedFile:
    """The file JSON Lines objects are written into back to back."""

    def __init__(self, path: Path, out):
        self.path, self.out, self.last_byte = path, out, b"\n"

    def append(self, url: str, data: bytes) -> CopyFile:
        if self.last_byte != b"\n":
            self.out.write(b"\n")  # the previous object's last line ends here
        start = self.out.tell()
        self.out.write(data)
        self.last_byte = data[-1:]
        return CopyFile(url=url, path=self.path, span=(start, start + len(data)))


def _suffix(spec: CopySpec) -> str:
    suffix = {"JSON": ".json", "CSV": ".csv", "PARQUET": ".parquet"}.get(spec.format, ".txt")
    return suffix + ".zst" if spec.compression == "zstd" else suffix


def _write_files(spec: CopySpec, objects: list[tuple[str, bytes]], folder: Path) -> list[CopyFile]:
    """Decompress the objects (in parallel: zlib and bz2 free the GIL) and write them to local
    files, in order. JSON Lines objects go back to back into one shared file: DuckDB loads
    one big file much faster than many small ones. Any other object gets a file of its own.
    """
    suffix = _suffix(spec)
    shareable = spec.format == "JSON" and spec.compression != "zstd"
    shared_path = folder / f"lines{suffix}"
    files: list[CopyFile] = []
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(objects)))) as pool, open(shared_path, "wb") as out:
        shared = _SharedFile(shared_path, out)
        decoded = pool.map(lambda item: _decoded(spec, *item), objects)
        for index, ((url, _), data) in enumerate(zip(objects, decoded)):
            if not data:
                continue
            json_format = "unstructured" if shareable and not_one_object_per_line(data) else "newline_delimited"
            if shareable and json_format == "newline_delimited":
                files.append(shared.append(url, data))
            else:
                path = folder / f"{index:06d}{suffix}"
                path.write_bytes(data)
                files.append(CopyFile(url=url, path=path, json_format=json_format))
    in_shared = [f for f in files if f.path == shared_path]
    if len(in_shared) == 1:
        in_shared[0].span = None  # the file holds that one object exactly: it is its own
    elif not in_shared:
        shared_path.unlink()
    return files


def _decompressed(spec: CopySpec, url: str, data: bytes) -> bytes:
    if spec.compression == "gzip":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise WarehouseError(f"ERROR: gzip: {url}: {exc} (is the object gzip-compressed?)") from None
    if spec.compression == "bzip2":
        try:
            return bz2.decompress(data)
        except (OSError, ValueError) as exc:
            raise WarehouseError(f"ERROR: bzip2: {url}: {exc}") from None
    return data


def _decoded(spec: CopySpec, url: str, data: bytes) -> bytes:
    """An object's bytes decompressed, and with invalid UTF-8 replaced if ACCEPTINVCHARS."""
    data = _decompressed(spec, url, data)
    if data and spec.accept_inv_chars and spec.format != "PARQUET":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data = data.decode("utf-8", errors="replace").replace("\ufffd", spec.accept_inv_chars[0]).encode()
    return data


def one_file_per_object(fetched: Fetched) -> Fetched:
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
        alone = CopyFile(url=f.url, path=f.path.with_name(f"{index:06d}-alone{f.path.suffix}"),
                         json_format=f.json_format)
        alone.path.write_bytes(data)
        files.append(alone)
    return Fetched(files=files, jsonpaths=fetched.jsonpaths, size=fetched.size)
