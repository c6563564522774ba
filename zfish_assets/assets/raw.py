"""Ingest: the lab's daily upload lands in the lake (`<prefix>/<table>/day=YYYY-MM-DD/`)."""

import time


from dagster import AssetExecutionContext, AssetsDefinition, DailyPartitionsDefinition, MaterializeResult, MetadataValue, asset

from zfish_assets.assets.each_day import RANGE_POLICY, materialize_each_day
from zfish_assets.resources.lake import Lake
from zfish_assets.retries import retry_transient
from zfish_assets.resources.simulator import SimulatorResource
from glue_scripts.zfish_etl.accepted import data_fingerprint
from zfish_assets.dagster_names import LANDED_FILES, PARTITION_ROW_COUNT, URI, raw_asset_name

DESCRIPTIONS = {
    "observations": "One JSON object per observation image, one file per image, landed per day.",
    "outcomes": "Outcome labels (fish_id, condition_developed), JSON Lines, landed per day weeks after the images.",
}


def raw_asset(table: str, partitions: DailyPartitionsDefinition) -> AssetsDefinition:
    """The landing asset of one raw table: day D of the source replaces day D in the lake (each day of a range)."""

    @asset(
        name=raw_asset_name(table),
        partitions_def=partitions,
        backfill_policy=RANGE_POLICY,  # a backfill lands its days in one run
        group_name="ingest",
        kinds={"s3", "json"},
        description=DESCRIPTIONS[table],
        owners=["team:data-platform"],
    )
    def _raw(context: AssetExecutionContext, lake: Lake, simulator: SimulatorResource) -> MaterializeResult:
        def land(day: str) -> dict:
            started, written = time.monotonic(), []
            with retry_transient(context.retry_number, f"landing {table} day={day}"):
                landed = lake.land_day(table, day, lambda folder: written.append(simulator.write_day(table, day, folder)))
            rows = written[0].rows if landed.files else 0
            context.log.info(f"landed {table} day={day}: {rows} rows in {landed.files} files at {landed.uri}")
            return {
                PARTITION_ROW_COUNT: rows,
                "files_written": landed.files,
                "bytes_written": landed.bytes,
                # the files the row count is of: a crawl of other files (a delivery since) is not checked against it
                LANDED_FILES: data_fingerprint((o.name, o.size, o.version)
                                               for o in lake.list_day(table, day) if o.is_data()),
                URI: MetadataValue.path(landed.uri),
                "duration_s": round(time.monotonic() - started, 3),
            }

        return materialize_each_day(context, f"landing {table}", land)

    return _raw

