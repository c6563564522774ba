"""Automation: the walkthrough's evening at 18:00 UTC, and a sensor for days the lab uploads itself.

Evening D is two runs, chained: the landing and crawl of day D (one run, partition D: the raw and
crawled assets are per-day), then, once that run succeeded, the range run of joined_fish_data over
the label window [max(start, D - horizon + 1), D] (one Spark run, launched with the
`dagster/asset_partition_range_start/end` tags). One run cannot hold both: a run has a single
partition or a single range for all its assets, and the raw and crawled assets process one day.
The chain is a run-status sensor: it launches the join when a run tagged `zfish/join_through`
succeeds, so the join never reads a day that is not crawled yet, and a failed crawl joins nothing.
The window is the same in both join modes (`ZFISH_JOIN_MODE`): the incremental mode reads all of it
and writes only the partitions whose rows changed.

The evening's checks cover the evening's days only, so their cost does not grow with the history.
A weekly run of every check over every day (`all_days_checks`, Sundays 06:00 UTC) sees what they
cannot: a label that arrived after its fish's images left the window, a file changed on an old day.

The lake sensor notices a `day=` folder that is not registered in the catalog, or whose files
changed since the crawl (lab data uploaded from outside), and crawls it (not landing: that would
replace the upload) and then joins its window the same way. Its cursor is the days seen, with the
fingerprint of their files.
"""

import json
from datetime import datetime

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    run_status_sensor,
    schedule,
    sensor,
    RunStatusSensorContext,
)
from dagster._core.execution.backfill import BulkActionStatus  # not exported; the UI's own status enum

from zfish_assets import settings
from zfish_assets.domain.crawl import fingerprint
from zfish_assets.partitions import evening_window, last_day
from zfish_assets.resources.catalog import Catalog
from zfish_assets.resources.lake import Lake
from zfish_assets.names import ALL_DAYS_CHECKS_JOB, CHECKED_ON_DEMAND, CHECKED_OVER_ALL_DAYS, CHECKS_JOB, FINGERPRINT, JOINED, JOIN_JOB, JOIN_THROUGH, LAND_AND_CRAWL_JOB, PARTITION, RANGE_END, RANGE_START, RAW_AND_CRAWLED, RAW_TABLES, TRIGGER


IN_FLIGHT = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING,
             DagsterRunStatus.STARTED]


def evening_day(scheduled: datetime) -> str:
    """The day an evening run at `scheduled` processes: under `ZFISH_CLOCK`, the simulated clock's day."""
    return last_day(settings.clock() if settings.simulated() else scheduled).isoformat()


def _on_locally() -> bool:
    return settings.env("ZFISH_DEPLOYMENT", "local") == "local"


