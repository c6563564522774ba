"""The house's one rule: imports point one way. A module imports only from its own layer or below
(the layers are the package docstring's), and `glue_scripts/` never imports zfish_assets or dagster."""

from __future__ import annotations

import ast
from pathlib import Path

from zfish_assets import settings

ROOT = settings.REPO_ROOT
# Bottom to top; a module's layer is that of its longest matching prefix.
LAYERS = [
    ("glue_scripts",),
    ("zfish_assets.settings", "zfish_assets.dagster_names", "zfish_assets.partitions", "zfish_assets.retries",
     "zfish_assets.runtimes", "zfish_assets.synthetic", "zfish_assets"),
    ("zfish_assets.backends",),
    ("zfish_assets.resources",),
    ("zfish_assets.domain",),
    ("zfish_assets.io_managers",),
    ("zfish_assets.assets",),
    ("zfish_assets.automation", "zfish_assets.jobs", "zfish_assets.schedules", "zfish_assets.sensors"),
    ("zfish_assets.definitions", "zfish_assets.deployments"),
    ("zfish_assets.tools",),
]


def layer(module: str) -> int | None:
    matches = [(len(prefix), rank) for rank, prefixes in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import, at any depth (lazy imports count), `typing.TYPE_CHECKING` blocks aside."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names
                         if layer(f"{node.module}.{alias.name}") != layer(node.module))
        for child in ast.iter_child_nodes(node):
            visit(child)
    visit(tree)
    return found


def test_imports_point_one_way():
    upward = []
    for path in sorted([*(ROOT / "zfish_assets").rglob("*.py"), *(ROOT / "glue_scripts").rglob("*.py")]):
        importer = module_name(path)
        own = layer(importer)
        assert own is not None, f"{importer} is in no layer: add it to LAYERS and the package docstring"
        for line, imported in imports(ast.parse(path.read_text())):
            if importer.startswith("glue_scripts") and imported.split(".")[0] in ("zfish_assets", "dagster"):
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {imported} (glue_scripts ships alone)")
            target = layer(imported)
            if target is not None and target > own:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {imported}, a layer above it")
    assert not upward, "\n".join(upward)


def test_every_layer_is_said_in_the_package_docstring():
    import zfish_assets

    for prefixes in LAYERS[2:]:
        assert any(p.removeprefix("zfish_assets.") in zfish_assets.__doc__ for p in prefixes), prefixes
