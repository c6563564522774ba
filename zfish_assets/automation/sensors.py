"""The sensors: a day the lab uploads itself, and the join chained after every crawl.

The lake sensor notices a `day=` folder that is not registered in the catalog, or whose files
changed since the crawl (lab data uploaded from outside), and crawls it (not landing: that would
replace the upload) and then joins its window the same way. Its cursor is the days seen, with the
fingerprint of their files.

The run-status sensor `join_after_crawl` is the chain: when a run tagged `zfish/join_through`
succeeds (an evening's crawl, or the lake sensor's), it launches the join of that day's window.
Declarative automation (`AutomationCondition`) cannot state this rule: its conditions request
partitions of an asset, each evaluated on its own, while the evening is one run over the
window (a single-run range, one Spark job and one Hudi commit) launched once its crawl succeeded;
an eager condition would request up to horizon-many partitions (36 by default) in separate evaluations and runs. The
evening's deadline is stated as the assets' freshness policy (`partitions.evening_freshness`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DailyPartitionsDefinition,
    RunRequest,
    RunsFilter,
    RunStatusSensorContext,
    RunStatusSensorDefinition,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    run_status_sensor,
    sensor,
)

from zfish_assets import settings
from zfish_assets.automation import sensor_status
from zfish_assets.domain.crawl import fingerprint
from zfish_assets.dagster_names import FINGERPRINT, JOIN_THROUGH, PARTITION, RANGE_END, RANGE_START, RAW_TABLES, TRIGGER
from zfish_assets.partitions import evening_window, window_text
from zfish_assets.resources.data_catalog import Catalog
from zfish_assets.resources.lake import Lake

if TYPE_CHECKING:
    from zfish_assets.automation.jobs import AssetJob

IN_FLIGHT = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING,
             DagsterRunStatus.STARTED]


def new_lake_days_sensor(crawl_job: AssetJob, partitions: DailyPartitionsDefinition) -> SensorDefinition:
    """Crawls each day folder of `partitions` that is new or changed in the lake; waits out backfills."""

    @sensor(job=crawl_job, minimum_interval_seconds=15, default_status=sensor_status(),
            description="A day folder uploaded to the lake from outside: crawl it, then join its window.")
    def new_lake_days(context: SensorEvaluationContext, lake: Lake, catalog: Catalog):
        if _backfill_in_progress(context.instance):
            return SkipReason("a backfill is in progress: it crawls the days it lands")
        # registered days too: a day whose folder was removed (retracted) is crawled to drop it
        days = sorted({d for t in RAW_TABLES for d in [*lake.list_days(t), *catalog.partition_parameters(t)]})
        _warn_misnamed(context, lake)
        _warn_early(context, days, partitions.start.date().isoformat())
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        requests, cursor = _crawl_requests(context.instance, lake, catalog, seen,
                                           [d for d in days if partitions.has_partition_key(d)])
        context.update_cursor(json.dumps(cursor, sort_keys=True))
        return requests or SkipReason(f"no new or changed day folder among {len(days)}{_late(context, days, partitions)}")

    return new_lake_days


def _backfill_in_progress(instance: DagsterInstance, recent: int = 50) -> bool:
    """Whether one of the `recent` latest backfills is still requested (running): their status enum is not
    exported by Dagster, so it is compared by its value."""
    return any(b.status.value == "REQUESTED" for b in instance.get_backfills(limit=recent))


def _warn_misnamed(context: SensorEvaluationContext, lake: Lake) -> None:
    """Folders that are not `day=YYYY-MM-DD` are never read: said on every tick until renamed
    (the quarantine check names them too)."""
    misnamed = [f"{t}/{name}" for t in RAW_TABLES for name in lake.misnamed(t)]
    if misnamed:
        context.log.warning(f"not day=YYYY-MM-DD folders, never crawled (rename them): {', '.join(misnamed)}")


def _warn_early(context: SensorEvaluationContext, days: list[str], first: str) -> None:
    """Day folders before the first partition are never crawled: said on every tick (the quarantine check too)."""
    early = [d for d in days if d < first]
    if early:
        context.log.warning(f"day folders before the first partition ({first}), never crawled (move them, or start "
                            f"the partitions earlier): {', '.join(early[:20])}"
                            + (f" and {len(early) - 20} more" if len(early) > 20 else ""))


def _late(context: SensorEvaluationContext, days: list[str], partitions: DailyPartitionsDefinition) -> str:
    """Day folders after the last partition (landed before the clock was set back) wait for their evening:
    said in the tick's skip reason and the log, not passed over in silence; "" when there is none."""
    last = partitions.get_last_partition_key()
    late = [d for d in days if last is None or d > last]
    if not late:
        return ""
    said = (f"{len(late)} day folder(s) after the last partition {last} ({settings.CLOCK.name}="
            f"{settings.clock_text() or 'unset: the real clock'}), crawled once their evening comes (or set the clock "
            f"forward): {', '.join(late[:20])}" + (f" and {len(late) - 20} more" if len(late) > 20 else ""))
    context.log.warning(said)
    return f"; {said}"


