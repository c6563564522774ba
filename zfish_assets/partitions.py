"""Daily partitions: one partition per `day=YYYY-MM-DD` folder, from the simulation start to the clock.

The clock is `ZFISH_CLOCK` in a simulation (the walkthrough's evenings) and the real clock in
production. A day's partition exists once its evening (18:00 UTC, the walkthrough's run time) has
come, so the evening run of day D can process D itself. A run's range of days enters as a `DayRange`
(`glue_scripts/zfish_etl/days.py`, shared with the job): parsed once, expanded once, passed on.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from dagster import DailyPartitionsDefinition, FreshnessPolicy, TimeWindowPartitionMapping

from glue_scripts.zfish_etl.days import DayRange
from zfish_assets import settings


EVENING = time(18, 0, tzinfo=timezone.utc)
EVENING_DEADLINE = timedelta(hours=2)
"""How long an evening may take: the crawled tables and joined_fish_data are late when not
materialized between the evening (18:00 UTC) and the evening plus this (20:00 UTC)."""


def evening_freshness() -> FreshnessPolicy:
    """The evening's promise as Dagster's freshness policy: materialized each day between 18:00 and
    20:00 UTC. The UI shows each asset's freshness state against it and the daemon flags a late one."""
    deadline = (datetime.combine(date(2000, 1, 1), EVENING) + EVENING_DEADLINE).timetz()
    return FreshnessPolicy.cron(deadline_cron=f"{deadline.minute} {deadline.hour} * * *",
                                lower_bound_delta=EVENING_DEADLINE, timezone="UTC")


def validate_day(day: str) -> str:
    """`day` when it is a real `YYYY-MM-DD` date; a ValueError naming it otherwise.

    Partition keys reach folder names and SQL: `2025-05-10' OR '1'='1` or `../../etc` never pass.
    """
    settings.parse_day(day, "day")
    return day


def last_day(now: datetime) -> date:
    """The latest day whose evening run time has passed at `now`. A `now` without a zone is UTC (the
    evening schedule's zone, and how `ZFISH_CLOCK` reads one), never the process's local time (TZ)."""
    utc = now.astimezone(timezone.utc) if now.tzinfo else now.replace(tzinfo=timezone.utc)
    return utc.date() if utc.timetz() >= EVENING else utc.date() - timedelta(days=1)


def last_partition_day() -> date:
    """The last day with a partition: the simulated clock's last evening's day, or today (the real clock)."""
    if settings.simulated():
        return last_day(settings.clock())
    return datetime.now(timezone.utc).date()


def outside_partitions(day: str) -> str | None:
    """Why `day` has no partition (before ZFISH_SIM_START, or after the clock), naming the bound; None when it has one."""
    when = settings.parse_day(day, "day")
    if when < settings.sim_start():
        return f"day {day} is before {settings.SIM_START.name}={settings.sim_start().isoformat()}, the first partition"
    last = last_partition_day()
    if when > last:
        return (f"day {day} is after the clock: {settings.clock_source()} makes {last.isoformat()} the last day "
                "with a partition")
    return None


def daily_partitions() -> DailyPartitionsDefinition:
    """Days from `ZFISH_SIM_START`: through the simulated clock's day, or through today.

    With the real clock the set grows by itself (today included, so the 18:00 run can process
    today); a simulated clock fixes the last day at the clock's last evening.
    """
    start, last = settings.sim_start().isoformat(), last_partition_day()
    if settings.sim_start() > last:  # else no day is a partition, and nothing says why (a check of a day crashed)
        clock = (f"the clock's last evening, {last.isoformat()} ({settings.clock_source()})"
                 if settings.simulated() else f"today, {last.isoformat()} ({settings.clock_source()})")
        raise ValueError(f"{settings.SIM_START.name}={start} is after {clock}: no day would be a partition. "
                         f"Set {settings.SIM_START.name} on or before it, or a later clock")
    if not settings.simulated():
        return DailyPartitionsDefinition(start_date=start, end_offset=1)
    end = last + timedelta(days=1)
    # Dagster ends the partitions at the real clock's last complete day as well as at `end_date`: a
    # simulated clock ahead of the real one lost its days after the real yesterday (uploads took them,
    # runs refused them). An offset reaching `end` from the real today leaves `end_date` the only bound.
    ahead = (end - datetime.now(timezone.utc).date()).days + 1
    return DailyPartitionsDefinition(start_date=start, end_date=end.isoformat(), end_offset=max(ahead, 0))


def label_window_mapping(horizon_days: int) -> TimeWindowPartitionMapping:
    """Joined day D depends on the outcomes of days [D, D + horizon - 1]: its labels arrive then.

    Declared so that the UI marks a joined day stale when a label for it lands.
    """
    return TimeWindowPartitionMapping(
        start_offset=0, end_offset=horizon_days - 1, allow_nonexistent_upstream_partitions=True
    )


def window_text(horizon_days: int) -> str:
    """The evening's window as descriptions state it, e.g. `[D-35, D]` for a horizon of 36 days."""
    return f"[D-{horizon_days - 1}, D]" if horizon_days > 1 else "[D, D]"


def evening_window(day: str, horizon_days: int | None = None) -> tuple[str, str]:
    """The days evening `day` joins: [max(start, day - horizon + 1), day], horizon `ZFISH_LABEL_HORIZON_DAYS`.

    A label arrives up to horizon - 1 days after its image, so the evening rejoins every day a
    label landed today can belong to; the window never reaches before the first partition.
    """
    horizon = settings.label_horizon_days() if horizon_days is None else horizon_days
    first = max(settings.sim_start(), settings.parse_day(day, "day") - timedelta(days=horizon - 1))
    return first.isoformat(), day


def days_between(first: str, last: str) -> list[str]:
    """Every day from `first` to `last`, inclusive, as partition keys (where a range enters as two keys,
    `DayRange.parse` keeps it as one value instead)."""
    return list(DayRange.parse(first, last).keys)
