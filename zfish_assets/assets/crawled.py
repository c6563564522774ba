"""Catalog: crawling a landed day registers it, as the walkthrough's Glue crawlers do.

A day that is not registered is not queryable. Rows that break the table's contract go to the
day's quarantine (counted per reason in the metadata); the day's good rows are registered. Day D
of `observations` reads day D of `raw_observations`; the same for outcomes.
"""


import time
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetMaterialization,
    AssetsDefinition,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)

from glue_scripts.zfish_etl.contract import CONTRACTS, struct_fields
from glue_scripts.zfish_etl.ledger import ledger_key
from zfish_assets.bounded import bounded_json
from zfish_assets.resources.data_catalog import Catalog
from zfish_assets.domain.crawl import CrawledDay
from zfish_assets.domain.glue_crawler import crawl
from zfish_assets.assets.each_day import RANGE_POLICY, materialize_each_day
from zfish_assets.resources.lake import Lake
from zfish_assets.partitions import evening_freshness
from zfish_assets.retries import retry_transient
from zfish_assets.dagster_names import COLUMN_SCHEMA, PARTITION_ROW_COUNT, ROW_COUNT, TABLE_NAME, URI, raw_asset_name


def column_schema(columns: Sequence[tuple[str, str]], described: Mapping[str, str] | None = None) -> TableSchema:
    """The table's columns as the UI lists them, a struct's members each on a line of their own
    (`genetic_markers.gene_d`), so the schema-change check names a new member, not a changed struct;
    each described as `described` (the contract's descriptions) says."""
    described = {**(described or {}), "day": "The day the lab delivered the row: the table's partition"}
    listed = []
    for name, ctype in (*columns, ("day", "string")):
        members = struct_fields(ctype) if ctype.startswith("struct<") else []
        listed.extend([TableColumn(f"{name}.{m}", t, description=described.get(m)) for m, t in members]
                      or [TableColumn(name, ctype, description=described.get(name))])
    return TableSchema(columns=listed)


def _log_crawl(context: AssetExecutionContext, lake: Lake, catalog: Catalog, crawled: CrawledDay) -> None:
    """Say what the crawl of a day did: registered or not, columns added or refused, rows quarantined."""
    table, day, judged = crawled.table, crawled.day, crawled.judged
    if crawled.registered:
        context.log.info(f"registered {catalog.database}.{table} day={day}: {crawled.rows} rows, {crawled.files} files")
    elif crawled.dropped:
        context.log.info(f"dropped {catalog.database}.{table} day={day}: no data file left (the day was retracted); "
                         "the next join over the day removes its rows")
    else:
        context.log.info(f"{table} day={day} has no data files: nothing to register")
    for struct, members in judged.added_members.items():
        context.log.info(f"{catalog.database}.{table}: new columns {', '.join(f'{struct}.{m}' for m in members)} "
                         f"from day={day} (schema evolution: nullable, older rows null)")
    for member, why in judged.refused_members.items():
        context.log.warning(f"{table} day={day}: {member} not added as a column: {why}; it stays an unknown field")
    if judged.entries:
        context.log.warning(f"{table} day={day}: {len(judged.entries)} quarantined ({judged.reasons()}) "
                            f"at {lake.uri(ledger_key(table, day))}")
    for other in crawled.others:  # their partitions changed too: recorded as materialized, so the join sees them
        context.log.info(f"re-judged {table} day={other.day}: its keys' holders changed with day={day}")
        # with their own figures: the partition's row count shown is its latest materialization's
        context.log_event(AssetMaterialization(asset_key=context.asset_key, partition=other.day,
                                               description=f"re-judged by the crawl of day={day}",
                                               metadata=crawl_metadata(lake, catalog, other)))


def crawl_metadata(lake: Lake, catalog: Catalog, crawled: CrawledDay) -> dict[str, Any]:
    """The materialization's metadata: the day's registration, its quarantine, and its schema's evolution."""
    judged = crawled.judged
    metadata = {
        PARTITION_ROW_COUNT: crawled.rows,
        # the table's rows: every registered day's, as the crawls recorded them in the catalog
        ROW_COUNT: sum(int(p.get("recordCount", 0)) for p in catalog.partition_parameters(crawled.table).values()),
        "files": crawled.files,
        "registered": crawled.registered,
        "dropped": crawled.dropped,
        # other days whose verdict this crawl changed (a key moved between days)
        "rejudged_days": bounded_json(list(crawled.rejudged)),
        URI: MetadataValue.path(crawled.location),
        TABLE_NAME: f"{catalog.database}.{crawled.table}",
        "quarantined": len(judged.entries),
        "quarantine_reasons": bounded_json(judged.reasons()),
        "quarantine": MetadataValue.path(lake.uri(ledger_key(crawled.table, crawled.day))),
        # fields the contract does not declare: dropped from the rows, named here so drift shows
        "unknown_fields": bounded_json(dict(sorted(judged.unknown_fields.items()))),
        # schema evolution: the members this day added as columns, and those refused (with why)
        "schema_added": bounded_json({s: list(m) for s, m in judged.added_members.items()}),
        "schema_refused": bounded_json(judged.refused_members),
    }
    if crawled.columns:
        metadata[COLUMN_SCHEMA] = column_schema(crawled.columns, CONTRACTS[crawled.table].descriptions())
    return metadata


def crawled_asset(table: str, partitions: DailyPartitionsDefinition) -> AssetsDefinition:
    """The catalog table of one raw table; materializing day D crawls and registers `day=D` (each day of a range)."""

    @asset(
        name=table,
        partitions_def=partitions,
        deps=[AssetDep(raw_asset_name(table))],
        backfill_policy=RANGE_POLICY,  # a backfill crawls its days in order, in one run
        freshness_policy=evening_freshness(),
        group_name="catalog",
        kinds={"glue", "athena", "duckdb"},
        description=f"The crawled `{table}` table, partitioned by day: registered days are queryable.",
        owners=["team:data-platform"],
    )
    def _crawled(context: AssetExecutionContext, lake: Lake, catalog: Catalog) -> MaterializeResult:
        def crawl_one(day: str) -> dict:
            started = time.monotonic()
            with retry_transient(context.retry_number, f"crawling {table} day={day}"):
                crawled = crawl(lake, catalog, table, day)  # the catalog's crawl mode: in process or the Glue crawler
            _log_crawl(context, lake, catalog, crawled)
            return {**crawl_metadata(lake, catalog, crawled), "duration_s": round(time.monotonic() - started, 3)}

        return materialize_each_day(context, f"crawling {table}", crawl_one)

    return _crawled

