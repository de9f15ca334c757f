"""The student edition and the answer key, both from the committed notebooks.

The notebooks in ``notebooks/`` are the one source: the answer key, with every solution in
place and executed outputs that nbval checks. An exercise's answer cell is tagged
``solution`` and marks the solution nbgrader-style::

    best_day = None  # e.g. "Monday"                       <- the learner's starting point
    ### BEGIN SOLUTION
    by_day = sales.groupby(sales["InvoiceDate"].dt.day_name())["Revenue"].sum()
    best_day = by_day.idxmax()
    ### END SOLUTION

The student edition keeps the lines outside the markers (an all-solution cell becomes
``# your code here``), clears every output, and puts the solution in a collapsed
"Show a solution" markdown cell right below: the learner sees it only by opening it, and
Run All never executes it. The checker cell after it then says "Not yet: ..." in one
line (see ``ecomlib.exercises``) until the learner's answer is right.

Commands (also ``python -m ecomlib.edition ...``)::

    python -m ecomlib edition student [DIR]     # student copies into DIR (default student/); existing files are kept
    python -m ecomlib edition answers DIR       # the answer key into DIR
    python -m ecomlib edition refresh NB...     # developers: re-execute notebooks in place, as nbval runs them
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
SOLUTION_TAG, EXERCISE_TAG = "solution", "exercise"
EMPTY_STUB = "# your code here"


class MarkerError(ValueError):
    """A solution cell without its markers, or markers outside a solution cell."""


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def split_solution(source: str) -> tuple[str, str]:
    """(the stub: the lines outside the markers, the solution: the lines inside them)."""
    stub: list[str] = []
    blocks: list[list[str]] = []
    inside = False
    for line in source.splitlines():
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise MarkerError(f"{BEGIN} inside a solution")
            inside = True
            blocks.append([])
        elif marker == END:
            if not inside:
                raise MarkerError(f"{END} without {BEGIN}")
            inside = False
        elif inside:
            blocks[-1].append(line)
        else:
            stub.append(line)
    if inside:
        raise MarkerError(f"{BEGIN} without {END}")
    if not blocks:
        raise MarkerError(f"a {SOLUTION_TAG!r} cell needs {BEGIN} ... {END} around its solution")
    stub_text = "\n".join(stub).strip("\n") or EMPTY_STUB
    solution = "\n# ...\n".join("\n".join(block).strip("\n") for block in blocks)
    return stub_text, solution


def solution_cell(solution: str, cell_id: str | None) -> dict:
    """The collapsed markdown cell that shows a solution only when opened."""
    cell = {
        "cell_type": "markdown",
        "metadata": {"tags": ["solution-hidden"]},
        "source": ("<details><summary>💡 Stuck? Click to show a solution</summary>\n\n"
                   f"```python\n{solution}\n```\n\n</details>"),
    }
    if cell_id is not None:
        cell["id"] = f"{cell_id}-sol"[:64]
    return cell


def _check_markers(cell: dict, where: str) -> None:
    if cell.get("cell_type") == "code" and SOLUTION_TAG not in _tags(cell) and (
            BEGIN in _source(cell) or END in _source(cell)):
        raise MarkerError(f"{where}: solution markers in a cell not tagged {SOLUTION_TAG!r}")


def student_notebook(notebook: dict, *, solutions: bool = True, name: str = "notebook") -> dict:
    """The student edition of one notebook (a JSON dict in nbformat 4): stubs, no outputs."""
    result = copy.deepcopy(notebook)
    cells: list[dict] = []
    for index, cell in enumerate(result["cells"]):
        where = f"{name}, cell {index}"
        _check_markers(cell, where)
        cell.get("metadata", {}).pop("execution", None)
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        if SOLUTION_TAG not in _tags(cell):
            cells.append(cell)
            continue
        if cell.get("cell_type") != "code":
            raise MarkerError(f"{where}: only code cells can be tagged {SOLUTION_TAG!r}")
        try:
            stub, solution = split_solution(_source(cell))
        except MarkerError as error:
            raise MarkerError(f"{where}: {error}") from None
        cell["source"] = stub
        cell["metadata"]["tags"] = [EXERCISE_TAG if t == SOLUTION_TAG else t for t in _tags(cell)]
        cells.append(cell)
        if solutions:
            cells.append(solution_cell(solution, cell.get("id")))
    result["cells"] = cells
    return result


def exercise_count(notebook: dict) -> int:
    """How many exercises (solution cells) a notebook has."""
    return sum(SOLUTION_TAG in _tags(cell) for cell in notebook["cells"])


def _notebooks(source: Path) -> list[Path]:
    return sorted(source.glob("[0-9][0-9]_*.ipynb"))


def _write_json(path: Path, notebook: dict) -> None:
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_student(out: Path | str, *, source: Path | str = NOTEBOOKS, overwrite: bool = False,
                  solutions: bool = True) -> dict[str, str]:
    """Write the student edition of every notebook into ``out``; {file name: "written" or "kept"}.

    A file that exists is the learner's work: it is kept unless ``overwrite``."""
    out, done = Path(out), {}
    out.mkdir(parents=True, exist_ok=True)
    for path in _notebooks(Path(source)):
        target = out / path.name
        if target.exists() and not overwrite:
            done[path.name] = "kept"
            continue
        notebook = json.loads(path.read_text(encoding="utf-8"))
        _write_json(target, student_notebook(notebook, solutions=solutions, name=path.name))
        done[path.name] = "written"
    return done


