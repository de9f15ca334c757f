"""What a COPY has read from S3: its objects as local files, and its JSONPaths.

Below the readers (``source`` fills it, ``json_reader``, ``csv_reader`` and
``parquet_reader`` read it), so that none of them imports another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class CopyFile:
    """One S3 object, decompressed into a local file of its own, or into bytes
    ``span`` of a file shared with the COPY's other JSON Lines objects."""

    url: str  # s3://bucket/key it came from
    path: Path  # local copy (decompressed)
    json_format: str = "newline_delimited"  # or "unstructured" (objects not one per line)
    span: tuple[int, int] | None = None  # (start, end) in a shared file


@dataclass
class Fetched:
    """A COPY's objects in local files, and its JSONPaths (one list of steps per column)."""

    files: list[CopyFile]
    jsonpaths: list[list[str | int]] | None = None
    size: int = 0  # bytes read from S3
