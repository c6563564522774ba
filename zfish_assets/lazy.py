"""Heavy libraries imported where first used, so that loading the definitions stays cheap.

A code load (`dg dev`, each run's process, the daemon's sensor ticks) imports every module the
definitions name; pyarrow, pandas, DuckDB, hudi-rs and PySpark are needed only once a step reads or
writes data, and they doubled what the load cost beyond Dagster's own imports. Not
`importlib.util.LazyLoader`: finding a submodule's spec (`pyarrow.compute`) imports its parent
package, which is the cost avoided here.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class lazy_module(ModuleType):  # noqa: N801 - used as `pa = lazy_module("pyarrow")`, in place of an import
    """A stand-in for the module `name`, which is imported at the first attribute read."""

    def __init__(self, name: str) -> None:
        super().__init__(name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attr)
