"""The layers point one way: api, jobs → graph → recsys, entity_resolution → c360 core; only c360/cli.py knows all.

Every import is read from the source (module level and inside functions), so a lazy import cannot hide a wrong
direction. Packages of one layer do not import each other (api and jobs; recsys and entity_resolution).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# repository folder -> installed package
FOLDERS = {"c360": "c360", "recsys": "c360.recsys", "entity_resolution": "c360.entity_resolution",
           "graph": "c360.graph", "api": "c360.api", "jobs": "c360.jobs", "data": "c360.data"}
# higher number = higher layer; a module may import only from strictly lower layers (or its own package)
LAYERS = {"c360.cli": 4, "c360.api": 3, "c360.jobs": 3, "c360.graph": 2, "c360.recsys": 1,
          "c360.entity_resolution": 1, "c360.data": 0, "c360": 0}

# scripts that start the whole CLI: `python -m c360`, and the file handed to spark-submit
ENTRY_POINTS = {"c360.__main__", "c360.jobs.submit"}


def _unit(module: str) -> str:
    """The layered unit a module belongs to: its package, `c360.cli` (with `python -m c360`), or the core."""
    if module in ENTRY_POINTS:
        return "c360.cli"
    for unit in sorted(LAYERS, key=len, reverse=True):
        if module == unit or module.startswith(unit + "."):
            return unit
    return "c360"


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    parts = [FOLDERS[rel.parts[0]], *rel.parts[1:]]
    parts[-1] = parts[-1].removesuffix(".py")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(".".join(parts).split("."))


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (annotations only, never imported at run time)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _imports(path: Path, module: str, submodules: bool = False) -> set[str]:
    """The c360 modules `module` imports; with `submodules`, also `pkg.name` for every `from pkg import name`."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            found.add(source)
            if submodules:  # `from pkg import module` imports the module
                found |= {f"{source}.{a.name}" for a in node.names}
    return {m for m in found if m == "c360" or m.startswith("c360.")}


def _product_modules(root: Path = REPO):
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            yield path, _module_name(path, root)


def layer_violations(root: Path = REPO) -> list[str]:
    """Every import that points up or sideways, as 'importer -> imported'."""
    bad = []
    for path, module in _product_modules(root):
        here = _unit(module)
        for imported in sorted(_imports(path, module)):
            there = _unit(imported)
            if there == here:
                continue
            if LAYERS[there] >= LAYERS[here]:
                bad.append(f"{path.relative_to(root)}: {module} -> {imported}")
    return bad


def test_layers_point_one_way():
    assert layer_violations() == []


def test_only_the_cli_knows_every_package():
    """c360/cli.py registers every package's commands; nothing else reaches the two top packages."""
    from c360.cli import COMMAND_MODULES

    assert {_unit(m) for m in COMMAND_MODULES} == {"c360.api", "c360.jobs", "c360.graph", "c360.recsys",
                                                    "c360.entity_resolution"}
    outside = [f"{module} -> {m}" for _, module in _product_modules() for m in _imports(_, module)
               if _unit(m) in ("c360.api", "c360.jobs") and _unit(m) != _unit(module)]
    assert outside == []


def test_the_check_sees_a_wrong_direction(tmp_path):
    """A core module importing a package lazily, and graph importing jobs relatively, are both reported."""
    (tmp_path / "c360").mkdir()
    (tmp_path / "c360" / "oops.py").write_text("def f():\n    from c360.api.app import create_app\n    return create_app\n")
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "__init__.py").write_text("")
    (tmp_path / "graph" / "up.py").write_text("from ..jobs import steps\nfrom .store import GraphStore\n")
    assert layer_violations(tmp_path) == ["c360/oops.py: c360.oops -> c360.api.app",
                                          "graph/up.py: c360.graph.up -> c360.jobs"]


def import_cycles(root: Path = REPO) -> list[list[str]]:
    """Cycles among the product's modules (imports at any depth of a module count), each as a list of modules."""
    modules = dict((module, path) for path, module in _product_modules(root))
    graph = {m: sorted(i for i in _imports(p, m, submodules=True) if i in modules and i != m)
             for m, p in modules.items()}
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    return cycles


def test_no_import_cycles():
    """Not even through imports inside functions: a lazy import that closes a cycle hides a wrong dependency."""
    assert import_cycles() == []


def test_the_cycle_check_sees_a_lazy_cycle(tmp_path):
    (tmp_path / "recsys").mkdir()
    (tmp_path / "recsys" / "__init__.py").write_text("")
    (tmp_path / "recsys" / "base.py").write_text("def load():\n    from . import models\n    return models\n")
    (tmp_path / "recsys" / "models.py").write_text("from .base import load\n")
    (tmp_path / "recsys" / "hints.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                                 "    from .models import load\n")
    assert import_cycles(tmp_path) == [["c360.recsys.base", "c360.recsys.models", "c360.recsys.base"]]
