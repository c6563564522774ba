"""The names the Dagster side shares: asset keys, job names, run tags and metadata keys, each spelled once.

The tables' names and Hudi's meta columns are the job's too: they live in
`glue_scripts/zfish_etl/names.py` and are re-exported here.
"""

from __future__ import annotations

from glue_scripts.zfish_etl.names import (
    COMMIT_TIME, DATA_FINGERPRINT, FILE_NAME, FINGERPRINT, JOINED, META_COLUMNS, QUARANTINED_ROWS, RAW_TABLES,
)

__all__ = ["COMMIT_TIME", "DATA_FINGERPRINT", "FILE_NAME", "FINGERPRINT", "JOINED", "META_COLUMNS", "QUARANTINED_ROWS",
           "RAW_TABLES"]

# Assets (each is also the name of its table, where it has one).
TRAINING = "training_set"


def raw_asset_name(table: str) -> str:
    """The landing asset of a raw table: `raw_observations`, `raw_outcomes`."""
    return f"raw_{table}"


RAW_AND_CRAWLED = (*map(raw_asset_name, RAW_TABLES), *RAW_TABLES)
CHECKED_OVER_ALL_DAYS = (*RAW_TABLES, JOINED)
CHECKED_ON_DEMAND = (*CHECKED_OVER_ALL_DAYS, TRAINING)

# Jobs.
LAND_AND_CRAWL_JOB, JOIN_JOB = "land_and_crawl", "join_window"
ALL_DAYS_CHECKS_JOB, CHECKS_JOB = "all_days_checks", "checks_on_demand"

# Run tags: Dagster's own (a run's partition, or its range), then zfish's.
PARTITION = "dagster/partition"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
JOIN_THROUGH = "zfish/join_through"  # on a crawl run: join the window ending at this day once it succeeded
TRIGGER = "zfish/trigger"  # what launched the run: evening, lake, weekly_checks, check

# Metadata keys: Dagster's, then those zfish records on catalog partitions.
ROW_COUNT, COLUMN_SCHEMA = "dagster/row_count", "dagster/column_schema"  # the table's rows, its columns
PARTITION_ROW_COUNT = "dagster/partition_row_count"  # one partition's rows
LANDED_FILES = "landed_files"  # a landing's data files (`accepted.data_fingerprint`): what its row count is of
URI, TABLE_NAME = "dagster/uri", "dagster/table_name"  # where the table lives, its name in the catalog