def build_automation(partitions) -> tuple[list[JobDefinition], list, list]:
    """The jobs, schedules and sensors of zfish, over `partitions` (the assets' daily partitions)."""
    crawl_job = define_asset_job(
        LAND_AND_CRAWL_JOB, selection=AssetSelection.assets(*[AssetKey(a) for a in RAW_AND_CRAWLED]),
        partitions_def=partitions, description="Land and crawl one day (raw and crawled assets, with checks).",
    )
    join_job = define_asset_job(
        JOIN_JOB, selection=AssetSelection.assets(AssetKey(JOINED)),
        partitions_def=partitions, description="joined_fish_data over a range of days, in one run.",
    )
    checks_job = define_asset_job(
        ALL_DAYS_CHECKS_JOB, selection=AssetSelection.checks_for_assets(*[AssetKey(a) for a in CHECKED_OVER_ALL_DAYS]),
        description="Every check of the crawled tables and joined_fish_data, over every day (a run without days).",
    )
    on_demand_job = define_asset_job(
        CHECKS_JOB, selection=AssetSelection.checks_for_assets(*[AssetKey(a) for a in CHECKED_ON_DEMAND]),
        description="What `zfish check` runs: the checks of the crawled tables, joined_fish_data and training_set, "
                    "over the days of the range tags (every day without them); materializes nothing.",
    )
    running = DefaultScheduleStatus.RUNNING if _on_locally() else DefaultScheduleStatus.STOPPED
    sensor_running = DefaultSensorStatus.RUNNING if _on_locally() else DefaultSensorStatus.STOPPED

    @schedule(job=crawl_job, cron_schedule="0 18 * * *", execution_timezone="UTC", default_status=running,
              description="The evening of day D at 18:00 UTC: land and crawl D, then (chained) join [D-35, D].")
    def evening(context: ScheduleEvaluationContext):
        day = evening_day(context.scheduled_execution_time)
        if not partitions.has_partition_key(day):
            return SkipReason(f"day {day} is not a partition (yet)")
        return RunRequest(run_key=f"evening-{day}", partition_key=day,
                          tags={JOIN_THROUGH: day, TRIGGER: "evening"})

    @schedule(job=checks_job, cron_schedule="0 6 * * 0", execution_timezone="UTC", default_status=running,
              description="Sundays 06:00 UTC: every check over every day, beyond the evenings' windows.")
    def weekly_checks(context: ScheduleEvaluationContext):
        return RunRequest(run_key=f"all-days-checks-{context.scheduled_execution_time:%Y-%m-%d}",
                          tags={TRIGGER: "weekly_checks"})

    @sensor(job=crawl_job, minimum_interval_seconds=15, default_status=sensor_running,
            description="A day folder uploaded to the lake from outside: crawl it, then join its window.")
    def new_lake_days(context: SensorEvaluationContext, lake: Lake, catalog: Catalog):
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        if context.instance.get_backfills(status=BulkActionStatus.REQUESTED, limit=1):
            return SkipReason("a backfill is in progress: it crawls the days it lands")
        requests, changed = [], dict(seen)
        days = sorted({d for t in RAW_TABLES for d in lake.list_days(t)})
        misnamed = [f"{t}/{name}" for t in RAW_TABLES for name in lake.misnamed(t)]
        if misnamed:  # never read: said on every tick until renamed (the quarantine check names them too)
            context.log.warning(f"not day=YYYY-MM-DD folders, never crawled (rename them): {', '.join(misnamed)}")
        registered = {t: catalog.partition_parameters(t) for t in RAW_TABLES}
        for day in days:
            if not partitions.has_partition_key(day):
                continue
            prints = {t: fingerprint(lake.list_day(t, day)) for t in RAW_TABLES}
            digest = "/".join(prints[t] for t in RAW_TABLES)
            if seen.get(day) == digest:
                continue
            if all(prints[t] == registered[t].get(day, {}).get(FINGERPRINT, fingerprint([]))
                   for t in RAW_TABLES):
                changed[day] = digest  # crawled already (by a schedule or backfill run)
                continue
            if context.instance.get_run_ids(RunsFilter(tags={PARTITION: day}, statuses=IN_FLIGHT), limit=1):
                continue  # a run is landing or crawling it now: look again next tick
            changed[day] = digest
            requests.append(RunRequest(
                run_key=f"lake-{day}-{digest[:16]}", partition_key=day,
                asset_selection=[AssetKey("observations"), AssetKey("outcomes")],
                tags={JOIN_THROUGH: day, TRIGGER: "lake"},
            ))
        context.update_cursor(json.dumps(changed, sort_keys=True))
        return requests or SkipReason(f"no new or changed day folder among {len(days)}")

    @run_status_sensor(run_status=DagsterRunStatus.SUCCESS, monitored_jobs=[crawl_job], request_job=join_job,
                       default_status=sensor_running, minimum_interval_seconds=15,
                       description="After a crawl of day D succeeded: joined_fish_data over [D-35, D], one run.")
    def join_after_crawl(context: RunStatusSensorContext):
        day = context.dagster_run.tags.get(JOIN_THROUGH)
        if not day:
            return SkipReason("not an evening or lake crawl")
        first, last = evening_window(day)
        return RunRequest(run_key=f"join-after-{context.dagster_run.run_id}",
                          tags={RANGE_START: first, RANGE_END: last, JOIN_THROUGH: day,
                                TRIGGER: context.dagster_run.tags.get(TRIGGER, "")})

    return [crawl_job, join_job, checks_job, on_demand_job], [evening, weekly_checks], [new_lake_days, join_after_crawl]
