"""The schedules: the evening of each day, and a weekly run of every check.

The evening's checks cover the evening's days only, so their cost does not grow with the history.
A weekly run of every check over every day (`all_days_checks`, Sundays 06:00 UTC) sees what they
cannot: a label that arrived after its fish's images left the window, a file changed on an old day.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from dagster import (
    DailyPartitionsDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from zfish_assets import settings
from zfish_assets.automation import schedule_status
from zfish_assets.dagster_names import JOIN_THROUGH, TRIGGER
from zfish_assets.partitions import EVENING, last_day, window_text

if TYPE_CHECKING:
    from zfish_assets.automation.jobs import AssetJob

EVENING_CRON = f"{EVENING.minute} {EVENING.hour} * * *"  # the evening's run time, every day (UTC)
WEEKLY_CRON = "0 6 * * 0"  # Sundays 06:00 UTC, outside the evenings


def evening_day(scheduled: datetime) -> str:
    """The day an evening run at `scheduled` processes: under `ZFISH_CLOCK`, the simulated clock's day."""
    return last_day(settings.clock() if settings.simulated() else scheduled).isoformat()


def evening_schedule(crawl_job: AssetJob, partitions: DailyPartitionsDefinition,
                     horizon_days: int) -> ScheduleDefinition:
    """Day D landed and crawled at 18:00 UTC, tagged so that `join_after_crawl` joins its window next (the
    window of `horizon_days`, stated in the description)."""

    @schedule(job=crawl_job, cron_schedule=EVENING_CRON, execution_timezone="UTC", default_status=schedule_status(),
              description=f"The evening of day D at 18:00 UTC: land and crawl D, then (chained) join "
                          f"{window_text(horizon_days)}.")
    def evening(context: ScheduleEvaluationContext):
        day = evening_day(context.scheduled_execution_time)
        if not partitions.has_partition_key(day):
            return SkipReason(f"day {day} is not a partition (yet)")
        return RunRequest(run_key=f"evening-{day}", partition_key=day,
                          tags={JOIN_THROUGH: day, TRIGGER: "evening"})

    return evening


def weekly_checks_schedule(checks_job: AssetJob) -> ScheduleDefinition:
    """Every check over every day, once a week (the job `all_days_checks`)."""

    @schedule(job=checks_job, cron_schedule=WEEKLY_CRON, execution_timezone="UTC", default_status=schedule_status(),
              description="Sundays 06:00 UTC: every check over every day, beyond the evenings' windows.")
    def weekly_checks(context: ScheduleEvaluationContext):
        return RunRequest(run_key=f"all-days-checks-{context.scheduled_execution_time:%Y-%m-%d}",
                          tags={TRIGGER: "weekly_checks"})

    return weekly_checks