def write_answer_key(out: Path | str, *, source: Path | str = NOTEBOOKS) -> dict[str, str]:
    """Write the answer key (the notebooks as committed: solutions and outputs) into ``out``."""
    out, done = Path(out), {}
    out.mkdir(parents=True, exist_ok=True)
    for path in _notebooks(Path(source)):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for index, cell in enumerate(notebook["cells"]):  # the same checks as the student edition
            _check_markers(cell, f"{path.name}, cell {index}")
            if SOLUTION_TAG in _tags(cell):
                split_solution(_source(cell))
        (out / path.name).write_bytes(path.read_bytes())
        done[path.name] = "written"
    return done


# ---- running notebooks as nbval does -------------------------------------------------------

def nbval_environment(home: str) -> dict[str, str]:
    """The settings conftest.py gives nbval's kernels: a private embedded AWS in ``home``,
    the local target, the default prefix and the generated default dataset."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("ECOM_DATASET", "ECOM_ENDPOINT_URL", "ECOM_LOCAL_PORT", "ECOM_REGION")}
    env.update(ECOM_HOME=home, ECOM_TARGET="local", ECOM_PREFIX="ecom")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def execute(notebook: dict, cwd: Path | str, *, timeout: int = 900, allow_errors: bool = False) -> dict:
    """Run every cell of ``notebook`` (a dict) in a fresh kernel of this Python environment,
    with this process's environment variables, in ``cwd``; returns the executed notebook."""
    import ipykernel.kernelspec
    import nbformat
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    class CurrentEnv(KernelSpecManager):  # as nbval's --nbval-current-env: this interpreter
        def get_kernel_spec(self, kernel_name):
            return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                          **ipykernel.kernelspec.get_kernel_dict())

    node = nbformat.reads(json.dumps(notebook), as_version=4)
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=CurrentEnv())
    # coalesce_streams: one output per stream, a progress bar saved in its final state.
    # store_widget_state: the widgets' models go into the notebook's metadata, so a saved
    # notebook shows its widgets (as they were at the end of the run) without a kernel.
    client = NotebookClient(node, km=manager, timeout=timeout, allow_errors=allow_errors, coalesce_streams=True,
                            store_widget_state=True, resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return json.loads(nbformat.writes(node))


def refresh(paths: list[Path | str], log: Callable[[str], None] = print) -> None:
    """Re-execute notebooks in place, as CI's nbval runs them: the test environment of
    conftest.py (a private embedded AWS, stopped afterwards), a fresh kernel per notebook,
    execution counts 1, 2, 3, ..., and the widgets' state saved in the notebook (05's lookup
    box and 07's dashboard render in static views). Commit the result when its outputs
    changed on purpose."""
    home = tempfile.mkdtemp(prefix="ecomlib-refresh-")
    saved, env = dict(os.environ), nbval_environment(home)
    os.environ.clear()
    os.environ.update(env)
    try:
        for path in map(Path, paths):
            log(f"running {path} ...")
            notebook = json.loads(path.read_text(encoding="utf-8"))
            done = execute(notebook, path.resolve().parent)
            path.write_text(json.dumps(done, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            log(f"refreshed {path}")
    finally:
        from ecomlib.local import server

        server.stop()
        os.environ.clear()
        os.environ.update(saved)


# ---- command line ----------------------------------------------------------------------

def add_commands(parser: argparse.ArgumentParser) -> None:
    """The ``edition`` subcommands (shared by ``python -m ecomlib edition`` and this module)."""
    sub = parser.add_subparsers(dest="action", required=True)
    student = sub.add_parser("student", help="write the student edition (existing files are kept)")
    student.add_argument("dir", nargs="?", default="student", help="where (default: student/)")
    student.add_argument("--overwrite", action="store_true",
                         help="replace existing notebooks (a learner's answers are lost)")
    student.add_argument("--no-solutions", action="store_true",
                         help="leave out the collapsed solutions (hand out the answer key later)")
    answers = sub.add_parser("answers", help="write the answer key: solutions in place, with outputs")
    answers.add_argument("dir")
    again = sub.add_parser("refresh", help="developers: re-execute notebooks in place, as nbval runs them")
    again.add_argument("notebooks", nargs="+")
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    if args.action == "student":
        done = write_student(args.dir, overwrite=args.overwrite, solutions=not args.no_solutions)
    elif args.action == "answers":
        done = write_answer_key(args.dir)
    else:
        refresh(args.notebooks, log=lambda m: print(m, file=sys.stderr, flush=True))
        return 0
    for name, what in done.items():
        print(f"{what:8} {Path(args.dir) / name}")
    if "kept" in done.values():
        print("(kept: your own copies; delete one to get a fresh copy of it)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecomlib.edition", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_commands(parser)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
