"""Which implementation serves each resource key, per deployment: decided here and nowhere else.

`ZFISH_DEPLOYMENT=local` (default): a folder lake, a JSON catalog, Spark in process, DuckDB.
`ZFISH_DEPLOYMENT=aws`: the lake on S3, the Glue Data Catalog, the deployed Glue job, and DuckDB
reading S3 (Athena on request: its answers to the checks cannot be proven without an account).
Each part can be chosen on its own: `ZFISH_LAKE=local|s3`, `ZFISH_CATALOG=local|glue`,
`ZFISH_ENGINE=spark|glue`, `ZFISH_QUERY=duckdb|athena`, and `ZFISH_CRAWL_MODE=partitions|crawler`
(how the crawled assets register a day; read at run time by `domain/crawler.py`, checked here).
AWS settings come through Dagster's `EnvVar` (resolved at run time): `ZFISH_S3_BUCKET`,
`ZFISH_AWS_REGION`, optional `ZFISH_AWS_ENDPOINT_URL` (every AWS client), `ZFISH_GLUE_JOB_NAME`
(engine glue; default `zfish-joined-fish-data`, as `zfish deploy`'s), `ZFISH_ATHENA_WORKGROUP` and `ZFISH_ATHENA_OUTPUT` (query athena).
"""

from __future__ import annotations

from typing import Any

from dagster import EnvVar

from zfish_assets import settings
from zfish_assets.io_managers.hudi import HudiIOManager
from zfish_assets.resources.catalog import GlueCatalog, LocalCatalog
from zfish_assets.resources.engines import DEFAULT_JOB_NAME, GlueJobEngine, LocalSparkEngine
from zfish_assets.resources.lake import LocalLake, S3Lake
from zfish_assets.resources.query import AthenaQueryEngine, DuckDBQueryEngine
from zfish_assets.resources.simulator import SimulatorResource

DEPLOYMENTS = ("local", "aws")

# Each part: its environment variable and the choice of each deployment.
PARTS: dict[str, dict[str, str]] = {
    "ZFISH_LAKE": {"local": "local", "aws": "s3"},
    "ZFISH_CATALOG": {"local": "local", "aws": "glue"},
    "ZFISH_ENGINE": {"local": "spark", "aws": "glue"},
    "ZFISH_QUERY": {"local": "duckdb", "aws": "duckdb"},
    "ZFISH_CRAWL_MODE": {"local": "partitions", "aws": "partitions"},
}
CHOICES: dict[str, tuple[str, ...]] = {
    "ZFISH_LAKE": ("local", "s3"),
    "ZFISH_CATALOG": ("local", "glue"),
    "ZFISH_ENGINE": ("spark", "glue"),
    "ZFISH_QUERY": ("duckdb", "athena"),
    "ZFISH_CRAWL_MODE": ("partitions", "crawler"),
}


def part(name: str, deployment: str) -> str:
    """The choice of `name` (e.g. `ZFISH_ENGINE`) in `deployment`, its variable overriding, checked."""
    value = settings.env(name, PARTS[name][deployment])
    if value not in CHOICES[name]:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(CHOICES[name])}")
    return value


def _env(name: str, default: str = ""):
    """`EnvVar(name)` when set (resolved by Dagster at run time), else the default."""
    return EnvVar(name) if settings.env(name, "") else default


def _required(name: str, what: str):
    if not settings.env(name, ""):
        raise ValueError(f"{name} must be set: {what}")
    return EnvVar(name)


def configured_resources(deployment: str) -> dict[str, Any]:
    """The resource set of `deployment`, with each part overridable by its `ZFISH_*` variable."""
    region, endpoint = _env("ZFISH_AWS_REGION"), _env("ZFISH_AWS_ENDPOINT_URL")
    lake_kind, engine_kind = part("ZFISH_LAKE", deployment), part("ZFISH_ENGINE", deployment)
    if lake_kind == "s3":
        # On Glue, Spark addresses the bucket as s3:// (EMRFS); locally through s3a.
        lake = S3Lake(bucket=_required("ZFISH_S3_BUCKET", "the lake's bucket"), region=region, endpoint_url=endpoint,
                      spark_scheme="s3" if engine_kind == "glue" else "s3a")
    else:
        lake = LocalLake()
    catalog = GlueCatalog(region=region, endpoint_url=endpoint) if part("ZFISH_CATALOG", deployment) == "glue" \
        else LocalCatalog()
    if engine_kind == "glue":
        if lake_kind != "s3":
            raise ValueError("ZFISH_ENGINE=glue needs the lake on S3 (ZFISH_LAKE=s3): a Glue job cannot read this machine")
        bucket = settings.env("ZFISH_S3_BUCKET", "")
        engine = GlueJobEngine(
            job_name=_env("ZFISH_GLUE_JOB_NAME", DEFAULT_JOB_NAME),
            result_prefix=f"s3://{bucket}/{settings.lake_prefix()}/_zfish/job-results",
            region=region, endpoint_url=endpoint,
            timeout_s=float(settings.env("ZFISH_GLUE_TIMEOUT_S", str(3 * 3600))),
            poll_interval_s=float(settings.env("ZFISH_GLUE_POLL_S", "15")),
        )
    else:
        engine = LocalSparkEngine(s3a=lake_kind == "s3", s3_region=region, s3_endpoint_url=endpoint)
    if part("ZFISH_CRAWL_MODE", deployment) == "crawler" and (lake_kind != "s3" or not isinstance(catalog, GlueCatalog)):
        raise ValueError("ZFISH_CRAWL_MODE=crawler needs the lake on S3 and the Glue catalog "
                         "(ZFISH_LAKE=s3, ZFISH_CATALOG=glue): a Glue crawler reads S3 and writes the Data Catalog")
    if part("ZFISH_QUERY", deployment) == "athena":
        if not isinstance(catalog, GlueCatalog):
            raise ValueError("ZFISH_QUERY=athena needs the Glue catalog (ZFISH_CATALOG=glue): Athena reads its tables")
        bucket = settings.env("ZFISH_S3_BUCKET", "")
        query = AthenaQueryEngine(
            workgroup=_env("ZFISH_ATHENA_WORKGROUP", "primary"),
            output_location=_env("ZFISH_ATHENA_OUTPUT",
                                 f"s3://{bucket}/{settings.lake_prefix()}/_zfish/athena-results/" if bucket else ""),
            region=region, endpoint_url=endpoint,
        )
    else:
        query = DuckDBQueryEngine(catalog=catalog, lake=lake)
    return {
        "lake": lake,
        "catalog": catalog,
        "query": query,
        "simulator": SimulatorResource(),
        "hudi_io_manager": HudiIOManager(engine=engine, catalog=catalog, lake=lake),
    }


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
    if deployment == "local" and not any(settings.env(name, "") for name in PARTS):
        return local_resources()
    if deployment in DEPLOYMENTS:
        return configured_resources(deployment)
    raise ValueError(f"ZFISH_DEPLOYMENT={deployment!r} is not one of {', '.join(DEPLOYMENTS)}")
