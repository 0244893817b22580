"""House rules of the code base, checked from the source: no import cycles (not even through
`TYPE_CHECKING` imports), layers import only downwards, every module imports on its own in any
order, modules and functions stay small enough to read, and the indexer's helpers work on its
context, not on its facade."""

from __future__ import annotations

import ast
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("distill", "indexer", "app")
SIZED = (*PACKAGES, "benchmarks")  # the size rule covers the benchmarks too
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60


def _modules(packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every module of `packages`."""
    out = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.Module, type_checking: bool = False) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: module level and inside functions alike, but not under
    `if TYPE_CHECKING:` (unless `type_checking`: those too)."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node) and not type_checking:
            todo += node.orelse
        else:
            todo += ast.iter_child_nodes(node)
    return found


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules an import statement needs: the modules it names and the packages above
    them, except `module`'s own packages (they finished importing before `module` started, or are
    importing it) unless the statement reads a name their `__init__` defines."""
    if isinstance(node, ast.Import):
        named, from_package = [a.name for a in node.names], False
    else:
        base = node.module or ""
        if node.level:
            anchor = module.split(".")
            anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
            base = ".".join([*anchor, base] if base else anchor)
        subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
        named, from_package = [base, *subs], len(subs) < len(node.names)
    out = set()
    for name in named:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            target = ".".join(parts[:i])
            own_package = module == target or module.startswith(target + ".")
            if target in known and (not own_package or (target == named[0] and from_package)):
                out.add(target)
    out.discard(module)
    return out


def import_graph(type_checking: bool = False) -> dict[str, set[str]]:
    """Module -> the project modules its imports execute (`type_checking`: or name for a type checker)."""
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        imports = _runtime_imports(tree, type_checking)
        graph[name] = set().union(*(_targets(n, name, is_package, known) for n in imports))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None (iterative DFS, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_the_cycle_finder_finds_cycles_and_only_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond is no cycle


def test_the_import_graph_sees_relative_submodule_lazy_and_package_imports():
    known = {"p", "p.a", "p.b", "p.c", "p.d"}
    tree = ast.parse(
        "from . import a\nfrom .b import x\ntry:\n    import p.c\nexcept ImportError:\n    pass\n"
        "if TYPE_CHECKING:\n    import p.x\ndef f():\n    from p.d import y\n"
    )
    targets = set().union(*(_targets(n, "p.m", False, known) for n in _runtime_imports(tree)))
    assert targets == {"p.a", "p.b", "p.c", "p.d"}  # p itself is p.m's own package, imported first
    # ... unless p.m reads a name that p/__init__.py defines: that needs p to have finished.
    name_from_package = ast.parse("from p import Thing").body[0]
    assert _targets(name_from_package, "p.m", False, known) == {"p"}


def test_imports_are_acyclic():
    """Module-level and function-level imports both count. A function-level import defers a cost
    (torch, faiss, matplotlib) until it is needed; it is still a dependency, and a cycle hidden in
    one becomes an ImportError the day someone moves it to the top of the file. A module importing
    a submodule of its own package (`from indexer import faiss_index` in indexer.collection) is no
    edge to the package: the package is imported before the module, and the submodule is what the
    statement needs."""
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_are_acyclic_with_type_checking_imports():
    """An import under `if TYPE_CHECKING:` never runs, but a cycle through one still says that two
    modules cannot be understood apart (the indexer's helpers once named `Collection` that way)."""
    tree = ast.parse("if TYPE_CHECKING:\n    import p.a\n")
    assert _runtime_imports(tree) == [] and len(_runtime_imports(tree, type_checking=True)) == 1
    cycle = find_cycle(import_graph(type_checking=True))
    assert cycle is None, "import cycle (TYPE_CHECKING imports included): " + " -> ".join(cycle)


FACADE_USERS = {"indexer", "indexer.__main__", "indexer.cli"}  # may use `Collection`


def test_indexer_helpers_work_on_the_context_not_the_facade():
    """`Collection` is only the public face: its helpers (writer, recovery, search, lifecycle,
    inspection, ...) take the `CollectionContext` and each other, never the facade, so none of
    them imports `indexer.collection` (not even for a type) or reaches into a `col._private`."""
    graph = import_graph(type_checking=True)
    importers = sorted(
        name
        for name, targets in graph.items()
        if name.startswith("indexer.")
        and name not in FACADE_USERS | {"indexer.collection"}
        and targets & {"indexer", "indexer.collection"}
    )
    assert not importers, f"indexer helpers that import the facade: {importers}"
    reach = re.compile(r"\bcol\._")
    found = [
        f"{path.relative_to(ROOT).as_posix()}:{i}: {line.strip()}"
        for path in sorted((ROOT / "indexer").glob("*.py"))
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if reach.search(line)
    ]
    assert not found, "reaching into the facade's private members:\n" + "\n".join(found)


@pytest.mark.parametrize("seed", [0, 1])
def test_every_module_imports_in_a_shuffled_order(seed):
    """Each module imported first in some process would catch a cycle the graph misses (for example
    one through `importlib`); one process per order keeps this to a few seconds."""
    names = [m for m in _modules() if not m.endswith("__main__") and m != "app.streamlit_app"]
    random.Random(seed).shuffle(names)
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    proc = subprocess.run(
        [sys.executable, "-c", code, *names], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


# Layer -> the top-level packages it must not import: distill is the foundation, the indexer is
# built on it, the app and the benchmarks on both.
FORBIDDEN = {"distill": ("indexer", "app", "benchmarks"), "indexer": ("app", "benchmarks")}


def _all_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, `TYPE_CHECKING` blocks included: a type-only import
    upwards still ties the lower layer to the upper one."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def upward_imports(layer: str, root: Path = ROOT) -> list[str]:
    """`file:line imported` for each import of a forbidden package by a module of `layer`."""
    found = []
    for path in sorted((root / layer).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _all_imports(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                continue  # relative: inside its own package
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in FORBIDDEN[layer]:
                    found.append(f"{path.relative_to(root).as_posix()}:{node.lineno} imports {name}")
    return found


def test_the_layer_check_sees_lazy_and_type_only_imports(tmp_path):
    (tmp_path / "distill").mkdir()
    (tmp_path / "distill" / "m.py").write_text(
        "import numpy\nfrom distill import x\ndef f():\n    from indexer.chunking import c\n"
        "if TYPE_CHECKING:\n    import app.settings\n"
    )
    assert upward_imports("distill", tmp_path) == [
        "distill/m.py:4 imports indexer.chunking",
        "distill/m.py:6 imports app.settings",
    ]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downwards(layer):
    """distill imports neither indexer, app nor benchmarks; indexer imports neither app nor
    benchmarks. Function-level imports count."""
    found = upward_imports(layer)
    assert not found, "\n".join(found)


def _function_lengths(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            yield node.name, node.lineno, node.end_lineno - first + 1


def test_modules_and_functions_stay_small():
    too_long = []
    for path in _modules(SIZED).values():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{rel}: {lines} lines (at most {MAX_MODULE_LINES})")
        for func, lineno, length in _function_lengths(ast.parse(text)):
            if length > MAX_FUNCTION_LINES:
                too_long.append(f"{rel}:{lineno} {func}: {length} lines (at most {MAX_FUNCTION_LINES})")
    assert not too_long, "\n".join(too_long)
