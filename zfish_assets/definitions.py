"""The one Definitions: land → crawl → join → check → training set, with resources chosen by deployment."""

from __future__ import annotations

from dagster import Definitions, in_process_executor, with_source_code_references

from glue_scripts.zfish_etl.modes import JoinMode
from zfish_assets import settings
from zfish_assets.assets.catalog import crawled_asset
from zfish_assets.automation import build_automation
from zfish_assets.assets.joined import joined_asset
from zfish_assets.assets.raw import raw_asset
from zfish_assets.assets.training import training_asset, training_checks
from zfish_assets.checks import crawled_checks, joined_checks, schema_checks
from zfish_assets.deployments import resources_for
from zfish_assets.partitions import daily_partitions


def build_definitions() -> Definitions:
    """The definitions for the current environment (`ZFISH_*`): clock, deployment, settings."""
    days = daily_partitions()
    jobs, schedules, sensors = build_automation(days)
    return Definitions(
        # Code references: the UI links each asset to the file and line defining it.
        assets=with_source_code_references([
            raw_asset("observations", days),
            raw_asset("outcomes", days),
            crawled_asset("observations", days),
            crawled_asset("outcomes", days),
            joined_asset(days, settings.label_horizon_days(), JoinMode(settings.join_mode())),
            training_asset(),
        ]),
        asset_checks=[*crawled_checks, *joined_checks, *schema_checks, *training_checks],
        resources=resources_for(),
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        # One process per run: a step process would re-import the code (~4 s) and start its own JVM.
        executor=in_process_executor,
    )


defs = build_definitions()
