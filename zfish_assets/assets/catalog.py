"""Catalog: crawling a landed day registers it, as the walkthrough's Glue crawlers do.

A day that is not registered is not queryable. Day D of `observations` reads day D of
`raw_observations`; the same for outcomes.
"""


import time

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)

from zfish_assets.crawl import crawl_day
from zfish_assets.resources.catalog import Catalog
from zfish_assets.resources.lake import Lake
from zfish_assets.retries import retry_transient


def crawled_asset(table: str, partitions: DailyPartitionsDefinition) -> AssetsDefinition:
    """The catalog table of one raw table; materializing day D crawls and registers `day=D`."""

    @asset(
        name=table,
        partitions_def=partitions,
        deps=[AssetDep(f"raw_{table}")],
        group_name="catalog",
        kinds={"glue", "athena", "duckdb"},
        description=f"The crawled `{table}` table, partitioned by day: registered days are queryable.",
        owners=["team:data-platform"],
    )
    def _crawled(context: AssetExecutionContext, lake: Lake, catalog: Catalog) -> MaterializeResult:
        day = context.partition_key
        started = time.monotonic()
        with retry_transient(context.retry_number, f"crawling {table} day={day}"):
            crawled = crawl_day(lake, catalog, table, day)
        if crawled.registered:
            context.log.info(f"registered {catalog.database}.{table} day={day}: {crawled.rows} rows, {crawled.files} files")
        else:
            context.log.info(f"{table} day={day} has no files: nothing to register")
        metadata = {
            "dagster/row_count": crawled.rows,
            "files": crawled.files,
            "registered": crawled.registered,
            "location": MetadataValue.path(crawled.location),
            "table": f"{catalog.database}.{table}",
            "duration_s": round(time.monotonic() - started, 3),
        }
        if crawled.columns:
            metadata["dagster/column_schema"] = TableSchema(
                columns=[TableColumn(n, t) for n, t in (*crawled.columns, ("day", "string"))]
            )
        return MaterializeResult(metadata=metadata)

    return _crawled

