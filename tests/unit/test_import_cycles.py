"""No import circle in src/order_service, counting imports inside functions too.

Every module is parsed with `ast`; every import of an order_service module
anywhere in it (at module level, in functions, in classes) is an edge, except
inside `if TYPE_CHECKING:` (never run). Relative imports are resolved, and
`from package import name` is an edge to the submodule `package.name` when
there is one, else to the package itself. A cycle fails the test, named.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "order_service"


def modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package's __init__)."""
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below `node`, leaving out the body of `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            children: list[ast.AST] = list(child.orelse)
        else:
            children = [child]
        for each in children:
            yield each
            yield from _nodes(each)


def imports_of(name: str, path: Path, is_package: bool, known: set[str]) -> set[str]:
    """The order_service modules `name` imports, wherever in the file."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.add(submodule if submodule in known else module)
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {
        name: imports_of(name, path, is_package, known)
        for name, (path, is_package) in found.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first, without recursion)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if start in state:
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the walk found the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


SAMPLE = """
from typing import TYPE_CHECKING
import order_service.b
from . import c
from .d import thing
if TYPE_CHECKING:
    from order_service import e
else:
    from order_service import f

def later():
    from order_service.g import h
"""


def test_the_walk_sees_every_kind_of_import(tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_text(SAMPLE)
    known = {f"order_service.{m}" for m in ("a", "b", "c", "d", "e", "f", "g", "g.h")}
    found = imports_of("order_service.a", path, False, known)
    expected = {"b", "c", "d", "f", "g.h"}
    assert found == {f"order_service.{m}" for m in expected}


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"b", "c"}, "c": set()}, ["b", "b"]),
    ],
)
def test_find_cycle(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle
