"""Transform: joined_fish_data, the Hudi table of labeled observations, partitioned by image day.

Partition D holds the labeled images taken on day D. Materializing [A, B] is one run that
recomputes those days from their observations and every label registered so far, then upserts:
the evening run of day D is [D - horizon + 1, D] (`ZFISH_LABEL_HORIZON_DAYS`, 36 by default), the first
run a backfill over all days. In the default incremental mode (`ZFISH_JOIN_MODE`) only the recomputed
rows that differ from the table's are upserted, so the evening rewrites the partitions with news, not
the whole window.

The asset decides what a run joins (its partition range, the join mode, the crawled tables it
depends on) and returns that as a `JoinRequest`; the Hudi IO manager has an engine carry it out.
"""

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    DailyPartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
)

from glue_scripts.zfish_etl.modes import JoinMode
from zfish_assets.io_managers.hudi_io_manager import JoinRequest, SourceTables
from zfish_assets.dagster_names import JOINED, RAW_TABLES
from zfish_assets.partitions import DayRange, evening_freshness, label_window_mapping

HUDI_WRITER_POOL = "hudi_writer"  # one writer at a time (limit 1 in the instance's dagster.yaml)


def joined_asset(partitions: DailyPartitionsDefinition, label_horizon_days: int,
                 join_mode: JoinMode) -> AssetsDefinition:
    """joined_fish_data over `partitions`, written in `join_mode`; day D waits on labels for `label_horizon_days`."""
    sources = SourceTables(*RAW_TABLES)

    @asset(
        name=JOINED,
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        freshness_policy=evening_freshness(),
        deps=[
            AssetDep(sources.observations, partition_mapping=TimeWindowPartitionMapping()),
            AssetDep(sources.outcomes, partition_mapping=label_window_mapping(label_horizon_days)),
        ],
        io_manager_key="hudi_io_manager",
        pool=HUDI_WRITER_POOL,
        group_name="transform",
        kinds={"spark", "hudi", "glue"},
        owners=["team:data-platform"],
        description=(
            "Observations left-joined with their fish's latest label, genetic_markers flattened, unlabeled "
            "rows left out; a Hudi copy-on-write table upserted by image_id (precombine timestamp), "
            "partitioned by the image's day."
        ),
    )
    def _joined(context: AssetExecutionContext) -> JoinRequest:
        key_range = context.partition_key_range
        context.log.info(f"joining observations {key_range.start}..{key_range.end} with every registered label "
                         f"({join_mode})")
        return JoinRequest(DayRange.parse(key_range.start, key_range.end), join_mode, sources)

    return _joined
