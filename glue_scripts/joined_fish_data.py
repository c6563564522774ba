"""The Glue 5.0 job that builds joined_fish_data for a range of days (and runs locally alike).

Reads the observations of [first_day, last_day] and every registered outcome from the catalog,
joins, flattens, keeps labeled rows, and upserts them into the Hudi table. Under Glue the
arguments come from `getResolvedOptions`; elsewhere from the command line, same names.

Two modes (`join_mode`). `full` upserts every labeled row of the range: copy-on-write rewrites
every labeled partition of it. `incremental` compares those rows with the table's current rows
and upserts only the new or changed ones, so only partitions with news are rewritten; it also
redoes the days before the range on which a fish whose stored label is not its latest was imaged
(a correction arriving after the window passed them), as a `full` run over those days would.

In incremental mode the run also redoes the days outside the range that hold images of a fish
whose label arrived or changed since the last commit, however old, where the table lacks that
label on them (`late_labels`): the days come from an index of the days holding each fish's images
that the job keeps beside the table (`fish_index`), so no other day of the history is read.

Both modes then delete, in a second commit of the run, the stored rows of the days read that
those days no longer make (`deleted_keys`): images a re-delivery dropped, quarantined or moved to
another day, and images of a fish whose last label was withdrawn. The days read are then exactly
what a fresh build of them gives; a rerun finds what a killed run left undeleted. Last, the
digests of the touched days' keys are replaced beside the table (`table_keys`), for the checks, and
the days read that the fish index lacked are added to it.

The job writes the table (and those digests and the index) and nothing else: the catalog learns of
it from the Dagster side (the Hudi IO manager registers it and its partitions after every run,
whichever engine ran the job).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import reduce

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_scripts.zfish_etl import aws
from glue_scripts.zfish_etl.catalog import CatalogTable, read_glue_table, read_local_table
from glue_scripts.zfish_etl.fish_index import FishIndex, day_keys, entries_of, read_index, update_index
from glue_scripts.zfish_etl.deregistered import refuse_deregistered
from glue_scripts.zfish_etl.hudi import CommitStats, delete, read_table, require_timeline, upsert
from glue_scripts.zfish_etl.job_args import JobArgs, JobResult, parse_args
from glue_scripts.zfish_etl.lease import hold
from glue_scripts.zfish_etl.label_state import (LABEL_STATE_KEY, UNREGISTERED, StaleLabelScan, label_day_pairs,
                                               observation_versions, plan_stale_label_scan)
from glue_scripts.zfish_etl.late_labels import LatePlan, plan_late_labels
from glue_scripts.zfish_etl.modes import JoinMode
from glue_scripts.zfish_etl.pipes import dagster_pipes, report
from glue_scripts.zfish_etl.read import as_crawled, read_days
from glue_scripts.zfish_etl.session import KEPT, releasing
from glue_scripts.zfish_etl.table_keys import write_table_keys
from glue_scripts.zfish_etl.transform import changed_rows, deleted_keys, join_labeled, stale_label_days
from glue_scripts.zfish_etl.write_errors import ensure_room, os_errors


def find_table(args: JobArgs, name: str) -> CatalogTable | None:
    """A source table from the catalog the job was pointed at (None when never crawled)."""
    if args.catalog == "file":
        return read_local_table(args.catalog_dir, args.database, name)
    return read_glue_table(aws.client("glue"), args.database, name)


def days_to_read(args: JobArgs, news: list[str], stored: DataFrame | None, outcomes: DataFrame | None,
                 scan: StaleLabelScan | None = None) -> tuple[list[str], list[str] | None]:
    """The range's days with `news` (all of it but in incremental mode), and in incremental mode the
    days holding a stored row with a stale label, of the days before the range and the range's others:
    among the days `scan` names (those a label newer than the last commit can reach), or all.
    Also the days the scan read (None: every one)."""
    if stored is None or outcomes is None:
        return news, []
    reading = set(news)
    quiet = [d for d in args.days() if d not in reading]
    older, scanned = stored.where((F.col("day") < args.first_day) | F.col("day").isin(quiet)), None
    if scan is not None and scan.days is not None:
        scanned = [d for d in scan.days if d < args.first_day or d in quiet]
        if not scanned:
            return news, []
        older = older.where(F.col("day").isin(scanned))
    stale = stale_label_days(older, outcomes).collect()
    return sorted({r["day"] for r in stale} | set(news)), scanned


@dataclass(frozen=True)
class ReadPlan:
    """The days a run reads (the range, older days of stale labels, days of late labels), the days
    the stale-label scan read (None: every older one), the late-label plan, and the fish index."""

    days: list[str]
    scanned: list[str] | None
    late: LatePlan | None
    index: FishIndex
    keys: dict[str, str | None]  # the observation days' index keys
    indexed: frozenset[str]  # the days with a current index entry when the run began
    versions: dict[str, str | None] = field(default_factory=dict)  # the observation days' `observation_versions`
    unchanged: list[str] = field(default_factory=list)  # the range's days not read: no news since the last commit

    def built(self) -> dict[str, str]:
        """The versions of the days read, as the commit records them (a day without one is never recorded)."""
        return {d: v for d in self.days if (v := self.versions.get(d, UNREGISTERED)) is not None}

    def to_index(self) -> list[str]:
        """The days read that the index lacks (those the late-label plan indexed aside)."""
        aside = set(self.late.indexed) if self.late is not None else set()
        return [d for d in self.days if self.keys.get(d) and d not in self.indexed and d not in aside]

    def new_entries(self, counts: RunCounts) -> pa.Table:
        """The index entries the run adds: of the days the plan indexed, and of `to_index` from `counts`."""
        read = entries_of(counts.fish, self.to_index(), self.keys)
        return pa.concat_tables([self.late.entries, read]) if self.late is not None else read


def news_days(args: JobArgs, scan: StaleLabelScan | None, table: CatalogTable, versions: dict[str, str | None],
              indexed: frozenset[str]) -> list[str]:
    """The range's days to read whole: in incremental mode those whose observations changed since the
    table's last commit built them, whose files changed since their crawl (`as_crawled`), or that the
    fish index lacks (the late-label plan needs it); otherwise, or without a recorded state, every one."""
    if scan is None or scan.previous is None:
        return args.days()
    same = scan.previous.unchanged(args.days(), versions)
    gone = {d for d in same if versions[d] == UNREGISTERED}
    unchanged = gone | (as_crawled(table, sorted(set(same) - gone)) & indexed)
    return [d for d in args.days() if d not in unchanged]


def plan_reads(spark: SparkSession, args: JobArgs, observations_table: CatalogTable, outcomes: DataFrame | None,
               stored: DataFrame | None, scan: StaleLabelScan | None) -> ReadPlan:
    """What the run reads: `days_to_read` of the range's days with news, plus (incremental) the other
    days, of the range or not, of fish labeled since the last commit that lack their label
    (`late_labels`). No commit yet: every label is new, so the first run places them too (a table
    started on a lake with history otherwise lacked its older labeled images until a label of their
    fish changed)."""
    incremental = args.join_mode is JoinMode.INCREMENTAL
    index, keys = read_index(args.target_path), day_keys(observations_table)
    indexed = frozenset(index.indexed_days(keys))
    versions = observation_versions(observations_table, {*observations_table.partitions, *args.days()})
    news = news_days(args, scan, observations_table, versions, indexed) \
        if incremental and stored is not None else args.days()
    days, scanned = days_to_read(args, news, stored if incremental else None, outcomes, scan)
    late = plan_late_labels(spark, news, args.days(), observations_table, outcomes, stored, scan, index, keys) \
        if scan is not None else None
    if late is not None:
        days = sorted(set(days) | set(late.days))
    read = set(days)
    return ReadPlan(days, scanned, late, index, keys, indexed, versions, [d for d in args.days() if d not in read])


def keys_to_delete(stored: DataFrame, labeled: DataFrame | None, days: list[str]) -> DataFrame:
    """The keys to delete: stored rows of `days` the labeled rows (none: no label) do not hold.

    Persisted (kept once computed: `count_run` computes it before the upsert) so the delete commit
    writes what was counted, not a recomputation over files the run's upsert has just replaced.
    """
    in_days = stored.where(F.col("day").isin(days))
    if labeled is None:
        return in_days.select("image_id", "day", "timestamp").persist(KEPT)
    return deleted_keys(in_days, labeled).persist(KEPT)


def rows_to_write(args: JobArgs, labeled: DataFrame, stored: DataFrame | None, days: list[str]) -> DataFrame:
    """The labeled rows to upsert: all of them, or in incremental mode those that differ from the stored ones.

    The changed rows are persisted (kept once computed, spilling to disk: `count_run` computes
    them), then written, without comparing again against files the upsert is replacing.
    """
    if stored is None or args.join_mode is not JoinMode.INCREMENTAL:
        return labeled
    return changed_rows(labeled, stored.where(F.col("day").isin(days))).persist(KEPT)


@dataclass(frozen=True)
class RunCounts:
    """What the run counted: observations read, labeled rows, rows to write per (day, label day), keys
    to delete per day."""

    observations: int
    labeled: int
    to_write: dict[tuple[str, str], int]
    to_delete: dict[str, int]
    fish: dict[tuple[str, str], int] = field(default_factory=dict)  # images per (day, fish) of the days to index
    stored_labels: dict[tuple[str, str], int] = field(default_factory=dict)  # stored rows per (day, label day)

    def rows_per_day(self) -> dict[str, int]:
        per_day: dict[str, int] = {}
        for (day, _), n in self.to_write.items():
            per_day[day] = per_day.get(day, 0) + n
        return per_day

    def label_days(self) -> dict[str, list[str]]:
        """The (label day -> image days) pairs of the rows to write, as the label state records them."""
        return label_day_pairs((outcome_day, day) for day, outcome_day in self.to_write)

    def stored_label_days(self) -> dict[str, list[str]]:
        """The (label day -> image days) pairs of the stored rows counted (`count_run`'s `stored_labels`)."""
        return label_day_pairs((outcome_day, day) for day, outcome_day in self.stored_labels)


def count_run(observations: DataFrame, labeled: DataFrame | None, to_write: DataFrame | None,
              gone: DataFrame | None, to_index: list[str] | None = None,
              stored_labels: DataFrame | None = None) -> RunCounts:
    """The run's counts in one Spark action, which also computes the persisted frames it counts.

    Each action has a fixed cost (planning, scheduling: 0.2-3 s each here, docs/performance.md) far above
    what 10^3 rows take, so the observations, the labeled rows, the rows to write, the keys to
    delete, the images per fish of the days `to_index` and the rows of `stored_labels` (the stored
    table, when the label state must record where every stored row's label day lives) are counted
    together, grouped as the run needs them.
    """
    null = F.lit(None).cast("string")
    parts = [df.groupBy().count().select(F.lit(of).alias("of"), null.alias("day"), null.alias("key"), "count")
             for of, df in (("observations", observations), ("labeled", labeled)) if df is not None]
    grouped = [("to_write", to_write, "outcome_day"), ("to_delete", gone, None),
               ("fish", observations.where(F.col("day").isin(to_index) & F.col("fish_id").isNotNull())
                if to_index else None, "fish_id"), ("stored_labels", stored_labels, "outcome_day")]
    parts += [df.groupBy("day", *[by] * (by is not None)).count().select(
        F.lit(of).alias("of"), "day", (F.col(by) if by else null).alias("key"), "count")
        for of, df, by in grouped if df is not None]
    # `a.unionByName`, not `DataFrame.unionByName`: on Spark Connect the frames are another class.
    rows = reduce(lambda a, b: a.unionByName(b), parts).collect()
    names = ("observations", "labeled", "to_write", "to_delete", "fish", "stored_labels")
    of = {name: [r for r in rows if r["of"] == name] for name in names}
    return RunCounts(  # int(): Spark Connect 3.5 counts through pandas (numpy.int64)
        observations=sum(int(r["count"]) for r in of["observations"]),
        labeled=sum(int(r["count"]) for r in of["labeled"]),
        to_write={(r["day"], r["key"]): int(r["count"]) for r in of["to_write"]},
        to_delete={r["day"]: int(r["count"]) for r in of["to_delete"]},
        fish={(r["day"], r["key"]): int(r["count"]) for r in of["fish"]},
        stored_labels={(r["day"], r["key"]): int(r["count"]) for r in of["stored_labels"]},
    )


def labels_to_record(scan: StaleLabelScan | None, stored: DataFrame | None) -> DataFrame | None:
    """The stored rows whose (image day, label day) pairs the label state records from the table (`count_run`
    counts them): all of them when the last commit recorded no state, else none (its pairs carry over)."""
    if scan is None or scan.previous is not None or stored is None:
        return None
    return stored.select("day", "outcome_day")


def read_sources(spark: SparkSession, args: JobArgs) -> tuple[CatalogTable, CatalogTable | None, DataFrame | None,
                                                             DataFrame | None]:
    """The observations' and outcomes' catalog tables, every registered label (None: no outcomes table yet)
    and the table's stored rows (None: no commit yet).

    A table with rows but no outcomes table in the catalog is refused: joined with no label, every
    stored row would be deleted.
    """
    require_timeline(args.target_path)
    observations_table = find_table(args, args.observations_table)
    if observations_table is None:
        raise LookupError(f"table {args.database}.{args.observations_table} is not in the catalog: crawl it first")
    outcomes_table = find_table(args, args.outcomes_table)
    outcomes = read_days(spark, outcomes_table) if outcomes_table is not None else None
    stored = read_table(spark, args.target_path)
    if outcomes is None and stored is not None:
        raise LookupError(f"table {args.database}.{args.outcomes_table} is not in the catalog but {args.target_path} "
                          "holds labeled rows: re-crawl the outcomes (the job would otherwise delete every row)")
    return observations_table, outcomes_table, outcomes, stored


@dataclass(frozen=True)
class Commit:
    """One commit of the run: the rows it wrote (or deleted) per day, and Hudi's figures (None: no commit)."""

    rows_per_day: dict[str, int]
    stats: CommitStats | None = None


def commit_states(args: JobArgs, plan: ReadPlan, counts: RunCounts,
                  scan: StaleLabelScan | None) -> tuple[dict[str, str], dict[str, str]]:
    """The commit metadata of the run's upsert and of its delete: what this run saw of the labels (for
    the next evening's stale-label scan) and the observations' versions its days were built from, both in
    the run's last commit only; an upsert followed by a delete records the previous labels
    (`LabelState.interim`), so a run killed between the two leaves the next one the same work to find."""
    if scan is None:
        return {}, {}
    state = scan.next_state(counts.stored_label_days(), counts.label_days(), plan.built(), args.first_day)
    last = {LABEL_STATE_KEY: state.to_json()}
    if not counts.to_delete:
        return last, last
    interim = state.interim(scan.previous)
    return ({LABEL_STATE_KEY: interim.to_json()} if interim is not None else {}), last


def upsert_changes(args: JobArgs, to_write: DataFrame, counts: RunCounts, extra: dict[str, str]) -> Commit:
    """Upsert the rows to write (no commit when `counts` found none), with `extra` commit metadata."""
    rows_per_day = counts.rows_per_day()
    stats = upsert(to_write, args.target_path, args.target_table, args.database, extra) if rows_per_day else None
    return Commit(rows_per_day, stats)


def delete_gone(args: JobArgs, gone: DataFrame, counts: RunCounts, extra: dict[str, str]) -> Commit:
    """Delete the keys `gone` holds, in a commit of its own (none when `counts` found none)."""
    per_day = counts.to_delete
    return Commit(per_day, delete(gone, args.target_path, args.target_table, args.database, extra) if per_day else None)


def run(spark: SparkSession, args: JobArgs, log: Callable[[str], None] = print) -> JobResult:
    """The whole job: read the window and every registered label, transform, upsert (all or what changed),
    then delete the stored rows of the days read that they no longer make.

    No outcomes table yet (no label has arrived) means no labeled row: nothing is written. In
    incremental mode nothing is written either when no row changed and none is gone: no commit, no
    file rewritten. All of it holds the table's lease (`lease.py`): one writer at a time, whoever
    started it; a second one waits up to `args.writer_wait_s` (`log` says for whom), then refuses.
    """
    aws.use_endpoint(args.aws_endpoint_url, args.aws_region, args.kms_key_arn)
    with hold(args.target_path, args.writer, args.writer_wait_s, log) as lease:
        return run_holding(spark, args, lease.check)


def run_holding(spark: SparkSession, args: JobArgs, still_held: Callable[[], None]) -> JobResult:
    """`run`, with the table's lease held; `still_held` raises before a commit when the lease lapsed."""
    observations_table, outcomes_table, outcomes, stored = read_sources(spark, args)
    incremental = args.join_mode is JoinMode.INCREMENTAL
    scan = plan_stale_label_scan(args.target_path, outcomes) if incremental and outcomes is not None else None
    if scan is not None and scan.previous is not None:
        refuse_deregistered(observations_table, scan.previous.registered_observation_days(), "rows")
        refuse_deregistered(outcomes_table, scan.previous.outcome_days, "labels")
    plan = plan_reads(spark, args, observations_table, outcomes, stored, scan)
    days = plan.days
    observations = read_days(spark, observations_table, days)
    labeled = join_labeled(observations, outcomes).persist(KEPT) if outcomes is not None else None
    to_write = rows_to_write(args, labeled, stored, days) if labeled is not None else None
    gone = keys_to_delete(stored, labeled, days) if stored is not None else None
    # Computed here, before the upsert rewrites the files `stored` reads.
    counts = count_run(observations, labeled, to_write, gone, plan.to_index(), labels_to_record(scan, stored))
    ensure_room(args.target_path, set(counts.rows_per_day()) | set(counts.to_delete))
    with os_errors(args.target_path):
        still_held()
        upsert_extra, delete_extra = commit_states(args, plan, counts, scan)
        # No observation: no row is labeled (and every stored row of `days` is gone).
        upserted = upsert_changes(args, to_write, counts, upsert_extra) \
            if to_write is not None and counts.observations else Commit({})
        still_held()
        deleted = delete_gone(args, gone, counts, delete_extra) if gone is not None else Commit({})
        with releasing((gone, to_write, labeled, observations, outcomes)):
            result = job_result(args, counts.observations, counts.labeled, plan, upserted, deleted)
            write_table_keys(spark, args.target_path, result.partitions_touched)
            update_index(args.target_path, plan.index, plan.keys, plan.new_entries(counts))
    return result


def job_result(args: JobArgs, observations_read: int, rows_labeled: int, plan: ReadPlan,
               upserted: Commit, deleted: Commit) -> JobResult:
    """What the run read and wrote, from its (up to) two commits."""
    commits = [c.stats for c in (upserted, deleted) if c.stats is not None]
    touched = sorted({p.removeprefix("day=") for c in commits for p in c.partitions})
    return JobResult(
        first_day=args.first_day,
        last_day=args.last_day,
        observations_read=observations_read,
        rows_upserted=sum(upserted.rows_per_day.values()),
        rows_per_day=dict(sorted(upserted.rows_per_day.items())),
        commit_instant=upserted.stats.instant if upserted.stats else None,
        files_written=sum(c.files_written for c in commits),
        bytes_written=sum(c.bytes_written for c in commits),
        join_mode=args.join_mode,
        rows_labeled=rows_labeled,
        days_read=plan.days,
        partitions_touched=touched,
        files_replaced=sum(c.files_replaced for c in commits),
        bytes_replaced=sum(c.bytes_replaced for c in commits),
        days_scanned=plan.scanned,
        rows_deleted=sum(deleted.rows_per_day.values()),
        deleted_per_day=dict(sorted(deleted.rows_per_day.items())),
        delete_instant=deleted.stats.instant if deleted.stats else None,
        days_placed=sorted(set(plan.late.days) - set(args.days())) if plan.late is not None else [],
        days_indexed=plan.late.indexed if plan.late is not None else [],
        days_unchanged=plan.unchanged,
    )


def main(argv: list[str] | None = None) -> None:
    """The job's entry point (Glue's): run it for the arguments, report its result (`zfish_etl.pipes`)."""
    argv = sys.argv if argv is None else argv
    args = parse_args(argv)
    aws.use_endpoint(args.aws_endpoint_url, args.aws_region, args.kms_key_arn)
    with dagster_pipes(argv) as pipes:
        spark = SparkSession.builder.getOrCreate()
        result = run(spark, args)
        print(f"joined_fish_data {args.first_day}..{args.last_day} ({result.join_mode}): {result.observations_read} "
              f"observations read, {result.rows_upserted} rows upserted, {result.rows_deleted} deleted, "
              f"commit {result.commit_instant or 'none'}", flush=True)
        report(pipes, asdict(result))


if __name__ == "__main__":
    main()
