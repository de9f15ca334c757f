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


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's, which reads the groups
def pytest_collection_modifyitems(config, items):
    """The end-to-end layer and the notebooks are slow as a whole.

    With several workers (``./course test`` starts one per core, pytest-xdist's
    ``--dist loadgroup``), each worker has its own embedded AWS, and the tests of a file stay
    together, in order, on one worker (a notebook's cells share a kernel; a module's tests
    may share what its fixtures deployed), except the student-edition runs, one notebook
    each, which spread over the workers."""
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb" or "pipelines" in path.relative_to(REPO).parts[:2]:
            item.add_marker(pytest.mark.slow)
        group = str(path.relative_to(REPO))
        if item.get_closest_marker("own_worker_group"):
            group += "::" + item.name
        item.add_marker(pytest.mark.xdist_group(group))


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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    """The student edition, checked inside nbval's run of the answer key: before a
    ``solution`` cell runs, run what the student edition has in its place (the lines outside
    the solution markers) and the checker call after it, in the same kernel, so in the state
    a learner reaches by running the cells above; expect no error and one "Not yet: ..." line.
    (tests/course/test_editions.py can also run each student notebook whole; see there.)"""
    cell = getattr(item, "cell", None)
    if cell is None or "solution" not in cell.get("metadata", {}).get("tags", []):
        return
    from ecomlib import edition, exercises

    stub, _ = edition.split_solution(cell.source)
    code = [c for c in item.parent.nb.cells if c.cell_type == "code"]
    call = code[item.cell_num + 1].source
    kernel = item.parent.kernel
    msg_id = kernel.execute_cell_input(f"{stub}\n{call}", allow_stdin=False)
    kernel.await_reply(msg_id, timeout=item.config.option.nbval_cell_timeout)
    text, errors = "", []
    while True:
        msg = kernel.get_message(stream="iopub", timeout=item.config.option.nbval_cell_timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status" and content["execution_state"] == "idle":
            break
        if kind == "stream":
            text += content["text"]
        elif kind == "error":
            errors.append(f"{content['ename']}: {content['evalue']}")
    printed = text.splitlines()
    if errors or len(printed) != 1 or not printed[0].startswith(exercises.NOT_YET):
        pytest.fail(f"student edition, unanswered:\n{stub}\n{call}\nprinted {printed}, errors {errors}",
                    pytrace=False)
