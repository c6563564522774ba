"""The Glue 5.0 job that builds joined_fish_data for a range of days (and runs locally alike).

Reads the observations of [first_day, last_day] and every registered outcome from the catalog,
joins, flattens, keeps labeled rows, and upserts them into the Hudi table. Under Glue the
arguments come from `getResolvedOptions`; elsewhere from the command line, same names.

Two modes (`join_mode`). `full` upserts every labeled row of the range: copy-on-write rewrites
every labeled partition of it. `incremental` compares those rows with the table's current rows
and upserts only the new or changed ones, so only partitions with news are rewritten; it also
redoes the days before the range on which a fish whose stored label is not its latest was imaged
(a correction arriving after the window passed them), as a `full` run over those days would.

Both modes then delete, in a second commit of the run, the stored rows of the days read that
those days no longer make (`deleted_keys`): images a re-delivery dropped, quarantined or moved to
another day, and images of a fish whose last label was withdrawn. The days read are then exactly
what a fresh build of them gives; a rerun finds what a killed run left undeleted. Last, the
digests of the touched days' keys are replaced beside the table (`table_keys`), for the checks.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_scripts.zfish_etl import aws
from glue_scripts.zfish_etl.catalog import CatalogTable, read_glue_table, read_local_table
from glue_scripts.zfish_etl.hudi import delete, hive_sync_options, read_table, upsert
from glue_scripts.zfish_etl.label_state import LABEL_STATE_KEY, StaleLabelScan, plan_stale_label_scan
from glue_scripts.zfish_etl.modes import JOIN_MODES
from glue_scripts.zfish_etl.read import read_days
from glue_scripts.zfish_etl.session import materialized
from glue_scripts.zfish_etl.table_keys import write_table_keys
from glue_scripts.zfish_etl.transform import changed_rows, deleted_keys, join_labeled, stale_label_days

ARGUMENTS = (
    "first_day", "last_day", "database", "observations_table", "outcomes_table",
    "target_path", "target_table", "catalog", "catalog_dir", "result_uri", "hive_sync", "join_mode",
    "aws_endpoint_url", "aws_region",
)
OPTIONAL = ("catalog", "catalog_dir", "result_uri", "hive_sync", "join_mode", "aws_endpoint_url", "aws_region")
EMPTY_BY_DEFAULT = ("catalog_dir", "result_uri", "hive_sync", "aws_endpoint_url", "aws_region")


@dataclass(frozen=True)
class JobArgs:
    first_day: str
    last_day: str
    database: str
    observations_table: str
    outcomes_table: str
    target_path: str
    target_table: str
    catalog: str = "glue"  # "glue" or "file"
    catalog_dir: str = ""
    result_uri: str = ""  # s3://... where the job writes its JobResult as JSON (the Glue engine reads it)
    hive_sync: str = ""  # "true" on Glue (set by `zfish deploy`): Hudi registers the table in the catalog
    join_mode: str = "incremental"  # or "full": see the module docstring
    # The endpoint and region of the job's own AWS clients (catalog, result): set when the catalog
    # is served by a local endpoint (ZFISH_AWS_ENDPOINT_URL); on Glue both are empty (AWS's own).
    aws_endpoint_url: str = ""
    aws_region: str = ""

    def days(self) -> list[str]:
        first, last = date.fromisoformat(self.first_day), date.fromisoformat(self.last_day)
        if last < first:
            raise ValueError(f"last_day {self.last_day} is before first_day {self.first_day}")
        return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


@dataclass(frozen=True)
class JobResult:
    first_day: str
    last_day: str
    observations_read: int
    rows_upserted: int  # incremental: the rows that changed; full: every labeled row of the range
    rows_per_day: dict[str, int]  # rows upserted per day: its keys are the days redone
    commit_instant: str | None
    files_written: int
    bytes_written: int
    join_mode: str
    rows_labeled: int  # labeled rows computed for the days read (what `full` upserts)
    days_read: list[str]  # the range, plus (incremental) the earlier days of stale labels
    partitions_touched: list[str]  # the commit's partitions, from Hudi's commit file
    files_replaced: int  # of files_written, new versions of existing files (the rest are new file groups)
    bytes_replaced: int
    # The days before the range the stale-label scan read: those a label newer than the last commit
    # can reach (see label_state); None when it read every one (the last commit recorded no labels).
    days_scanned: list[str] | None = None
    rows_deleted: int = 0  # stored rows of the days read that they no longer make
    deleted_per_day: dict[str, int] = field(default_factory=dict)
    delete_instant: str | None = None  # the run's second commit, when it deleted


def find_table(args: JobArgs, name: str) -> CatalogTable | None:
    """A source table from the catalog the job was pointed at (None when never crawled)."""
    if args.catalog == "file":
        return read_local_table(args.catalog_dir, args.database, name)
    return read_glue_table(aws.client("glue"), args.database, name)


def days_to_read(args: JobArgs, stored: DataFrame | None, outcomes: DataFrame | None,
                 scan: StaleLabelScan | None = None) -> tuple[list[str], list[str] | None]:
    """The range, and in incremental mode the earlier days holding a stored row with a stale label:
    among the days `scan` names (those a label newer than the last commit can reach), or all.
    Also the earlier days the scan read (None: every one)."""
    if stored is None or outcomes is None:
        return args.days(), []
    older, scanned = stored.where(F.col("day") < args.first_day), None
    if scan is not None and scan.days is not None:
        scanned = [d for d in scan.days if d < args.first_day]
        if not scanned:
            return args.days(), []
        older = older.where(F.col("day").isin(scanned))
    stale = stale_label_days(older, outcomes).collect()
    return sorted({r["day"] for r in stale} | set(args.days())), scanned


def keys_to_delete(stored: DataFrame, labeled: DataFrame | None, days: list[str]) -> DataFrame:
    """The keys to delete: stored rows of `days` the labeled rows (none: no label or no observation) do not hold.

    Materialized (computed once, kept) so the delete commit writes what was counted, not a
    recomputation over files the run's upsert has just replaced.
    """
    in_days = stored.where(F.col("day").isin(days))
    if labeled is None:
        return materialized(in_days.select("image_id", "day", "timestamp"))
    return materialized(deleted_keys(in_days, labeled))


def extra_hudi_options(args: JobArgs) -> dict[str, str] | None:
    """Hudi's hive sync when the job runs with `--hive_sync true` (on Glue, a default argument `zfish deploy` sets)."""
    return hive_sync_options(args.database, args.target_table) if args.hive_sync == "true" else None


