"""The student edition and the answer key, from the one set of committed notebooks.

The answer key is notebooks/ itself: nbval runs it, and each checker's "✓" line is a
committed output there, so a solution that stops passing fails CI. Here: the markers, the
student edition's shape, the friendly checkers, and (slow) every student notebook runs to
the end with one "Not yet" line per exercise.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ecomlib import edition, exercises
from ecomlib.__main__ import main

NOTEBOOKS = sorted(edition.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    return "".join(cell["source"])


def stdout_lines(cell: dict) -> list[str]:
    return [line for out in cell.get("outputs", []) if out.get("name") == "stdout"
            for line in "".join(out["text"]).splitlines()]


# ---- markers ------------------------------------------------------------------------------

def test_split_keeps_the_lines_outside_the_markers():
    stub, solution = edition.split_solution(
        'best_day = None  # e.g. "Monday"\n### BEGIN SOLUTION\nbest_day = "Thursday"\n### END SOLUTION')
    assert stub == 'best_day = None  # e.g. "Monday"'
    assert solution == 'best_day = "Thursday"'


def test_split_keeps_indented_context_and_joins_several_blocks():
    stub, solution = edition.split_solution(
        "client.create(\n    Name='x',\n    ### BEGIN SOLUTION\n    Size=2,\n    ### END SOLUTION\n"
        "    # Size=...  your code here\n)\n### BEGIN SOLUTION\nwait()\n### END SOLUTION\n")
    assert stub == "client.create(\n    Name='x',\n    # Size=...  your code here\n)"
    assert solution == "    Size=2,\n# ...\nwait()"


def test_an_all_solution_cell_becomes_your_code_here():
    assert edition.split_solution("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")[0] == "# your code here"


@pytest.mark.parametrize("text", ["x = 1", "### BEGIN SOLUTION\nx = 1",
                                  "x = 1\n### END SOLUTION",
                                  "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"])
def test_missing_or_unbalanced_markers_are_refused(text):
    with pytest.raises(edition.MarkerError):
        edition.split_solution(text)


def test_markers_outside_a_solution_cell_are_refused():
    """They would hand the solution to the learner."""
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": 1,
            "source": "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"}
    with pytest.raises(edition.MarkerError, match="not tagged 'solution'"):
        edition.student_notebook({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


# ---- the committed notebooks (the answer key) -------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_answer_key_shows_each_checker_passing(path):
    """Every exercise has a solution cell with markers and a decorated checker, and the
    committed outputs hold one "✓" line per exercise and no "Not yet" (nbval compares them)."""
    notebook = load(path)
    solutions = [c for c in notebook["cells"] if edition.SOLUTION_TAG in c["metadata"].get("tags", [])]
    assert solutions, f"{path.name} has no exercise"
    for cell in solutions:
        edition.split_solution(source(cell))
    code = [source(c) for c in notebook["cells"] if c["cell_type"] == "code"]
    checkers = sum(len(re.findall(r"^@checker\ndef check_\w+", text, re.M)) for text in code)
    assert checkers == len(solutions)
    printed = [line for c in notebook["cells"] for line in stdout_lines(c)]
    assert sum(line.startswith("✓") for line in printed) >= len(solutions)
    assert not [line for line in printed if line.startswith(exercises.NOT_YET)]


# ---- the student edition -----------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_student_edition_has_stubs_no_outputs_and_hidden_solutions(path):
    answer_key = load(path)
    student = edition.student_notebook(answer_key, name=path.name)
    for cell in student["cells"]:
        assert edition.BEGIN not in source(cell) or cell["cell_type"] == "markdown"
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
            assert edition.SOLUTION_TAG not in cell["metadata"].get("tags", [])
        assert "execution" not in cell["metadata"]
    key_cells = iter(answer_key["cells"])
    for index, cell in enumerate(student["cells"]):
        if "solution-hidden" in cell["metadata"].get("tags", []):
            continue
        original = next(key_cells)
        assert cell.get("id") == original.get("id")  # same cells, same order
        if edition.EXERCISE_TAG not in cell["metadata"].get("tags", []):
            assert source(cell) == source(original)
            continue
        stub, solution = edition.split_solution(source(original))
        assert source(cell) == stub
        compile(stub, f"{path.name} cell {index}", "exec")  # Run All can run it
        solved = {line.strip() for line in solution.splitlines()} - {line.strip() for line in stub.splitlines()}
        for line in {line for line in solved if len(line) > 8}:
            assert line not in source(cell)
        hidden = student["cells"][index + 1]
        assert hidden["cell_type"] == "markdown" and solution in source(hidden)
        assert source(hidden).startswith("<details>")  # collapsed until the learner opens it
    assert next(key_cells, None) is None
    without = edition.student_notebook(answer_key, solutions=False, name=path.name)
    assert len(without["cells"]) == len(answer_key["cells"])


def test_student_copies_never_overwrite_a_learners_file(tmp_path, capsys):
    mine = tmp_path / NOTEBOOKS[1].name
    mine.write_text("my answers")
    assert main(["edition", "student", str(tmp_path)]) == 0
    assert mine.read_text() == "my answers"
    assert f"kept     {mine}" in capsys.readouterr().out
    written = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert written == [p.name for p in NOTEBOOKS]
    assert edition.write_student(tmp_path, overwrite=True)[mine.name] == "written"
    assert load(mine)["cells"]


def test_the_answer_key_command_copies_the_committed_notebooks(tmp_path):
    assert main(["edition", "answers", str(tmp_path)]) == 0
    for path in NOTEBOOKS:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes()


# ---- friendly checkers --------------------------------------------------------------------

# Defined as a notebook cell defines it (pytest would rewrite the asserts of this module).
CHECKER_CELL = '''
@checker
def check_even(number) -> None:
    assert number is not None, "set number to an even number"
    assert number % 2 == 0, f"{number} is odd:\\nadd one"
    print(f"✓ {number} is even.")
'''
namespace = {"checker": exercises.checker}
exec(compile(CHECKER_CELL, "<cell>", "exec"), namespace)
check_even = namespace["check_even"]


def test_a_right_answer_prints_the_tick_line(capsys):
    assert check_even(4) is None
    assert capsys.readouterr().out == "✓ 4 is even.\n"


@pytest.mark.parametrize("answer, line", [
    (None, "Not yet: set number to an even number"),
    (3, "Not yet: 3 is odd: add one"),  # one line, however the message was written
    ("x", "Not yet: the check stopped at TypeError: not all arguments converted during string formatting"),
])
def test_a_wrong_or_missing_answer_prints_one_not_yet_line(capsys, answer, line):
    check_even(answer)
    captured = capsys.readouterr()
    assert captured.out == line + "\n" and captured.err == ""


def test_names_not_defined_and_aws_errors_become_one_line(capsys):
    with exercises.check():
        undefined_answer  # noqa: B018, F821 - what an unrun answer cell leaves
    with exercises.check():
        raise ClientError({"Error": {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist"}},
                          "ListObjectsV2")
    with exercises.check():
        raise AssertionError("Not yet: said twice")
    assert capsys.readouterr().out.splitlines() == [
        "Not yet: name 'undefined_answer' is not defined: run your answer cell (and the cells above it) first",
        "Not yet: AWS says NoSuchBucket: The specified bucket does not exist",
        "Not yet: said twice",
    ]


def test_an_interrupt_still_stops_the_checker():
    with pytest.raises(KeyboardInterrupt):
        with exercises.check():
            raise KeyboardInterrupt


# ---- the student edition runs to the end -------------------------------------------------

@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    edition.write_student(out)
    return out


@pytest.mark.slow
@pytest.mark.own_worker_group  # each notebook's run may go to another worker
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_student_edition_runs_to_the_end_with_one_not_yet_per_exercise(student_dir, path):
    """Run All on a fresh student copy (this run's embedded AWS, as nbval's kernels): no
    error anywhere (the cells after an exercise cope with its answer missing), and each
    exercise's checker prints exactly one line, "Not yet: ..."."""
    notebook = load(student_dir / path.name)
    done = edition.execute(notebook, student_dir)  # raises CellExecutionError on any error
    calls = [c for c in done["cells"] if c["cell_type"] == "code"
             and re.fullmatch(r"check_\w+\(.*\)", source(c).strip(), re.S)]
    assert len(calls) == edition.exercise_count(load(path))
    for cell in calls:
        lines = stdout_lines(cell)
        assert len(lines) == 1 and lines[0].startswith(exercises.NOT_YET), (source(cell), lines)


