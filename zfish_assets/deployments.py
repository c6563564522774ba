"""Which implementation serves each resource key, per deployment: decided here and nowhere else.

A deployment is five parts (`Parts`), each a choice: `ZFISH_DEPLOYMENT=local` (default) is a folder
lake, a JSON catalog, Spark in process, DuckDB and zfish's own crawl; `aws` is the lake on S3, the
Glue Data Catalog, the deployed Glue job, DuckDB reading S3 (Athena on request: its answers to the
checks cannot be proven without an account) and zfish's own crawl. Each part can be chosen on its
own (`ZFISH_LAKE`, `ZFISH_CATALOG`, `ZFISH_ENGINE`, `ZFISH_QUERY`, `ZFISH_CRAWL_MODE`; see
`settings.py`), and `Parts.check` refuses combinations that cannot work, saying why. Every AWS
resource shares one `AWSConnection` (region and endpoint stated once).

This is where resources get their values, and the only place: no resource reads a setting itself (a
resource built elsewhere, by a test or a tool, holds what it is given). A field only runs read takes its
setting's `config()` (an `EnvVar` the UI shows); a field read when the definitions load, its value.

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
from zfish_assets.synthetic import SimSettings, format_delay_spread
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
    return f"s3://{settings.S3_BUCKET.get()}/{settings.lake_prefix()}/{key}"


def _in_data_dir(*parts: str) -> str:
    return str(settings.data_dir().joinpath(*parts))


def _aws_connection() -> AWSConnection:
    """The region, endpoint and KMS key of every AWS client."""
    return AWSConnection(region_name=settings.AWS_REGION.config(), endpoint_url=settings.AWS_ENDPOINT_URL.config(),
                         kms_key_arn=settings.KMS_KEY_ARN.config())


def _simulator() -> SimulatorResource:
    sim = SimSettings.from_env()  # every simulator setting, checked together (a bad one named)
    return SimulatorResource(
        start=sim.start.isoformat(), fish_per_day=sim.fish_per_day, images_per_fish=sim.images_per_fish,
        label_delay_days=sim.label_delay_days, seed=sim.seed,
        label_delay_spread=format_delay_spread(sim.label_delay_spread))


# Resource key -> the part's choice -> how to build it (from the parts, the AWS connection and the
# resources built before it).
Build = Callable[[Parts, AWSConnection, dict[str, Any]], Any]
IMPLEMENTATIONS: dict[str, tuple[str, dict[str, Build]]] = {
    "lake": ("lake", {
        "local": lambda parts, aws, built: LocalLake(root=_in_data_dir("lake"), prefix=settings.lake_prefix()),
        # On Glue, Spark addresses the bucket as s3:// (EMRFS); locally through s3a.
        "s3": lambda parts, aws, built: S3Lake(bucket=_bucket(), prefix=settings.lake_prefix(), aws=aws,
                                               cache_dir=_in_data_dir("cache", "s3"),
                                               spark_scheme="s3" if parts.engine == "glue" else "s3a"),
    }),
    "catalog": ("catalog", {
        "local": lambda parts, aws, built: LocalCatalog(root=_in_data_dir("catalog"),
                                                        database=settings.database()),
        "glue": lambda parts, aws, built: GlueCatalog(
            aws=aws, database=settings.database(), crawl_mode=parts.crawl_mode,
            crawler_timeout_s=settings.CRAWLER_TIMEOUT_S.get(), crawler_poll_interval_s=settings.CRAWLER_POLL_S.get()),
    }),
    "engine": ("engine", {
        "spark": lambda parts, aws, built: LocalSparkEngine(master=settings.SPARK_MASTER.get(),
                                                            s3a=parts.lake == "s3", aws=aws),
        "glue": lambda parts, aws, built: GlueJobEngine(
            job_name=settings.GLUE_JOB_NAME.config(), context_prefix=_under_lake(layout.pipes_dir()), aws=aws,
            timeout_s=settings.GLUE_TIMEOUT_S.get(), poll_interval_s=settings.GLUE_POLL_S.get()),
    }),
    "query": ("query", {
        "duckdb": lambda parts, aws, built: DuckDBQuery(catalog=built["catalog"], lake=built["lake"]),
        "athena": lambda parts, aws, built: AthenaQuery(
            database=settings.database(), workgroup=settings.ATHENA_WORKGROUP.config(), aws=aws,
            output_location=settings.ATHENA_OUTPUT.config() or (
                _under_lake(layout.athena_results_dir() + "/") if settings.S3_BUCKET.is_set() else "")),
    }),
}


def resources_for(deployment: Deployment | None = None) -> dict[str, Any]:
    """The resource set of `deployment` (default: `ZFISH_DEPLOYMENT`), each part overridable by its variable."""
    parts = Parts.of(deployment or settings.DEPLOYMENT.get())
    aws = _aws_connection()
    built: dict[str, Any] = {}
    for key, (part, choices) in IMPLEMENTATIONS.items():
        built[key] = choices[getattr(parts, part)](parts, aws, built)
    return {
        "lake": built["lake"],
        "catalog": built["catalog"],
        "query": built["query"],
        "simulator": _simulator(),
        "hudi_io_manager": HudiIOManager(engine=built["engine"], catalog=built["catalog"], lake=built["lake"]),
    }
