"""Which implementation serves each resource key, per deployment: decided here and nowhere else.

`ZFISH_DEPLOYMENT=local` (default): a folder lake, a JSON catalog, Spark in process, DuckDB.
"""

from __future__ import annotations

from typing import Any

from zfish_assets import settings
from zfish_assets.io_managers.hudi import HudiIOManager
from zfish_assets.resources.catalog import LocalCatalog
from zfish_assets.resources.engines import LocalSparkEngine
from zfish_assets.resources.lake import LocalLake
from zfish_assets.resources.query import DuckDBQueryEngine
from zfish_assets.resources.simulator import SimulatorResource

DEPLOYMENTS = ("local",)


def local_resources() -> dict[str, Any]:
    lake = LocalLake()
    catalog = LocalCatalog()
    return {
        "lake": lake,
        "catalog": catalog,
        "query": DuckDBQueryEngine(catalog=catalog, lake=lake),
        "simulator": SimulatorResource(),
        "hudi_io_manager": HudiIOManager(engine=LocalSparkEngine(), catalog=catalog, lake=lake),
    }


def resources_for(deployment: str | None = None) -> dict[str, Any]:
    """The resource set of `deployment` (default: `ZFISH_DEPLOYMENT`, else local)."""
    deployment = deployment or settings.env("ZFISH_DEPLOYMENT", "local")
    if deployment == "local":
        return local_resources()
    raise ValueError(f"ZFISH_DEPLOYMENT={deployment!r} is not one of {', '.join(DEPLOYMENTS)}")