def run(spark: SparkSession, args: JobArgs) -> JobResult:
    """The whole job: read the window and every registered label, transform, upsert (all or what changed),
    then delete the stored rows of the days read that they no longer make.

    No outcomes table yet (no label has arrived) means no labeled row: nothing is written (and a
    table with rows but no outcomes table in the catalog is refused, not emptied). In incremental
    mode nothing is written either when no row changed and none is gone: no commit, no file rewritten.
    """
    if args.join_mode not in JOIN_MODES:
        raise ValueError(f"join_mode={args.join_mode!r} is not one of {', '.join(JOIN_MODES)}")
    aws.use_endpoint(args.aws_endpoint_url, args.aws_region)
    observations_table = find_table(args, args.observations_table)
    if observations_table is None:
        raise LookupError(f"table {args.database}.{args.observations_table} is not in the catalog: crawl it first")
    outcomes_table = find_table(args, args.outcomes_table)
    outcomes = read_days(spark, outcomes_table) if outcomes_table is not None else None
    stored = read_table(spark, args.target_path)
    if outcomes is None and stored is not None:
        raise LookupError(f"table {args.database}.{args.outcomes_table} is not in the catalog but {args.target_path} "
                          "holds labeled rows: re-crawl the outcomes (the job would otherwise delete every row)")
    incremental = args.join_mode == "incremental"
    scan = plan_stale_label_scan(args.target_path, outcomes) if incremental and outcomes is not None else None
    days, days_scanned = days_to_read(args, stored if incremental else None, outcomes, scan)
    observations = read_days(spark, observations_table, days)
    observations_read = int(observations.count())  # Spark Connect 3.5 counts through pandas: numpy.int64
    rows_labeled, rows_per_day, stats, labeled = 0, {}, None, None
    extra = extra_hudi_options(args) or {}
    if outcomes is not None and observations_read:
        labeled = join_labeled(observations, outcomes).cache()
        rows_labeled = int(labeled.count())
    # Found before the upsert rewrites the files `stored` reads.
    gone = keys_to_delete(stored, labeled, days) if stored is not None else None
    if labeled is not None:
        # The changed rows are materialized once (kept, spilling to disk): counted, then written,
        # without comparing again against files the upsert is replacing.
        to_write = labeled if stored is None or not incremental else \
            materialized(changed_rows(labeled, stored.where(F.col("day").isin(days))))
        rows_per_day = {r["day"]: r["count"] for r in to_write.groupBy("day").count().collect()}
        if scan is not None:  # what this run saw of the labels, for the next evening's scan (both commits)
            extra[LABEL_STATE_KEY] = scan.next_state(stored, to_write).to_json()
        stats = upsert(to_write, args.target_path, args.target_table, args.database, extra)
        to_write.unpersist()
    deleted_per_day = {r["day"]: r["count"] for r in gone.groupBy("day").count().collect()} if gone is not None else {}
    deleted = delete(gone, args.target_path, args.target_table, args.database, extra) if deleted_per_day else None
    if gone is not None:
        gone.unpersist()
    if labeled is not None:
        labeled.unpersist()
    observations.unpersist()
    if outcomes is not None:
        outcomes.unpersist()
    commits = [c for c in (stats, deleted) if c is not None]
    touched = sorted({p.removeprefix("day=") for c in commits for p in c.partitions})
    write_table_keys(spark, args.target_path, touched)
    return JobResult(
        first_day=args.first_day,
        last_day=args.last_day,
        observations_read=observations_read,
        rows_upserted=sum(rows_per_day.values()),
        rows_per_day=dict(sorted(rows_per_day.items())),
        commit_instant=stats.instant if stats else None,
        files_written=sum(c.files_written for c in commits),
        bytes_written=sum(c.bytes_written for c in commits),
        join_mode=args.join_mode,
        rows_labeled=rows_labeled,
        days_read=days,
        partitions_touched=touched,
        files_replaced=sum(c.files_replaced for c in commits),
        bytes_replaced=sum(c.bytes_replaced for c in commits),
        days_scanned=days_scanned,
        rows_deleted=sum(deleted_per_day.values()),
        deleted_per_day=dict(sorted(deleted_per_day.items())),
        delete_instant=deleted.instant if deleted else None,
    )


