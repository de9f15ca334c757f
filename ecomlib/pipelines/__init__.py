"""The course's pipelines, one module each, in the order the notebooks build them.

Each pipeline module offers ``deploy()`` (create what it needs, idempotently), a way to
run data through it, and ``teardown()``. ``STAGES`` lists what ``python -m ecomlib demo``
runs, in order: each stage takes the dataset and returns ``{"in", "stored", "rejected"}``.
"""

from __future__ import annotations

from typing import Callable

import pandas as pd

Stage = Callable[[pd.DataFrame], dict]

from ecomlib.pipelines import ingest  # noqa: E402

# name -> stage function, in the order the data flows.
STAGES: dict[str, Stage] = {
    "ingest": ingest.stage,
}
