"""The jobs: which assets or checks a run of each covers.

`land_and_crawl` and `join_window` are partitioned by day: the first runs one day (the raw and
crawled assets are per-day), the second a range of days in one Spark run. The two check jobs
materialize nothing and have no partitions: without range tags their checks cover every day.
"""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from zfish_assets.dagster_names import (
    ALL_DAYS_CHECKS_JOB,
    CHECKED_ON_DEMAND,
    CHECKED_OVER_ALL_DAYS,
    CHECKS_JOB,
    JOIN_JOB,
    JOINED,
    LAND_AND_CRAWL_JOB,
    RAW_AND_CRAWLED,
)

AssetJob = type(define_asset_job("_"))  # what define_asset_job returns: Dagster exports no public name for it


def land_and_crawl_job() -> AssetJob:
    """One day landed and crawled: what the evening schedule and the lake sensor launch.

    Both jobs take their daily partitions from their assets (Dagster infers them).
    """
    return define_asset_job(
        LAND_AND_CRAWL_JOB, selection=AssetSelection.assets(*RAW_AND_CRAWLED),
        description="Land and crawl one day (raw and crawled assets, with checks).",
    )


def join_job() -> AssetJob:
    """joined_fish_data over a range of days: what the sensor chained after a crawl launches."""
    return define_asset_job(
        JOIN_JOB, selection=AssetSelection.assets(JOINED),
        description="joined_fish_data over a range of days, in one run.",
    )


def all_days_checks_job() -> AssetJob:
    """The weekly run's checks, over every day."""
    return define_asset_job(
        ALL_DAYS_CHECKS_JOB, selection=AssetSelection.checks_for_assets(*CHECKED_OVER_ALL_DAYS),
        description="Every check of the crawled tables and joined_fish_data, over every day (a run without days).",
    )


def checks_job() -> AssetJob:
    """The checks `zfish check` runs, over the days of its range tags."""
    return define_asset_job(
        CHECKS_JOB, selection=AssetSelection.checks_for_assets(*CHECKED_ON_DEMAND),
        description="What `zfish check` runs: the checks of the crawled tables, joined_fish_data and training_set, "
                    "over the days of the range tags (every day without them); materializes nothing.",
    )
