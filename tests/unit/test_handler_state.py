"""No state carried between invocations in ``lambda_src/``: a warm Lambda container reuses
the module, so a list or dict kept at module level and filled by one invocation is still
there (and growing) in the next one.  Read with ``ast``, without importing the code.

Allowed at module level: constants (names in capitals, tuples, frozensets, strings,
numbers, compiled patterns ... never changed by a function), loggers, and the one client
cache, ``shared/aws.py``'s ``functools.cache``-decorated ``client``.  Flagged: a ``global``
statement; a cache decorator anywhere else; a list / dict / set (or deque, defaultdict ...)
bound to a lower-case module-level name; and any module-level name a function changes
(item or attribute assignment, ``del``, ``append``, ``update``, ``setdefault``, ``pop`` ...).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAMBDA_SRC = REPO / "lambda_src"
SOURCES = sorted(LAMBDA_SRC.rglob("*.py"))

# The declared client caches: (file relative to lambda_src, function).
CLIENT_CACHES = {("shared/aws.py", "client")}
CACHE_DECORATORS = {"cache", "lru_cache", "cached_property"}
MUTABLE_TYPES = {"list", "dict", "set", "bytearray", "deque", "defaultdict", "OrderedDict", "Counter"}
MUTATING_METHODS = {"append", "appendleft", "extend", "extendleft", "insert", "pop", "popleft", "popitem",
                    "remove", "clear", "update", "setdefault", "add", "discard", "sort", "reverse",
                    "__setitem__", "__delitem__", "difference_update", "intersection_update"}
MUTABLE_LITERALS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)


def _names(target: ast.AST) -> list[str]:
    return [node.id for node in ast.walk(target) if isinstance(node, ast.Name)]


def _is_mutable_value(value: ast.AST | None) -> bool:
    if isinstance(value, MUTABLE_LITERALS):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        return name in MUTABLE_TYPES
    return False


def _decorator_name(node: ast.AST) -> str | None:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)


def module_state(source: str, where: str) -> list[str]:
    """What in ``source`` (the file ``where``, relative to its root) is mutable module-level
    state: one line per finding, empty if none."""
    tree = ast.parse(source)
    found: list[str] = []
    module_names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for name in (n for target in targets for n in _names(target)):
                module_names.add(name)
                if _is_mutable_value(node.value) and not name.isupper():
                    found.append(f"{where}:{node.lineno}: module-level {name} is a mutable container")
    functions = [node for node in ast.walk(tree)
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.append(f"{where}:{node.lineno}: global {', '.join(node.names)}")
    for function in functions:
        if not isinstance(function, ast.Lambda):
            for decorator in function.decorator_list:
                if _decorator_name(decorator) in CACHE_DECORATORS and (where, function.name) not in CLIENT_CACHES:
                    found.append(f"{where}:{function.lineno}: {function.name} keeps a cache "
                                 "(only the declared client cache may)")
        args = function.args
        local = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg) if a}
        local |= {n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        shared = module_names - local

        def changed(target: ast.AST) -> str | None:
            while isinstance(target, (ast.Subscript, ast.Attribute)):
                target = target.value
            return target.id if isinstance(target, ast.Name) and target.id in shared else None

        for node in ast.walk(function):
            names: list[str | None] = []
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                names = [changed(t) for t in targets if isinstance(t, (ast.Subscript, ast.Attribute))]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in MUTATING_METHODS
                  and not (node.func.attr == "add" and len(node.args) != 1)):  # decimal Context.add(a, b)
                names = [changed(node.func.value)]
            for name in filter(None, names):
                found.append(f"{where}:{node.lineno}: a function changes module-level {name}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(LAMBDA_SRC)))
def test_no_mutable_module_state(path):
    assert module_state(path.read_text(), path.relative_to(LAMBDA_SRC).as_posix()) == []


def test_every_function_and_the_shared_code_are_checked():
    checked = {p.relative_to(LAMBDA_SRC).as_posix() for p in SOURCES}
    handlers = {f"{p.name}/handler.py" for p in LAMBDA_SRC.iterdir() if (p / "handler.py").exists()}
    assert len(handlers) >= 5 and handlers <= checked
    assert {"shared/aws.py", "shared/api.py", "shared/settings.py"} <= checked


# What batch_loader, ingest_api and the stream functions did before the shared toolkit.
STATEFUL = '''
import threading, functools
import boto3
_clients: dict = {}
_staged: dict[str, list] = {}
_kinesis = None
SEEN = []

def client(service):
    if service not in _clients:
        _clients[service] = boto3.client(service)
    return _clients[service]

def kinesis_client():
    global _kinesis
    if _kinesis is None:
        _kinesis = boto3.client("kinesis")
    return _kinesis

def stage(key, rows):
    _staged[key] = rows
    while len(_staged) > 4:
        del _staged[next(iter(_staged))]

def load(key):
    SEEN.append(key)
    return _staged.pop(key, None)

@functools.lru_cache(maxsize=None)
def prices(day):
    return {}
'''

STATELESS = '''
import functools, logging, re, time
import boto3
logger = logging.getLogger("f")
logger.setLevel(logging.INFO)
FIELDS = ("InvoiceNo", "StockCode")
TRANSIENT = frozenset({"ThrottlingException"})
HEADERS = {"Content-Type": "application/json"}
VALID = re.compile("[0-9]+")
_sleep = time.sleep

@functools.cache
def client(service):
    return boto3.client(service)

def handle(event):
    rows, seen = [], {}
    for row in event["rows"]:
        rows.append(row)
        seen[row["RowId"]] = row
    headers = dict(HEADERS)
    headers["Allow"] = "POST"
    return rows, headers
'''


def test_the_checker_finds_state_kept_between_invocations():
    found = "\n".join(module_state(STATEFUL, "old/handler.py"))
    for expected in ("module-level _clients is a mutable container", "module-level _staged is a mutable container",
                     "a function changes module-level _clients", "a function changes module-level _staged",
                     "a function changes module-level SEEN", "global _kinesis", "prices keeps a cache"):
        assert expected in found, expected
    # client() in a handler is not the declared cache; the same code in shared/aws.py is
    cached = STATELESS.replace("@functools.cache", "@functools.cache  # not declared")
    assert module_state(cached, "ingest_api/handler.py") == [
        "ingest_api/handler.py:13: client keeps a cache (only the declared client cache may)"]


def test_the_checker_allows_constants_loggers_locals_and_the_client_cache():
    assert module_state(STATELESS, "shared/aws.py") == []
