"""Test settings (for tests/ and notebooks/): a private embedded AWS for this run, stopped at the end.

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
