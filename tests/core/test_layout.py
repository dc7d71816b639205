"""The shape of the packages: small modules, no import cycle, no ``assert`` in the core,
and a core ``Server`` with few public names.

``python -O`` strips ``assert`` statements, so the core reports misuse by raising
:class:`~engineio_sansio.errors.LocalProtocolError`; a module longer than
``MAX_LINES`` hides more than one job; an import cycle means two modules are one; every
public name of ``engineio_sansio.Server`` is something an embedder must learn, so there
are at most ``MAX_PUBLIC_NAMES`` (issue 16). Each check is also run on a small made-up
example, so that it is seen to fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import engineio_asgi
import engineio_sansio

MAX_LINES = 600
MAX_PUBLIC_NAMES = 14
PACKAGES = {
    "engineio_sansio": Path(engineio_sansio.__file__).resolve().parent,
    "engineio_asgi": Path(engineio_asgi.__file__).resolve().parent,
}


def asserts(source: str) -> list[int]:
    return [node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assert)]


def local_imports(package: str, module: str, source: str) -> set[str]:
    """The modules of ``package`` that ``module`` imports, at run time (not under TYPE_CHECKING)."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for inner in node.body for n in ast.walk(inner))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.startswith(package + "."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(package + "."):
                    found.add(alias.name.split(".")[1])
    found.discard(module)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph`` (module -> modules it imports), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt == "__init__":
                continue  # importing the package itself from a submodule is the package's business
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def import_graph(package: str, directory: Path) -> dict[str, set[str]]:
    return {
        path.stem: local_imports(package, path.stem, path.read_text())
        for path in sorted(directory.glob("*.py"))
    }


def public_names(obj: object) -> list[str]:
    """The public methods, properties and attributes of ``obj`` (an instance: what a caller sees)."""
    return sorted(name for name in dir(obj) if not name.startswith("_"))


def test_the_server_has_at_most_14_public_names() -> None:
    names = public_names(engineio_sansio.Server())
    assert len(names) <= MAX_PUBLIC_NAMES, f"{len(names)} public names on Server: {names}"


def test_the_core_has_no_assert_statement() -> None:
    found = {
        path.name: lines
        for path in sorted(PACKAGES["engineio_sansio"].glob("*.py"))
        if (lines := asserts(path.read_text()))
    }
    assert found == {}, f"assert statements (python -O removes them): {found}"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_cycle(package: str) -> None:
    cycle = find_cycle(import_graph(package, PACKAGES[package]))
    assert cycle is None, f"{package}: import cycle {' -> '.join(cycle or [])}"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_module_over_the_limit(package: str) -> None:
    long = {
        f"{package}/{path.name}": n
        for path in sorted(PACKAGES[package].glob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_the_checks_see_what_they_look_for() -> None:
    assert asserts("x = 1\nassert x\n") == [2]
    graph = {
        "a": local_imports("pkg", "a", "from .b import f\n"),
        "b": local_imports("pkg", "b", "from pkg.a import g\n"),
        "c": local_imports(
            "pkg", "c", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import g\n"
        ),
    }
    assert find_cycle(graph) == ["a", "b", "a"]
    assert graph["c"] == set(), "an import under TYPE_CHECKING is not a run-time edge"
    del graph["b"]
    assert find_cycle(graph) is None

    class Wide:
        def __init__(self) -> None:
            self.config = None
            self._private = None

        @property
        def state(self) -> None:
            return None

        def _helper(self) -> None:
            pass

    for i in range(13):
        setattr(Wide, f"verb{i}", lambda self: None)
    assert len(public_names(Wide())) == 15, "methods, a property and an attribute count; _names do not"
