"""Every library pyproject.toml declares is imported by the project's code (or is a command it runs)."""

from __future__ import annotations

import ast
import re
import tomllib

from zfish_assets import settings

ROOT = settings.REPO_ROOT
# Declared and not imported: why each is there.
NOT_IMPORTED = {"dagster-webserver": "`dagster dev` / `dg dev` serve the UI with it",
                "dagster-dg-cli": "the `dg` command ([tool.dg])",
                "pandas": "a pin for pyspark[connect]'s client (pyspark 3.5 predates pandas 3)"}


def declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [re.split(r"[<>=!\[ ;]", spec, maxsplit=1)[0] for spec in project["dependencies"]]


def imported_top_levels() -> set[str]:
    found: set[str] = set()
    for path in [*(ROOT / "zfish_assets").rglob("*.py"), *(ROOT / "glue_scripts").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "lazy_module"
                  and node.args and isinstance(node.args[0], ast.Constant)):  # imported where first used
                found.add(node.args[0].value.split(".")[0])
    return found


def test_no_declared_library_stays_unimported():
    imported = imported_top_levels()
    unused = [name for name in declared() if name not in NOT_IMPORTED and name.replace("-", "_") not in imported]
    assert not unused, f"declared in pyproject.toml, imported nowhere: {unused}"
