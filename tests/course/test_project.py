"""Project hygiene: pins agree, installed versions match them, nothing private is committed."""

from __future__ import annotations

import re
import subprocess
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^\s*(?:-\s+)?([A-Za-z0-9_.\-]+)(\[[^\]]+\])?==([^\s#]+)")


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            found[match.group(1).lower()] = match.group(3)
    return found


LEARNER = REPO / "requirements.txt"
DEV = REPO / "requirements-dev.txt"
DEV_ONLY = {"cfn-lint": "cfnlint", "hypothesis": "hypothesis", "nbval": "nbval", "playwright": "playwright",
            "pytest": "pytest", "pytest-xdist": "xdist"}


def test_environment_yml_and_requirements_pin_the_same_versions():
    """environment.yml (conda, Binder) is the learner's set, pin for pin."""
    requirements = pins(LEARNER)
    environment = pins(REPO / "environment.yml")
    assert requirements, "no pins found in requirements.txt"
    assert requirements == environment


def test_the_developer_set_is_the_learner_set_plus_the_test_tools():
    lines = [line.split("#")[0].strip() for line in DEV.read_text().splitlines()]
    assert "-r requirements.txt" in lines
    dev_only = pins(DEV)
    assert set(dev_only) == set(DEV_ONLY), "requirements-dev.txt pins exactly the developer-only tools"
    assert not set(dev_only) & set(pins(LEARNER)), "a pin in both files"


def test_installed_versions_are_the_pinned_ones():
    wanted = {**pins(LEARNER), **pins(DEV)}
    wrong = {name: (pinned, version(name)) for name, pinned in wanted.items() if version(name) != pinned}
    assert not wrong, f"installed versions differ from the pins (pinned, installed): {wrong}"


def test_every_pin_is_exact():
    for path in (LEARNER, DEV):
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and line != "-r requirements.txt":
                assert PIN.match(line), f"{path.name}: not pinned with ==: {line!r}"


def _imported_modules(source: str) -> set[str]:
    import ast

    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_learners_code_needs_no_developer_tool():
    """What a learner runs (ecomlib, lambda_src, the notebooks) imports none of the tools that
    only requirements-dev.txt installs, so the learner's install is enough for it. (The
    notebooks' one use of cfn-lint goes through infra.lint, which says when it is missing.)"""
    import json

    sources = {str(p.relative_to(REPO)): p.read_text() for folder in ("ecomlib", "lambda_src")
               for p in (REPO / folder).rglob("*.py")}
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        for number, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":
                lines = [line for line in "".join(cell["source"]).splitlines()
                         if not line.lstrip().startswith(("%", "!"))]  # magics and shell lines
                sources[f"{path.name}, cell {number}"] = "\n".join(lines)
    assert len(sources) > 100
    for where, source in sources.items():
        used = _imported_modules(source) & set(DEV_ONLY.values())
        assert not used, f"{where} imports {used}, which only requirements-dev.txt installs"


def test_the_learner_set_leaves_out_what_only_developers_need():
    learner = pins(LEARNER)
    assert "moto" in learner and "boto3" in learner and "jupyterlab" in learner
    # moto's [server] extra would bring cfn-lint (with sympy) back: the learner's moto has none.
    assert not re.search(r"^moto\[", LEARNER.read_text(), re.MULTILINE)


def test_no_real_data_or_machine_paths_in_tracked_files():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    assert files, "not a git checkout?"
    markers = [
        "536365,85123A",  # first line of the real file
        "WHITE HANGING HEART",
        "/work/", "/root/",
    ]
    for name in files:
        path = REPO / name
        if not path.is_file() or name == "tests/course/test_project.py":
            continue
        text = path.read_text(errors="ignore")
        for marker in markers:
            assert marker not in text, f"{name} contains {marker!r}"


ARN_WITH_ACCOUNT = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:")
SECRETS = [
    re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}"),  # an access key id
    re.compile(r"aws_secret_access_key\s*=\s*\S+", re.IGNORECASE),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]


def test_no_account_ids_arns_or_credentials_in_notebook_outputs():
    """Committed outputs must not show an account id (moto's 123456789012 included: on a
    real account the same cell would print the learner's), an ARN carrying one, or a key."""
    import json

    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        for number, cell in enumerate(notebook["cells"]):
            texts = []
            for output in cell.get("outputs", []):
                texts.append("".join(output.get("text", "")))
                for mime, value in output.get("data", {}).items():
                    if mime.startswith("text/") or mime.endswith("json"):
                        texts.append(value if isinstance(value, str) else json.dumps(value))
            text = "\n".join(texts)
            where = f"{path.name}, cell {number}"
            assert not ARN_WITH_ACCOUNT.search(text), f"{where}: an ARN with an account id"
            assert "123456789012" not in text, f"{where}: the account id"
            for pattern in SECRETS:
                assert not pattern.search(text), f"{where}: something like a credential"


def test_cells_that_create_resources_are_tagged_costs_money():
    """On a real account these cells create billable resources: they carry the tag."""
    import json

    creates = re.compile(r"\b(deploy|deploy_all|deploy_function|deploy_stack|deploy_stage|ensure_[a-z_]+|"
                         r"create_stream|create_bucket|create_table|create_delivery_stream|create_cluster|"
                         r"create_function|create_rest_api|put_rule|create_event_source_mapping|create_queue)\(")
    tagged = 0
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        for number, cell in enumerate(json.loads(path.read_text())["cells"]):
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and creates.search(source) and "teardown" not in source:
                assert "costs-money" in cell["metadata"].get("tags", []), f"{path.name}, cell {number}"
                tagged += 1
    assert tagged > 20


def _ecomlib_imports() -> dict[str, set[str]]:
    """Which ecomlib modules (top level, ``local`` and ``pipelines`` as one each) each one
    imports, anywhere in its code (a deferred import inside a function counts too)."""
    import ast

    package = REPO / "ecomlib"

    def unit(dotted: str) -> str:
        parts = dotted.split(".")
        return parts[1] if len(parts) > 1 else ""

    graph: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        relative = path.relative_to(package).with_suffix("")
        name = relative.parts[0]
        if name in ("__init__", "__main__"):
            continue
        found = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ecomlib"):
                targets = [f"{node.module}.{a.name}" if node.module == "ecomlib" else node.module for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("ecomlib")]
            else:
                continue
            found.update(t for t in map(unit, targets) if t and t != name)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[str]:
    """Every import circle of ``graph`` (module -> modules it imports), once each."""
    circles = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target == path[0]:
                circles.append(" -> ".join(path + [target]))
            elif target not in path and target > path[0]:
                visit(target, path + [target])

    for module in sorted(graph):
        visit(module, [module])
    return circles


def test_ecomlib_has_no_import_circles():
    assert _circles(_ecomlib_imports()) == []


def test_the_package_docstring_lists_every_module():
    import ecomlib

    listed = set(re.findall(r"^- ``(\w+)``", ecomlib.__doc__, re.M))
    modules = {p.stem for p in (REPO / "ecomlib").glob("*.py") if not p.stem.startswith("__")}
    modules |= {p.name for p in (REPO / "ecomlib").iterdir() if (p / "__init__.py").exists()}
    assert listed == modules


def test_every_package_dependency_is_pinned_for_learners():
    """pyproject's dependencies (the minimums) name only packages the learner's set pins."""
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.match(r"[A-Za-z0-9_.\-]+", dependency).group(0).lower() for dependency in declared}
    assert names <= set(pins(LEARNER)), names - set(pins(LEARNER))


def _module_imports() -> dict[str, set[str]]:
    """Which ecomlib modules each module imports, module by module (inside ``local`` and
    ``pipelines`` too), anywhere in its code, type-checking imports included.
    ``from package import submodule`` points at the submodule, not the package."""
    import ast

    package = REPO / "ecomlib"
    modules = {}
    for path in package.rglob("*.py"):
        parts = ("ecomlib",) + path.relative_to(package).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ecomlib"):
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("ecomlib")]
            else:
                continue
            found.update(t for t in targets if t in modules and t != name)
    return graph


def test_no_import_circles_between_modules():
    assert _circles(_module_imports()) == []
