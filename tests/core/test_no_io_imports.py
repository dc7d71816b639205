"""engineio_sansio does no I/O, reads no clock and starts no thread: it imports nothing
from asyncio, anyio, trio, socket, threading, time, select or selectors.

Two checks, because neither is enough alone:

* The AST check reads every module of the package and rejects any import of those
  names anywhere in the code (module level, inside functions, ``__import__`` and
  ``importlib.import_module`` with a literal name). It is the one that enforces the
  rule: it sees imports in functions that never run at import time, and it sees
  ``import time`` even though ``time`` is already loaded.

* The subprocess check imports the package in a fresh interpreter and compares
  ``sys.modules`` before and after. It catches what the AST cannot: a standard
  library module pulled in by the core that itself drags in a runtime (``logging``
  brings ``threading``, ``asyncio`` brings ``socket`` and ``selectors``). It cannot
  see modules the interpreter preloads before any user code runs (CPython imports
  ``time`` at start-up), so for those only the AST check is meaningful; the test
  computes that set instead of assuming it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import engineio_sansio

FORBIDDEN = frozenset({"asyncio", "anyio", "trio", "socket", "threading", "time", "select", "selectors"})
PACKAGE_DIR = Path(engineio_sansio.__file__).resolve().parent
MODULES = sorted(PACKAGE_DIR.rglob("*.py"))


def forbidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """Every forbidden import in ``source``, as ``"line: name"``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names = [node.module]
        elif isinstance(node, ast.Call):
            func = node.func
            fname = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if fname in ("__import__", "import_module") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names = [arg.value]
        for name in names:
            if name.split(".")[0] in FORBIDDEN:
                found.append(f"{getattr(node, 'lineno', '?')}: {name}")
    return found


def test_the_package_has_the_modules_we_expect() -> None:
    names = {p.name for p in MODULES}
    assert {"__init__.py", "packet.py", "server.py", "session.py", "http.py", "events.py"} <= names, names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_imports_no_io(path: Path) -> None:
    bad = forbidden_imports(path.read_text(encoding="utf-8"), str(path))
    assert not bad, f"{path.name} imports I/O, clock or thread modules: {bad}"


@pytest.mark.parametrize(
    "source",
    [
        "import time",
        "import socket as s",
        "import asyncio.events",
        "from threading import Lock",
        "from select import poll",
        "def f():\n    import selectors\n",
        "import os, trio",
        "x = __import__('anyio')",
        "import importlib\nm = importlib.import_module('time')",
    ],
)
def test_the_ast_check_catches(source: str) -> None:
    assert forbidden_imports(source), f"the checker missed: {source!r}"


@pytest.mark.parametrize(
    "source",
    ["import timeit", "from .time import x", "import datetime", "from mytime import t", "import sockets"],
)
def test_the_ast_check_is_not_fooled_by_similar_names(source: str) -> None:
    assert not forbidden_imports(source), source


PROBE = """
import json, sys
before = set(sys.modules)
{imports}
after = set(sys.modules)
print(json.dumps({{"before": sorted(before), "new": sorted(after - before)}}))
"""


def modules_loaded_by(imports: str) -> tuple[set[str], set[str]]:
    """(forbidden modules preloaded by the interpreter, forbidden modules ``imports`` adds)."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(imports=imports)],
        cwd=PACKAGE_DIR.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout)
    preloaded = {m for m in result["before"] if m.split(".")[0] in FORBIDDEN}
    pulled = {m for m in result["new"] if m.split(".")[0] in FORBIDDEN}
    return preloaded, pulled


def test_importing_the_package_loads_no_runtime_module() -> None:
    imports = "\n".join(f"import engineio_sansio.{p.stem}" for p in MODULES if p.stem != "__init__")
    imports += f"\nimport engineio_sansio\nassert engineio_sansio.__file__.startswith({str(PACKAGE_DIR)!r})"
    preloaded, pulled = modules_loaded_by(imports)
    checkable = FORBIDDEN - {m.split(".")[0] for m in preloaded}
    assert {"asyncio", "anyio", "trio", "socket", "threading", "selectors"} <= checkable, (
        f"the interpreter preloads {sorted(preloaded)}: this check would see too little"
    )
    assert not pulled, f"importing engineio_sansio loads {sorted(pulled)}"


def test_the_subprocess_check_catches_a_transitive_import() -> None:
    _, pulled = modules_loaded_by("import logging")
    assert "threading" in pulled, "logging drags threading in; the probe must see it"