# ---- refreshing committed outputs ---------------------------------------------------------

def test_refresh_runs_a_notebook_in_place_as_nbval_does(tmp_path, monkeypatch):
    """A fresh kernel of this environment, in the notebook's folder, with the test settings
    and its own embedded AWS home; counts 1, 2, ...; this process's settings are restored."""
    monkeypatch.setenv("ECOM_DATASET", "/somewhere/real.csv")
    monkeypatch.setenv("SOMETHING_ELSE", "kept")  # PATH, PYTHONPATH, ...: as they are
    before = dict(os.environ)
    cells = [{"cell_type": "code", "execution_count": 7, "id": f"c{n}", "metadata": {}, "outputs": [],
              "source": text} for n, text in enumerate([
                  "import os, pathlib",
                  "print(os.environ['ECOM_TARGET'], os.environ['ECOM_PREFIX'], 'ECOM_DATASET' in os.environ, os.environ['SOMETHING_ELSE'])",
                  "print(pathlib.Path.cwd().name, os.environ['ECOM_HOME'] != %r)" % before["ECOM_HOME"],
                  "import ipywidgets\nipywidgets.VBox([ipywidgets.IntSlider(value=7, description='n')])"])]
    path = tmp_path / "nb" / "01_x.ipynb"
    path.parent.mkdir()
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    edition.refresh([path], log=lambda message: None)
    done = load(path)
    assert [c["execution_count"] for c in done["cells"]] == [1, 2, 3, 4]
    assert [stdout_lines(c) for c in done["cells"]] == [[], ["local ecom False kept"], ["nb True"], []]
    assert dict(os.environ) == before
    # the widget's state is saved with the notebook: its view renders without a kernel
    assert_widgets_render_without_a_kernel(done, path.name)
    state = done["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert [m["state"]["value"] for m in state.values() if m["model_name"] == "IntSliderModel"] == [7]


WIDGET_VIEW, WIDGET_STATE = "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json"


def assert_widgets_render_without_a_kernel(notebook: dict, name: str) -> None:
    """Every widget shown in an output has its model, and every model it refers to
    (children, layout, style: ``IPY_MODEL_<id>``), in the notebook's saved widget state."""
    views = [out["data"][WIDGET_VIEW]["model_id"] for cell in notebook["cells"]
             for out in cell.get("outputs", []) if WIDGET_VIEW in out.get("data", {})]
    assert views, f"{name}: no widget in the outputs"
    state = notebook["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    wanted, seen = list(views), set()
    while wanted:
        model = wanted.pop()
        if model in seen:
            continue
        seen.add(model)
        assert model in state, f"{name}: widget model {model} is not in the saved widget state"
        wanted += re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(state[model]["state"]))


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] in ("05", "07")], ids=lambda p: p.name[:2])
def test_the_widgets_of_05_and_07_render_in_static_views(path):
    """05's lookup box and 07's dashboard (refresh saves their state) show in static views
    (nbviewer, an HTML export by nbconvert) as they were at the end of the committed run."""
    notebook = load(path)
    assert_widgets_render_without_a_kernel(notebook, path.name)
    models = notebook["metadata"]["widgets"][WIDGET_STATE]["state"].values()
    kinds = {m["model_name"] for m in models}
    assert ({"TextModel", "ButtonModel", "OutputModel"} if path.name.startswith("05")
            else {"SelectionRangeSliderModel", "DropdownModel", "OutputModel"}) <= kinds
    if path.name.startswith("07"):  # the dashboard's figure, drawn by the committed run
        outputs = [o for m in models if m["model_name"] == "OutputModel" for o in m["state"]["outputs"]]
        assert any("image/png" in o.get("data", {}) for o in outputs)
