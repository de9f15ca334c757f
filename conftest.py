"""Test settings (for tests/ and notebooks/): a private embedded AWS for this run, stopped at the end.

The tests come in layers, one folder each:

=================  =======================================================================
``tests/unit``     no embedded AWS: pure functions, handlers against in-process moto, data
``tests/emulator`` the embedded AWS against AWS's behaviour, service by service
``tests/pipelines`` end to end: deploy, send, drain, count (every test here is ``slow``)
``tests/course``   the project's files; the notebooks themselves run under ``--nbval``
=================  =======================================================================

``slow`` marks every test that takes more than a few seconds (the pipelines layer and the
notebooks as a whole, elsewhere test by test), so ``./course test -m "not slow"`` is the
quick loop; ``./course test`` runs everything.

The settings are put in os.environ at import time, before any test or notebook kernel
starts, so nbval's kernels inherit them and share this run's embedded AWS.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
REAL_DATASET = REPO.parent / "shared" / "data" / "online_retail" / "online_retail_data.csv.xz"

# The handlers import the ``shared`` package from lambda_src/, as they do at the root of
# their deployment package.
sys.path.insert(0, str(REPO / "lambda_src"))

_home = tempfile.mkdtemp(prefix="ecomlib-test-")
os.environ["ECOM_HOME"] = _home
os.environ["ECOM_TARGET"] = "local"
os.environ["ECOM_PREFIX"] = "ecom"
# Committed notebook outputs come from the generated default dataset: never a real file.
for name in ("ECOM_DATASET", "ECOM_ENDPOINT_URL", "ECOM_LOCAL_PORT", "ECOM_REGION"):
    os.environ.pop(name, None)
os.environ.setdefault("MPLBACKEND", "Agg")


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# A run stopped with SIGTERM (a timeout, CI) unwinds like Ctrl-C, so the hook below
# still stops the embedded AWS instead of leaving it running.
signal.signal(signal.SIGTERM, _interrupt)


def pytest_collection_modifyitems(config, items):
    """The end-to-end layer and the notebooks are slow as a whole."""
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb" or "pipelines" in path.relative_to(REPO).parts[:2]:
            item.add_marker(pytest.mark.slow)


def pytest_sessionfinish(session, exitstatus):
    """Whatever started the embedded AWS during the run (a test or a notebook kernel),
    stop it afterwards. (A hook, not a fixture: notebook cells do not use fixtures.)"""
    from ecomlib.local import server

    server.stop()


@pytest.fixture(scope="session")
def real_dataset() -> Path:
    """The real Online Retail file from ../shared (tests using it skip without it)."""
    if not REAL_DATASET.exists():
        pytest.skip(f"real dataset not found at {REAL_DATASET}")
    return REAL_DATASET
