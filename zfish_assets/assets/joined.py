"""Transform: joined_fish_data, the Hudi table of labeled observations, partitioned by image day.

Partition D holds the labeled images taken on day D. Materializing [A, B] is one run that
recomputes those days from their observations and every label registered so far, then upserts:
the evening run of day D is [D-35, D], the first run a backfill over all days. In the default
incremental mode (`ZFISH_JOIN_MODE`) only the recomputed rows that differ from the table's are
upserted, so the evening rewrites the partitions with news, not the whole window.
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

from zfish_assets.io_managers.hudi import JoinPlan
from zfish_assets.partitions import label_window_mapping
from zfish_assets.names import JOINED

HUDI_WRITER_POOL = "hudi_writer"  # one writer at a time (limit 1 in the instance's dagster.yaml)


def joined_asset(partitions: DailyPartitionsDefinition, label_horizon_days: int) -> AssetsDefinition:
    """joined_fish_data over `partitions`; its day D waits on labels for `label_horizon_days`."""

    @asset(
        name=JOINED,
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[
            AssetDep("observations", partition_mapping=TimeWindowPartitionMapping()),
            AssetDep("outcomes", partition_mapping=label_window_mapping(label_horizon_days)),
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
    def _joined(context: AssetExecutionContext) -> JoinPlan:
        key_range = context.partition_key_range
        context.log.info(f"joining observations {key_range.start}..{key_range.end} with every registered label")
        return JoinPlan(observations_table="observations", outcomes_table="outcomes")

    return _joined