def parse_args(argv: list[str]) -> JobArgs:
    """Glue's `--name value` arguments, through awsglue when it is there."""
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        parser = argparse.ArgumentParser(description=__doc__)
        for name in ARGUMENTS:
            parser.add_argument(f"--{name}", default="" if name in EMPTY_BY_DEFAULT else None,
                                required=name not in OPTIONAL)
        values = vars(parser.parse_known_args(argv)[0])
        values["catalog"] = values["catalog"] or "glue"
        values["join_mode"] = values["join_mode"] or "incremental"
        return JobArgs(**values)
    optional = [n for n in OPTIONAL if f"--{n}" in argv]
    required = [n for n in ARGUMENTS if n not in OPTIONAL]
    return JobArgs(**getResolvedOptions(argv, required + optional))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv if argv is None else argv)
    spark = SparkSession.builder.getOrCreate()
    result = run(spark, args)
    print("ZFISH_RESULT " + json.dumps(asdict(result)))
    if args.result_uri:
        write_result(args, result)


def write_result(args: JobArgs, result: JobResult) -> None:
    """Store the result at `args.result_uri`, where the engine that started the job reads it."""
    bucket, _, key = args.result_uri.removeprefix("s3://").partition("/")
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(asdict(result)).encode())


if __name__ == "__main__":
    main()
