"""Account for every row: where each accepted row is stored, or why it is not.

``reconcile()`` compares the rows in the stream with the rows each storing pipeline of
``ecomlib.registry`` holds (the raw zone in S3, the serving tables in DynamoDB, the
warehouse in Redshift), counted by the pipeline's declared function: each should hold
every stream row exactly once. Rows
that a pipeline gave up on are described in its dead-letter queue;
``dead_lettered_rows()`` turns those descriptions back into the rows themselves.
"""

from __future__ import annotations

from collections import Counter

from ecomlib import registry
from ecomlib.config import settings
from ecomlib.pipelines import ingest
from ecomlib.pipelines.stores import (dead_lettered_rows, dead_letters, exists,  # noqa: F401
                                     stored_ids, stream_arrivals)


def _compare(stream_ids: Counter, stored: Counter, dead: list[dict]) -> dict:
    """Rows (by RowId) in the stream vs in a store: each should be stored, or dead-lettered."""
    dead_ids = set(r["RowId"] for r in dead if r.get("RowId") is not None)
    return {
        "in": len(stream_ids),
        "stored": len(set(stream_ids) & set(stored)),
        "rejected": len(dead_ids - set(stored)),
        "missing": sorted(set(stream_ids) - set(stored) - dead_ids)[:20],
        "duplicated": sorted(i for i, n in stored.items() if n > stream_ids.get(i, 0) > 0)[:20],
        "unexpected": sorted(set(stored) - set(stream_ids))[:20],
    }


def reconcile(stages: tuple[str, ...] | None = None) -> dict:
    """Per stage (every pipeline that stores the stream's rows, see ``registry.stores()``):
    distinct rows in the stream, how many are stored, how many were given up on
    (dead-lettered), and examples of rows missing, stored more often than sent, or stored
    without being in the stream. Empty lists: every row is accounted for once.
    Stages whose store does not exist (pipeline not deployed) are left out."""
    stream_ids = ingest.row_counts()  # read on from where drain() stopped
    result = {"stream": {"rows": sum(stream_ids.values()), "distinct_row_ids": len(stream_ids),
                         "unreadable": ingest.STREAM_LOG.unreadable}}
    for stage in stages or registry.stores():
        pipeline = registry.get(stage)
        if not exists(pipeline.stores):
            continue
        queue = pipeline.dead_letter_queue
        dead = dead_lettered_rows(registry.name(queue, settings().prefix)) if queue else []
        result[stage] = _compare(stream_ids, stored_ids(stage), dead)
    return result


