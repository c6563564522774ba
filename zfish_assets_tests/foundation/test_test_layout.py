"""The suite's own layout: a test module imports helpers from `zfish_assets_tests.support`, never another
test module or a conftest (fixtures reach a test through pytest, helpers through `support/`), and every
module of the suite that is not a test module, a conftest or a package's `__init__` is in `support/`.

A test module importing another runs the other's module-level code and registers its fixtures twice;
a conftest imported by name is a second copy of the module pytest already loaded as a plugin."""

from __future__ import annotations

import ast
from pathlib import Path

SUITE = Path(__file__).resolve().parent.parent
PACKAGE = SUITE.name
SUPPORT = f"{PACKAGE}.support"


def module_name(path: Path) -> str:
    parts = path.relative_to(SUITE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, module) of every import in `path` (or in `source` as if it were `path`), lazy ones included;
    relative imports resolved, and `from package import name` counted as the module `package.name`."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join([*package[:len(package) - node.level + 1], *([node.module] if node.module else [])]) \
                if node.level else node.module
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def is_test_module(name: str) -> bool:
    last = name.split(".")[-1]
    return last.startswith("test_") or last == "conftest"


def suite_modules() -> list[Path]:
    return sorted(p for p in SUITE.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_module_of_the_suite_imports_a_test_module_or_a_conftest():
    known = {module_name(p) for p in suite_modules()}
    wrong = [f"{path.relative_to(SUITE.parent)}:{line} imports {name}: move what it needs to {SUPPORT}"
             for path in suite_modules() for line, name in imported(path)
             if name in known and is_test_module(name)]
    assert not wrong, "\n".join(wrong)


def test_helper_modules_live_in_support():
    stray = [str(p.relative_to(SUITE.parent)) for p in suite_modules()
             if not is_test_module(module_name(p)) and p.name != "__init__.py"
             and not module_name(p).startswith(SUPPORT + ".")]
    assert not stray, f"helper modules outside {SUPPORT.replace('.', '/')}/ (move them there): {stray}"


def test_the_rule_sees_each_way_of_importing_a_test_module():
    """The rule itself, on source written here (nothing is added to the suite)."""
    source = ("from zfish_assets_tests.assets.test_joined import START\n"
              "from zfish_assets_tests import conftest\n"
              "def f():\n    from .test_layout import layout\n")
    names = {name for _, name in imported(SUITE / "foundation" / "test_probe.py", source)}
    assert {"zfish_assets_tests.assets.test_joined", "zfish_assets_tests.conftest",
            "zfish_assets_tests.foundation.test_layout"} <= names
