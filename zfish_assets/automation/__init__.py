"""Automation: the walkthrough's evening at 18:00 UTC, and a sensor for days the lab uploads itself.

By role, as Dagster projects lay it out: `jobs.py` (what a run materializes or checks),
`schedules.py` (when a run starts by the clock), `sensors.py` (when a run starts on what happened);
`definitions.py` wires them.

Evening D is two runs, chained: the landing and crawl of day D (one run, partition D: the raw and
crawled assets are per-day), then, once that run succeeded, the range run of joined_fish_data over
the label window [max(start, D - horizon + 1), D] (`partitions.evening_window`; one Spark run,
launched with the `dagster/asset_partition_range_start/end` tags). One run cannot hold both: a run
has a single partition or a single range for all its assets, and the raw and crawled assets
process one day. The chain is a run-status sensor: it launches the join when a run tagged
`zfish/join_through` succeeds, so the join never reads a day that is not crawled yet, and a failed
crawl joins nothing. The window is the same in both join modes (`ZFISH_JOIN_MODE`): the
incremental mode reads all of it and writes only the partitions whose rows changed.
"""

from __future__ import annotations

from dagster import DefaultScheduleStatus, DefaultSensorStatus

from zfish_assets import settings


def _on_locally() -> bool:
    """Automation is on by default with the local deployment only (the walkthrough's evenings run
    by themselves); elsewhere it starts stopped, and a deployment launches nothing until someone
    turns a schedule or sensor on."""
    return settings.DEPLOYMENT.get() == "local"


def schedule_status() -> DefaultScheduleStatus:
    """The default status of zfish's schedules in this deployment."""
    return DefaultScheduleStatus.RUNNING if _on_locally() else DefaultScheduleStatus.STOPPED


def sensor_status() -> DefaultSensorStatus:
    """The default status of zfish's sensors in this deployment."""
    return DefaultSensorStatus.RUNNING if _on_locally() else DefaultSensorStatus.STOPPED
