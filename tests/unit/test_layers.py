"""Layers point one way: the import graph between anesbench's packages has no cycle, and the CLI does not
reach into the dispatcher (the server) except to start it.

The graph is read from the source with ``ast``, every import counted: at module level, inside a
function (lazy) and under ``TYPE_CHECKING`` alike.
"""

from __future__ import annotations

import ast
import graphlib
import itertools
from collections import defaultdict
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "services" / "anesbench"
GENERATED = "v1"  # protobuf code from scripts/gen_protos.py: imports only itself and google.protobuf
SERVER_ENTRY = "cli/serve_cmd.py"  # `anesbench serve` starts the dispatcher: the one CLI module that may import it


def _imported(path: Path) -> list[tuple[str, int]]:
    """Every ``anesbench`` module named by an import in ``path``, with its line (relative imports resolved)."""
    package = ["anesbench", *path.relative_to(PACKAGE).parent.parts]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            # `from anesbench import errors` names a module through its package: count both.
            found += [(module, node.lineno)] + [(f"{module}.{alias.name}", node.lineno) for alias in node.names]
    return [(name, line) for name, line in found if name.split(".")[0] == "anesbench"]


def _unit(module: str) -> str | None:
    """The package (``engine``) or top-level module (``errors``) a dotted name belongs to; None for others."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    name = parts[1]
    return name if (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file() else None


def _sources() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path.relative_to(PACKAGE).parts[0] != GENERATED)


def import_graph() -> dict[str, dict[str, list[str]]]:
    """unit -> {imported unit: ["file:line", ...]}, between distinct units only."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in _sources():
        relative = path.relative_to(PACKAGE)
        source = _unit("anesbench." + ".".join(relative.with_suffix("").parts))
        if source is None:  # anesbench/__init__.py
            continue
        for module, line in _imported(path):
            target = _unit(module)
            site = f"{relative}:{line}"
            if target is not None and target != source and site not in graph[source][target]:
                graph[source][target].append(site)
    return graph


def test_the_graph_sees_the_imports_it_must_see() -> None:
    graph = import_graph()
    assert {"inference", "store", "grading"} <= set(graph["engine"])
    assert {"wire", "engine", "errors"} <= set(graph["cli"])
    assert {"wire", "engine", "serving"} <= set(graph["dispatcher"])
    assert "dispatcher" in graph["cli"]  # serve_cmd.py starts the server: seen, and allowed below


def test_no_cycle_between_packages() -> None:
    graph = import_graph()
    try:
        graphlib.TopologicalSorter({unit: set(targets) for unit, targets in graph.items()}).prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1][::-1]  # graphlib lists it against the import direction
        where = {f"{a} -> {b}": graph[a][b] for a, b in itertools.pairwise(cycle)}
        raise AssertionError(f"import cycle {' -> '.join(cycle)}: {where}") from None


def test_the_cli_imports_the_dispatcher_only_to_start_it() -> None:
    sites = import_graph()["cli"]["dispatcher"]
    assert sites and all(site.startswith(SERVER_ENTRY + ":") for site in sites), sites


def test_the_wire_contract_sits_below_both_ends() -> None:
    graph = import_graph()
    assert not {"cli", "dispatcher"} & set(graph["wire"]), dict(graph["wire"])


def test_the_product_never_imports_its_test_tools() -> None:
    """The stand-ins, the real-model tool and the corpus helpers live in testkit/, outside the image."""
    package = ROOT / "services" / "anesbench"
    sites = [f"{path.relative_to(package)}:{node.lineno}"
             for path in package.rglob("*.py") if "v1" not in path.parts
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Import | ast.ImportFrom)
             and any(name.split(".")[0] == "anesbench_testkit"
                     for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]))]
    assert sites == []
    assert not {"standin", "realmodel"} & {p.name for p in package.iterdir()}
    assert not list(package.rglob("corpus*.py"))


# --- modules ----------------------------------------------------------------------------------------
# The CLI loads a command's machinery (grpc, duckdb, pyarrow and the modules over them) inside the
# command, so `anesbench --help` and a bad option answer at once: the one place an import of ours may
# sit in a function. Everywhere else every import is at module level, where a cycle shows.
LAZY_IMPORTS_ALLOWED = "cli"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("anesbench", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def _module_level(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The imports run when the module loads: at its top, or in a module-level ``if``/``try`` block."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If | ast.Try):
            pending += [*node.body, *node.orelse, *getattr(node, "finalbody", []),
                        *(stmt for handler in getattr(node, "handlers", []) for stmt in handler.body)]
    return found


def _targets(node: ast.Import | ast.ImportFrom, path: Path, modules: set[str]) -> list[str]:
    """The modules of ours an import loads by name: ``from anesbench.x import y`` is ``anesbench.x.y`` when
    that is a module, else ``anesbench.x``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    package = _module_name(path).split(".") if path.name == "__init__.py" else _module_name(path).split(".")[:-1]
    base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
    module = ".".join(part for part in (base, node.module or "") if part)
    named = [f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in modules]
    return named or ([module] if module in modules else [])


def module_graph() -> dict[str, dict[str, str]]:
    """module -> {imported module: "file:line"}, from module-level imports only."""
    paths = _sources()
    modules = {_module_name(path) for path in paths}
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    for path in paths:
        source = _module_name(path)
        for node in _module_level(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _targets(node, path, modules):
                if target != source:
                    graph[source].setdefault(target, f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return graph


def test_the_module_graph_sees_the_imports_it_must_see() -> None:
    graph = module_graph()
    assert "anesbench.engine.runner" in graph["anesbench.dispatcher.runs"]
    assert "anesbench.store.database" in graph["anesbench.store.async_store"]
    assert "anesbench.store" in graph["anesbench.dispatcher.server"]  # `from anesbench.store import Store`
    assert "anesbench.dispatcher.runs" in graph["anesbench.dispatcher.server"]


def test_no_cycle_between_modules() -> None:
    graph = module_graph()
    try:
        graphlib.TopologicalSorter({module: set(targets) for module, targets in graph.items()}).prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1][::-1]
        where = {f"{a} -> {b}": graph[a][b] for a, b in itertools.pairwise(cycle)}
        raise AssertionError(f"module import cycle {' -> '.join(cycle)}: {where}") from None


def test_imports_of_ours_sit_at_module_level_outside_the_cli() -> None:
    sites = []
    for path in _sources():
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == LAZY_IMPORTS_ALLOWED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = set(map(id, _module_level(tree)))
        sites += [f"{relative}:{node.lineno}" for node in ast.walk(tree)
                  if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top
                  and any(name.split(".")[0] == "anesbench" for name in _names(node))]
    assert sites == []


def _names(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return ["anesbench"] if node.level else [node.module or ""]
