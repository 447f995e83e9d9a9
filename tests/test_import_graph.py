"""The import rule of docs/ARCHITECTURE.md, checked on the package's real import graph.

common <- agent, common <- manager; never agent <-> manager, and common imports neither. Every
import counts: module level, inside functions (lazy), under TYPE_CHECKING, relative ones, and
``importlib.import_module("…")`` with a literal name. The graph is read from the source with
``ast`` (nothing is imported), so a violation anywhere in a file is found, not only on the paths
a test happens to execute.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("agent", "manager", "common")
FORBIDDEN = {
    "agent": {"manager"},
    "manager": {"agent"},
    "common": {"agent", "manager"},
}
GENERATED = ROOT / "common" / "wire" / "_generated"


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["trailwarden", *parts])


def package_files() -> Iterator[Path]:
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            if GENERATED not in path.parents:
                yield path


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in one file."""
    tree = ast.parse(path.read_text(), str(path))
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # `from trailwarden.agent import spool` imports a module
                yield node.lineno, f"{target}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "trailwarden" and parts[1] in LAYERS:
        return parts[1]
    return None


def violations() -> list[str]:
    found = []
    for path in package_files():
        source_layer = layer_of(module_name(path))
        assert source_layer is not None
        for line, target in imported_modules(path):
            target_layer = layer_of(target)
            if target_layer in FORBIDDEN[source_layer]:
                where = path.relative_to(ROOT)
                found.append(f"{where}:{line}: {source_layer} imports {target}")
    return sorted(set(found))


def test_the_package_keeps_the_import_rule() -> None:
    assert list(package_files()), "no package files found: the check would pass on nothing"
    assert violations() == []


def test_the_check_sees_every_kind_of_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The checker itself: each import form in a common/ module is reported."""
    fake_root = tmp_path
    for layer in LAYERS:
        (fake_root / layer).mkdir()
        (fake_root / layer / "__init__.py").write_text("")
    (fake_root / "common" / "bad.py").write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import trailwarden.agent.spool\n"
        "from trailwarden.manager import server\n"
        "if TYPE_CHECKING:\n"
        "    from trailwarden.manager.store.base import AlertStore\n"
        "def lazy():\n"
        "    from ..agent import link\n"
        "    import importlib\n"
        "    importlib.import_module('trailwarden.manager.cli')\n"
    )
    (fake_root / "agent" / "ok.py").write_text("from trailwarden.common import errors\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", fake_root)
    monkeypatch.setattr(
        __import__(__name__, fromlist=["GENERATED"]), "GENERATED", fake_root / "none"
    )
    lines = {v.split(": ", 1)[0] for v in violations()}
    assert lines == {
        "common/bad.py:3",
        "common/bad.py:4",
        "common/bad.py:6",
        "common/bad.py:8",
        "common/bad.py:10",
    }


def module_cycles() -> list[list[str]]:
    """Cycles in the module graph of the package (every import form counts)."""
    graph: dict[str, set[str]] = {}
    files = list(package_files())
    known = {module_name(path) for path in files}
    for path in files:
        source = module_name(path)
        targets = graph.setdefault(source, set())
        for _, target in imported_modules(path):
            if target in known and target != source:
                targets.add(target)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_no_module_imports_itself_through_others() -> None:
    """The layout issue broke the circles (pipeline setup <-> workers, spool <-> checkpoint,
    the admin servicer <-> its config mixin); none may come back. A package's ``__init__``
    re-exporting its own submodules is not a circle of logic, so packages are left out."""
    cycles = [
        cycle
        for cycle in module_cycles()
        if not any(
            a.startswith(b + ".") or b.startswith(a + ".") for a, b in itertools.pairwise(cycle)
        )
    ]
    assert cycles == []
