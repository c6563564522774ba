"""The package's modules stay readable: none over 400 lines and no function over 50, each module
name used once across both sides, and nothing from Dagster's private modules."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from zfish_assets import settings

ROOT = settings.REPO_ROOT
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 50


def package_modules() -> list[Path]:
    return sorted([*(ROOT / "zfish_assets").rglob("*.py"), *(ROOT / "glue_scripts").rglob("*.py")])


def test_no_module_runs_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in package_modules()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"split these by role (lines): {long}"


def test_no_function_runs_over_50_lines():
    long = [f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for p in package_modules() for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, "\n".join(long)


def test_no_module_name_is_used_twice():
    """One name per thing: a module name (`__init__` aside) names one module across both sides."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in package_modules():
        if path.name != "__init__.py":
            by_name[path.name].append(str(path.relative_to(ROOT)))
    repeated = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not repeated, f"rename one of each: {repeated}"


def test_engine_names_one_thing():
    """"engine" is what runs the join (`resources/engine.py`: local Spark or the Glue job); no other
    package or module is named for it."""
    named = [str(p.relative_to(ROOT)) for p in package_modules() if "engine" in p.relative_to(ROOT).as_posix()]
    assert named == ["zfish_assets/resources/engine.py"], named


def test_nothing_comes_from_dagsters_private_modules():
    """Dagster's `_`-prefixed modules change without notice between releases: only public names are used."""
    private = []
    for path in package_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
                     if isinstance(node, ast.ImportFrom) and not node.level else [])
            private += [f"{path.relative_to(ROOT)}:{node.lineno} {name}" for name in names
                        if name.split(".")[0].startswith("dagster") and any(p.startswith("_") for p in name.split(".")[1:])]
    assert not private, "\n".join(private)
