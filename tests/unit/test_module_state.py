"""The embedded AWS keeps no state in modules: each part is an object that owns its state.

Read with ``ast`` (nothing is imported): every module of ``ecomlib/local/``. Module-level
state is a ``global`` statement, or a name bound at module level (or in a class body) to
a mutable value -- a list, dict or set, a comprehension, or an object made by a call --
unless it is a declared constant: a list/dict/set in UPPER_CASE that the module never
changes, or a call to one of the constructors of immutable or stateless things below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LOCAL = Path(__file__).resolve().parents[2] / "ecomlib" / "local"

# Calls whose result holds no state that changes.
STATELESS_CALLS = {"logging.getLogger", "getLogger", "re.compile", "frozenset", "tuple", "namedtuple",
                   "TypeVar", "Path", "object",
                   "field", "dataclasses.field",  # a dataclass field: a new value per instance
                   "int", "float", "str", "bytes", "bool", "MappingProxyType"}

# Module-level objects that are state on purpose, with the reason.
DECLARED = {
    ("component.py", "MOTO_LOCK"): "guards moto's backends, which are module-level in moto itself",
}

MUTATORS = {"append", "appendleft", "extend", "extendleft", "insert", "pop", "popleft", "popitem", "remove",
            "clear", "update", "setdefault", "add", "discard", "sort", "reverse", "set", "put", "rotate",
            "acquire", "release", "__setitem__", "__delitem__"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _mutable(value: ast.AST | None) -> bool:
    if isinstance(value, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)):
        return True
    if isinstance(value, ast.Call):
        return _dotted(value.func) not in STATELESS_CALLS
    return False


def _constant_name(name: str) -> bool:
    return name.lstrip("_").isupper() or (name.startswith("__") and name.endswith("__"))


def _mutated_names(tree: ast.Module) -> set[str]:
    """Names changed in place somewhere in the module: x[k] = v, del x[k], x += ...,
    x.append(...), next(x)."""
    found = set()
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                found.add(target.value.id)
            if isinstance(node, ast.AugAssign) and isinstance(target, ast.Name):
                found.add(target.id)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in MUTATORS and isinstance(func.value, ast.Name):
                found.add(func.value.id)
            if isinstance(func, ast.Name) and func.id == "next" and node.args and isinstance(node.args[0], ast.Name):
                found.add(node.args[0].id)
    return found


def module_state(path: Path, root: Path = LOCAL) -> list[str]:
    """Every piece of module-level state in one source file, described."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = path.relative_to(root).as_posix()
    mutated = _mutated_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.append(f"{name}:{node.lineno}: global {', '.join(node.names)}")

    def check(body: list[ast.stmt], where: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                check(node.body, f"{where}{node.name}.")
                continue
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            for target in names:
                if (name, target) in DECLARED or not _mutable(value):
                    continue
                if isinstance(value, ast.Call) or not _constant_name(target) or target in mutated:
                    found.append(f"{name}:{node.lineno}: {where}{target} = {ast.unparse(value)[:60]}")

    check(tree.body, "")
    return found


def _sources() -> list[Path]:
    return sorted(p for p in LOCAL.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_embedded_aws_keeps_no_module_level_state():
    found = [line for path in _sources() for line in module_state(path)]
    assert not found, "module-level state in ecomlib/local (make it a component's attribute):\n" + "\n".join(found)


@pytest.mark.parametrize("source, expected", [
    ("_seen = {}\ndef f(k):\n    _seen[k] = 1\n", ["_seen = {}"]),
    ("ITEMS = []\ndef f():\n    ITEMS.append(1)\n", ["ITEMS = []"]),
    ("_lock = threading.Lock()\n", ["_lock = threading.Lock()"]),
    ("_ids = iter(range(3))\n", ["_ids = iter(range(3))"]),
    ("x = 0\ndef f():\n    global x\n    x += 1\n", ["global x"]),
    ("class A:\n    cache = {}\n", ["A.cache = {}"]),
    ("NAMES = {'a': 1}\nlog = logging.getLogger('x')\nPATTERN = re.compile('a')\nN = 3\n", []),
    ("class A:\n    def __init__(self):\n        self.seen = {}\n", []),
])
def test_the_check_finds_module_level_state(tmp_path, source, expected):
    """The check above can fail: it finds each kind of module-level state, and only that."""
    path = tmp_path / "m.py"
    path.write_text(source)
    found = module_state(path, root=tmp_path)
    assert [line.split(": ", 1)[1] for line in found] == expected
