"""The one Definitions: land → crawl → join → check → training set, with resources chosen by deployment."""

from __future__ import annotations

import warnings

from dagster import BetaWarning

# The beta APIs zfish chooses deliberately, each for a reason stated where it is used: source code
# references (the UI's link to each asset's code), a range run's backfill policy (one Spark run per
# window) and label-window mappings past the last day. Filtered here, once, before they are used.
for _chosen in ("`LocalFileCodeReference`", "`CodeReferencesMetadataValue`", "`with_source_code_references`",
                "`backfill_policy`", "`allow_nonexistent_upstream_partitions`"):
    warnings.filterwarnings("ignore", message=f".*{_chosen}", category=BetaWarning)

from dagster import Definitions, in_process_executor, with_source_code_references

from zfish_assets import settings
from zfish_assets.assets.crawled import crawled_asset
from zfish_assets.assets.crawled_checks import crawled_checks
from zfish_assets.automation.jobs import all_days_checks_job, checks_job, join_job, land_and_crawl_job
from zfish_assets.automation.schedules import evening_schedule, weekly_checks_schedule
from zfish_assets.automation.sensors import join_after_crawl_sensor, new_lake_days_sensor
from zfish_assets.assets.joined import joined_asset
from zfish_assets.assets.joined_checks import joined_checks
from zfish_assets.assets.raw import raw_asset
from zfish_assets.assets.schema_checks import schema_checks
from zfish_assets.assets.training import training_asset
from zfish_assets.assets.training_checks import training_checks
from zfish_assets.deployments import resources_for
from zfish_assets.partitions import daily_partitions


def build_definitions() -> Definitions:
    """The definitions for the current environment (`ZFISH_*`): clock, deployment, settings (every one set is
    checked first, so a bad value fails the code's load naming it)."""
    settings.check_set()
    days = daily_partitions()
    horizon_days = settings.label_horizon_days()
    crawl, join, all_days_checks = land_and_crawl_job(), join_job(), all_days_checks_job()
    return Definitions(
        # Code references: the UI links each asset to the file and line defining it.
        assets=with_source_code_references([
            raw_asset("observations", days),
            raw_asset("outcomes", days),
            crawled_asset("observations", days),
            crawled_asset("outcomes", days),
            joined_asset(days, horizon_days, settings.join_mode()),
            training_asset(),
        ]),
        asset_checks=[*crawled_checks, *joined_checks, *schema_checks, *training_checks],
        resources=resources_for(),
        jobs=[crawl, join, all_days_checks, checks_job()],
        schedules=[evening_schedule(crawl, days, horizon_days), weekly_checks_schedule(all_days_checks)],
        sensors=[new_lake_days_sensor(crawl, days), join_after_crawl_sensor(crawl, join, horizon_days)],
        # One process per run: a step process would re-import the code (~4 s) and start its own JVM.
        executor=in_process_executor,
    )


defs = build_definitions()
