"""Which implementation serves each resource key, per deployment: decided here and nowhere else.

A deployment is five parts (`Parts`), each a choice: `ZFISH_DEPLOYMENT=local` (default) is a folder
lake, a JSON catalog, Spark in process, DuckDB and zfish's own crawl; `aws` is the lake on S3, the
Glue Data Catalog, the deployed Glue job, DuckDB reading S3 (Athena on request: its answers to the
checks cannot be proven without an account) and zfish's own crawl. Each part can be chosen on its
own (`ZFISH_LAKE`, `ZFISH_CATALOG`, `ZFISH_ENGINE`, `ZFISH_QUERY`, `ZFISH_CRAWL_MODE`; see
`settings.py`), and `Parts.check` refuses combinations that cannot work, saying why. Every AWS
resource shares one `AWSConnection` (region and endpoint stated once).

>>> Parts.of("local")
Parts(lake='local', catalog='local', engine='spark', query='duckdb', crawl_mode='partitions')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from glue_scripts.zfish_etl import layout
from zfish_assets import settings
from zfish_assets.io_managers.hudi_io_manager import HudiIOManager
from zfish_assets.resources.aws_connection import AWSConnection
from zfish_assets.resources.data_catalog import GlueCatalog, LocalCatalog
from zfish_assets.resources.engine import GlueJobEngine, LocalSparkEngine
from zfish_assets.resources.lake import LocalLake, S3Lake
from zfish_assets.resources.query import AthenaQuery, DuckDBQuery
from zfish_assets.resources.simulator import SimulatorResource
from zfish_assets.settings import CatalogKind, CrawlMode, Deployment, EngineKind, LakeKind, QueryKind


@dataclass(frozen=True)
class Parts:
    """The choice of each part of a deployment (the field names are the settings' without `ZFISH_`)."""

    lake: LakeKind
    catalog: CatalogKind
    engine: EngineKind
    query: QueryKind
    crawl_mode: CrawlMode

    @classmethod
    def of(cls, deployment: Deployment) -> Parts:
        """`deployment`'s parts, each overridden by its variable when set, checked."""
        chosen = {f.name: getattr(settings, f.name.upper()).get() for f in fields(cls)}
        return replace(DEFAULT_PARTS[deployment], **{k: v for k, v in chosen.items() if v is not None}).check()

    def check(self) -> Parts:
        """These parts, or a ValueError naming the combination that cannot work and why."""
        if self.engine == "glue" and self.lake != "s3":
            raise ValueError("ZFISH_ENGINE=glue needs the lake on S3 (ZFISH_LAKE=s3): a Glue job cannot read this machine")
        if self.crawl_mode == "crawler" and (self.lake != "s3" or self.catalog != "glue"):
            raise ValueError("ZFISH_CRAWL_MODE=crawler needs the lake on S3 and the Glue catalog "
                             "(ZFISH_LAKE=s3, ZFISH_CATALOG=glue): a Glue crawler reads S3 and writes the Data Catalog")
        if self.query == "athena" and self.catalog != "glue":
            raise ValueError("ZFISH_QUERY=athena needs the Glue catalog (ZFISH_CATALOG=glue): Athena reads its tables")
        return self


DEFAULT_PARTS: dict[Deployment, Parts] = {
    "local": Parts(lake="local", catalog="local", engine="spark", query="duckdb", crawl_mode="partitions"),
    "aws": Parts(lake="s3", catalog="glue", engine="glue", query="duckdb", crawl_mode="partitions"),
}


def _bucket() -> Any:
    """The lake's bucket for a resource field, or a ValueError when unset."""
    if not settings.S3_BUCKET.is_set():
        raise ValueError("ZFISH_S3_BUCKET must be set: the lake's bucket")
    return settings.S3_BUCKET.config()


def _under_lake(key: str) -> str:
    """The S3 URI of a key (a `layout` key) under the lake prefix."""
    return f"s3://{settings.S3_BUCKET.raw()}/{settings.lake_prefix()}/{key}"


# Resource key -> the part's choice -> how to build it (from the parts, the AWS connection and the
# resources built before it).
Build = Callable[[Parts, AWSConnection, dict[str, Any]], Any]
IMPLEMENTATIONS: dict[str, tuple[str, dict[str, Build]]] = {
    "lake": ("lake", {
        "local": lambda parts, aws, built: LocalLake(),
        # On Glue, Spark addresses the bucket as s3:// (EMRFS); locally through s3a.
        "s3": lambda parts, aws, built: S3Lake(bucket=_bucket(), aws=aws,
                                               spark_scheme="s3" if parts.engine == "glue" else "s3a"),
    }),
    "catalog": ("catalog", {
        "local": lambda parts, aws, built: LocalCatalog(),
        "glue": lambda parts, aws, built: GlueCatalog(
            aws=aws, crawl_mode=parts.crawl_mode,
            crawler_timeout_s=settings.CRAWLER_TIMEOUT_S.get(), crawler_poll_interval_s=settings.CRAWLER_POLL_S.get()),
    }),
    "engine": ("engine", {
        "spark": lambda parts, aws, built: LocalSparkEngine(s3a=parts.lake == "s3", aws=aws),
        "glue": lambda parts, aws, built: GlueJobEngine(
            job_name=settings.GLUE_JOB_NAME.config(), context_prefix=_under_lake(layout.pipes_dir()), aws=aws,
            timeout_s=settings.GLUE_TIMEOUT_S.get(), poll_interval_s=settings.GLUE_POLL_S.get()),
    }),
    "query": ("query", {
        "duckdb": lambda parts, aws, built: DuckDBQuery(catalog=built["catalog"], lake=built["lake"]),
        "athena": lambda parts, aws, built: AthenaQuery(
            workgroup=settings.ATHENA_WORKGROUP.config(), aws=aws,
            output_location=settings.ATHENA_OUTPUT.config() or (
                _under_lake(layout.athena_results_dir() + "/") if settings.S3_BUCKET.is_set() else "")),
    }),
}


def resources_for(deployment: Deployment | None = None) -> dict[str, Any]:
    """The resource set of `deployment` (default: `ZFISH_DEPLOYMENT`), each part overridable by its variable."""
    parts = Parts.of(deployment or settings.DEPLOYMENT.get())
    aws = AWSConnection.from_settings()
    built: dict[str, Any] = {}
    for key, (part, choices) in IMPLEMENTATIONS.items():
        built[key] = choices[getattr(parts, part)](parts, aws, built)
    return {
        "lake": built["lake"],
        "catalog": built["catalog"],
        "query": built["query"],
        "simulator": SimulatorResource(),
        "hudi_io_manager": HudiIOManager(engine=built["engine"], catalog=built["catalog"], lake=built["lake"]),
    }
