"""The package's import graph: no cycles, and no Airflow where the layout promises none.

The graph is read from the source with `ast`, so it sees every import, including the
function-local ones that only run later and those under `if TYPE_CHECKING:`: a cycle
hidden either way is still two modules that each need the other. (The Airflow check
leaves `TYPE_CHECKING` imports out: they never run.)
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import airflow_predibase

PACKAGE = "airflow_predibase"
PACKAGE_DIR = Path(airflow_predibase.__file__).parent
#: Parts of the package that must work without Airflow installed (STYLE.md, the layout,
#: docs/architecture.md): the client, the emulator, the waiting core and the shared rules.
AIRFLOW_FREE = ("client", "emulator", "waiting", "kinds.py", "dataset_files.py")

Graph = dict[str, set[str]]


# -- reading imports -------------------------------------------------------------------------


def module_name(path: Path, root: Path, package: str) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST, *, type_checking: bool) -> Iterator[ast.AST]:
    """Every node, at any depth; without the `if TYPE_CHECKING:` bodies unless asked."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if not type_checking and isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def import_statements(
    path: Path, module: str, *, type_checking: bool = True
) -> Iterator[tuple[str, list[str]]]:
    """(module named, [module.name for each name taken from it]) per import statement.

    `import a.b` gives ("a.b", []); `from a import b, c` gives ("a", ["a.b", "a.c"]), with
    relative imports resolved against `module`.
    """
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in _nodes(tree, type_checking=type_checking):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, [f"{base}.{alias.name}" for alias in node.names]


def imported_names(path: Path, module: str) -> set[str]:
    """Every dotted name `path` imports at run time, whether module or not."""
    statements = import_statements(path, module, type_checking=False)
    return {name for base, taken in statements for name in (base, *taken)}


def import_graph(root: Path, package: str, *, type_checking: bool = True) -> Graph:
    """{module: the package's modules it imports}, for every module below `root`."""
    paths = {module_name(p, root, package): p for p in sorted(root.rglob("*.py"))}
    graph: Graph = {}
    for module, path in paths.items():
        targets: set[str] = set()
        for base, taken in import_statements(path, module, type_checking=type_checking):
            # `from pkg import submodule` imports the submodule; any other name, pkg itself.
            found = [name for name in taken if name in paths]
            targets.update(found)
            if not taken or (base in paths and len(found) < len(taken)):
                targets.add(base)
        graph[module] = (targets & paths.keys()) - {module}
    return graph


# -- finding cycles --------------------------------------------------------------------------


def find_cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


# -- the package -----------------------------------------------------------------------------


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE_DIR, PACKAGE)
    assert len(graph) > 50, "the scan found too few modules to mean anything"
    assert sum(len(targets) for targets in graph.values()) > 100, "too few imports found"
    cycles = find_cycles(graph)
    assert not cycles, "import cycles, each among:\n" + "\n".join(", ".join(c) for c in cycles)


def test_the_airflow_free_parts_import_no_airflow() -> None:
    offenders = []
    for part in AIRFLOW_FREE:
        path = PACKAGE_DIR / part
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        assert all(f.is_file() for f in files), f"{part} is missing"
        assert len(files) >= (3 if path.is_dir() else 1), (
            f"too few files in {part} to mean anything"
        )
        for path in files:
            module = module_name(path, PACKAGE_DIR, PACKAGE)
            offenders += [
                f"{module}: {name}"
                for name in sorted(imported_names(path, module))
                if name == "airflow" or name.startswith("airflow.")
            ]
    assert not offenders


def test_using_the_airflow_free_parts_loads_no_airflow() -> None:
    code = (
        "import sys\n"
        "from airflow_predibase.client import PredibaseClient, ClientSettings\n"
        "from airflow_predibase.client import AsyncPredibaseClient\n"
        "import airflow_predibase.client.models, airflow_predibase.client._pool\n"
        "import airflow_predibase.emulator.in_process, airflow_predibase.emulator.server\n"
        "import airflow_predibase.waiting.blocking, airflow_predibase.kinds\n"
        "import airflow_predibase.dataset_files\n"
        "from airflow_predibase.emulator import create_app\n"
        "c = PredibaseClient(ClientSettings(token='pb_x')); c.close()\n"
        "create_app()\n"
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "assert not bad, bad\n"
        "assert 'airflow_predibase.emulator.resources.batch' in sys.modules, 'no app built'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# -- the checks themselves -------------------------------------------------------------------


def test_find_cycles_reports_each_cycle_once() -> None:
    graph: Graph = {
        "p.backend": {"p.resources.jobs", "p.store"},
        "p.resources.jobs": {"p.backend", "p.store"},  # the cycle this test was written for
        "p.store": set(),
        "p.a": {"p.b"},
        "p.b": {"p.c"},
        "p.c": {"p.a", "p.store"},
        "p.leaf": {"p.a"},
    }
    assert find_cycles(graph) == [["p.a", "p.b", "p.c"], ["p.backend", "p.resources.jobs"]]
    assert find_cycles({"p.x": {"p.y"}, "p.y": set()}) == []


def test_the_graph_sees_local_relative_and_type_checking_imports(tmp_path: Path) -> None:
    files = {
        "__init__.py": "",
        "backend.py": """
            def build():
                from pkg.resources.jobs import Jobs  # function-local: still an edge
                return Jobs()
        """,
        "resources/__init__.py": "",
        "resources/jobs.py": """
            from typing import TYPE_CHECKING
            from ..store import Doc
            from . import util
            if TYPE_CHECKING:
                from pkg.backend import Backend  # the cycle as the emulator once had it
        """,
        "resources/util.py": "",
        "store.py": "Doc = dict",
        "views.py": "import pkg.store",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.backend"] == {"pkg.resources.jobs"}
    assert graph["pkg.resources.jobs"] == {"pkg.store", "pkg.resources.util", "pkg.backend"}
    assert graph["pkg.views"] == {"pkg.store"}
    assert find_cycles(graph) == [["pkg.backend", "pkg.resources.jobs"]]
    run_time = import_graph(tmp_path, "pkg", type_checking=False)
    assert run_time["pkg.resources.jobs"] == {"pkg.store", "pkg.resources.util"}
    assert find_cycles(run_time) == []
