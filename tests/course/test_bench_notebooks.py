"""``python -m ecomlib bench --notebooks``: the learner's path, timed notebook by notebook
and cell by cell."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ecomlib import bench, edition


def test_notebooks_are_chosen_by_number_or_name():
    every = sorted(p.name for p in edition.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert [p.name for p in bench._select_notebooks(edition.NOTEBOOKS, None)] == every
    chosen = bench._select_notebooks(edition.NOTEBOOKS, ["01", every[0]])
    assert [p.name for p in chosen] == [every[0], "01_know_your_data.ipynb"]
    with pytest.raises(ValueError, match="no notebook named 99"):
        bench._select_notebooks(edition.NOTEBOOKS, ["99"])


def test_cell_seconds_from_the_recorded_timestamps():
    notebook = {"cells": [
        {"cell_type": "markdown", "source": "# title", "metadata": {}},
        {"cell_type": "code", "source": ["\n", "import time  # first\n", "time.sleep(2)\n"], "metadata": {
            "execution": {"iopub.status.busy": "2024-01-01T10:00:00.500000Z",
                          "iopub.execute_input": "2024-01-01T10:00:00.600000Z",
                          "shell.execute_reply": "2024-01-01T10:00:03Z"}}},
        {"cell_type": "code", "source": "x = 1", "metadata": {}},  # not run: no timing
    ]}
    assert bench._cell_seconds(notebook, "nb.ipynb") == [
        {"notebook": "nb.ipynb", "cell": 1, "first_line": "import time  # first", "seconds": 2.5, "bar": False}]


@pytest.mark.parametrize("text, bar", [
    ("send: 100%|##########| 20000/20000 [00:07<00:00, 2562.32row/s, accepted=20,000]\n", True),
    (["drain: 3/3 steps [00:14]      \n"], True),
    ("files loaded: 100%|####| 13/13 [00:36<00:00,  2.80s/file]\n", True),
    ("20000 rows in 3/4 of the time [see below]\n", False),
    ("{'dynamodb': {'in': 20000}}\n", False),
])
def test_a_progress_bar_is_found_in_a_cell_s_output(text, bar):
    cell = {"outputs": [{"output_type": "stream", "name": "stdout", "text": text},
                        {"output_type": "execute_result", "data": {"text/plain": "1/2 [00:01"}}]}
    assert bench._shows_progress(cell) is bar


@pytest.mark.slow
def test_bench_notebooks_times_one_notebook_cell_by_cell():
    done = subprocess.run([sys.executable, "-m", "ecomlib", "bench", "--notebooks", "01"], capture_output=True,
                          text=True, timeout=900, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["dataset"] == "generated"
    [run] = result["notebooks"]
    source = json.loads((edition.NOTEBOOKS / "01_know_your_data.ipynb").read_text(encoding="utf-8"))
    code = {i: c for i, c in enumerate(source["cells"]) if c["cell_type"] == "code"}
    assert run["notebook"] == "01_know_your_data.ipynb" and run["error"] is None
    assert run["cells"] == len(code) and run["seconds"] > 0
    slowest = result["slowest_cells"]
    assert 0 < len(slowest) <= 10 and len(slowest) == min(10, len(code))
    assert [c["seconds"] for c in slowest] == sorted((c["seconds"] for c in slowest), reverse=True)
    assert sum(c["seconds"] for c in slowest) <= run["seconds"]
    for cell in slowest:
        text = "".join(code[cell["cell"]]["source"])
        assert cell["first_line"] == next(line.strip() for line in text.splitlines() if line.strip())[:80]
    assert "01_know_your_data.ipynb" in done.stderr and "slowest cells" in done.stderr
    assert result["silent_cells"] == [c for c in result["silent_cells"] if c["seconds"] > 10 and not c["bar"]]
    assert "without a progress bar" in done.stderr
