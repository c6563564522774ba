"""No import circle among zfish's modules: the graph of which module imports which (lazy imports
included, `typing.TYPE_CHECKING` blocks aside) has no cycle. A circle means neither module can be
understood, tested or imported alone; a lazy import inside a function only hides one."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("zfish_assets", "glue_scripts")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, modules: set[str]) -> set[str]:
    """The modules of `modules` that `tree` imports, at any depth; `from a import b` counts `a.b` when that
    is a module, else `a`. Importing a package's submodule is not an import of the package's `__init__`
    graph-wise beyond what Python runs, so the package itself is counted only when named."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)
    visit(tree)
    return found & modules


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    paths = sorted(p for package in PACKAGES for p in (root / package).rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported(ast.parse(p.read_text(), str(p)), modules) - {module_name(p)} for p in paths}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as the modules along it (first repeated last), or None: a depth-first search."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_no_import_circle_among_zfish_modules():
    found = cycle(import_graph())
    assert found is None, (f"import circle: {' -> '.join(found)}: move what both need into a module below "
                           "them, or pass the value in")


def test_the_search_finds_a_circle_however_deep_and_only_then():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    assert cycle({"x": {"x.y"}, "x.y": {"z"}, "z": {"x.y"}}) == ["x.y", "z", "x.y"]
