"""The job's code loads on every Python a Glue runtime runs it on (3.11 for 5.x, 3.13 for 6.0)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

JOB_ROOT = Path(__file__).resolve().parents[1] / "glue_scripts"
MODULES = sorted(".".join(p.relative_to(JOB_ROOT.parent).with_suffix("").parts) for p in JOB_ROOT.rglob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_every_module_of_the_job_imports(module):
    importlib.import_module(module)


def docstrings(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of the module's, every class's and every function's docstring."""
    owners = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)))]
    found = []
    for owner in owners:
        text = ast.get_docstring(owner, clean=False)
        if text is not None:
            found.append((owner.body[0].lineno, text))
    return found


def test_no_docstring_holds_what_python_3_13_cannot_compile():
    """Python 3.13 strips docstrings' indentation when it compiles them, through UTF-8: a docstring
    holding an unpaired surrogate (an escape such as `\\ud800` in a non-raw docstring) fails the whole
    module's import there with UnicodeEncodeError, while 3.11 loads it. Glue 6.0 runs 3.13."""
    refused = []
    for path in sorted(JOB_ROOT.rglob("*.py")):
        for line, text in docstrings(ast.parse(path.read_text(encoding="utf-8"))):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                refused.append(f"{path.relative_to(JOB_ROOT.parent)}:{line}: {exc.object[exc.start]!r} in a docstring "
                               "(write its backslash twice, or make the docstring raw)")
    assert not refused, "\n".join(refused)