def _crawl_requests(instance: DagsterInstance, lake: Lake, catalog: Catalog, seen: dict[str, str],
                    days: list[str]) -> tuple[list[RunRequest], dict[str, str]]:
    """The crawls of those `days` whose files changed since `seen` (the cursor), and the cursor after them.

    A day the catalog registered with these very files (crawled by a schedule or backfill run)
    enters the cursor without a crawl; a day a run is landing or crawling now enters neither, so
    the next tick looks at it again.
    """
    registered = {t: catalog.partition_parameters(t) for t in RAW_TABLES}
    requests, cursor = [], dict(seen)
    for day in days:
        prints = {t: fingerprint(lake.list_day(t, day)) for t in RAW_TABLES}
        digest = "/".join(prints[t] for t in RAW_TABLES)
        if seen.get(day) == digest:
            continue
        crawled = all(prints[t] == registered[t].get(day, {}).get(FINGERPRINT, fingerprint([])) for t in RAW_TABLES)
        if not crawled:
            if _in_flight(instance, day):
                continue
            requests.append(_crawl_request(day, digest))
        cursor[day] = digest
    return requests, cursor


def _in_flight(instance: DagsterInstance, day: str) -> bool:
    """Whether a run of partition `day` is queued or running."""
    return bool(instance.get_run_ids(RunsFilter(tags={PARTITION: day}, statuses=IN_FLIGHT), limit=1))


def _crawl_request(day: str, digest: str) -> RunRequest:
    """The crawled assets of `day` (not the raw ones: landing would replace the upload), keyed by
    its files so that a changed upload is crawled again."""
    return RunRequest(
        run_key=f"lake-{day}-{digest[:16]}", partition_key=day,
        asset_selection=[AssetKey(t) for t in RAW_TABLES],
        tags={JOIN_THROUGH: day, TRIGGER: "lake"},
    )


def join_after_crawl_sensor(crawl_job: AssetJob, join_job: AssetJob, horizon_days: int) -> RunStatusSensorDefinition:
    """After a crawl tagged `zfish/join_through` D succeeded: the join of D's evening window of `horizon_days`,
    one run."""

    @run_status_sensor(run_status=DagsterRunStatus.SUCCESS, monitored_jobs=[crawl_job], request_job=join_job,
                       default_status=sensor_status(), minimum_interval_seconds=15,
                       description=f"After a crawl of day D succeeded: joined_fish_data over {window_text(horizon_days)}, one run.")
    def join_after_crawl(context: RunStatusSensorContext):
        day = context.dagster_run.tags.get(JOIN_THROUGH)
        if not day:
            return SkipReason("not an evening or lake crawl")
        first, last = evening_window(day, horizon_days)
        last = max([last, *_days_materialized(context.instance, context.dagster_run.run_id)])
        return RunRequest(run_key=f"join-after-{context.dagster_run.run_id}",
                          tags={RANGE_START: first, RANGE_END: last, JOIN_THROUGH: day,
                                TRIGGER: context.dagster_run.tags.get(TRIGGER, "")})

    return join_after_crawl


def _days_materialized(instance: DagsterInstance, run_id: str) -> list[str]:
    """The partitions the run materialized: its own day and the later days its crawls re-judged (an
    image moved to them), so the chained join reaches those too rather than wait for their evening."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=1000)
    return [r.event_log_entry.dagster_event.partition for r in records.records
            if r.event_log_entry.dagster_event and r.event_log_entry.dagster_event.partition]
