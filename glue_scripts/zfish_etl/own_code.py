"""The job's own code as a digest, so a commit can say which code built its rows.

An incremental run passes over every day whose inputs are those its stored rows were built from
(`label_state`). The code is an input as much as the files: a change to how rows are judged, joined
or labeled makes other rows from the same files, and the Dagster side already counts other code as
news (`news.py`, the package's digest). The job computes its own digest from the sources of the
modules it runs, wherever they were loaded from (this checkout's files, or the package zip Glue
runs), so a run started any other way (the command line, a test, a script) is judged by the same rule.
"""

from __future__ import annotations

import hashlib
import importlib.util
import pkgutil
from functools import cache


@cache
def source_digest(package: str = "glue_scripts") -> str:
    """The SHA-256 of the source of every module of `package` (by module name, in name order), as loaded:
    equal for the same code from a folder or from a zip; a module without source counts as its name."""
    root = importlib.util.find_spec(package)
    digest = hashlib.sha256()
    for info in sorted(pkgutil.walk_packages(root.submodule_search_locations, f"{package}."), key=lambda i: i.name):
        spec = importlib.util.find_spec(info.name)
        source = spec.loader.get_source(info.name) if spec is not None and spec.loader is not None else None
        digest.update(f"{info.name}\0{source or ''}\0".encode(errors="surrogateescape"))
    return digest.hexdigest()
