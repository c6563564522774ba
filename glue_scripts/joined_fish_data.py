"""The Glue 5.0 job that builds joined_fish_data for a range of days (and runs locally alike).

Reads the observations of [first_day, last_day] and every registered outcome from the catalog,
joins, flattens, keeps labeled rows, and upserts them into the Hudi table. Under Glue the
arguments come from `getResolvedOptions`; elsewhere from the command line, same names.

Two modes (`join_mode`). `full` upserts every labeled row of the range: copy-on-write rewrites
every labeled partition of it. `incremental` compares those rows with the table's current rows
and upserts only the new or changed ones, so only partitions with news are rewritten; it also
redoes the days before the range on which a fish whose stored label is not its latest was imaged
(a correction arriving after the window passed them), as a `full` run over those days would.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_scripts.zfish_etl import aws
from glue_scripts.zfish_etl.catalog import CatalogTable, read_glue_table, read_local_table
from glue_scripts.zfish_etl.hudi import hive_sync_options, read_table, upsert
from glue_scripts.zfish_etl.modes import JOIN_MODES
from glue_scripts.zfish_etl.read import read_days
from glue_scripts.zfish_etl.transform import changed_rows, join_labeled, stale_label_days

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


def find_table(args: JobArgs, name: str) -> CatalogTable | None:
    """A source table from the catalog the job was pointed at (None when never crawled)."""
    if args.catalog == "file":
        return read_local_table(args.catalog_dir, args.database, name)
    return read_glue_table(aws.client("glue"), args.database, name)


def days_to_read(args: JobArgs, stored: DataFrame | None, outcomes: DataFrame | None) -> list[str]:
    """The range, and in incremental mode the earlier days holding a stored row with a stale label."""
    if stored is None or outcomes is None:
        return args.days()
    older = stale_label_days(stored.where(F.col("day") < args.first_day), outcomes).collect()
    return sorted({r["day"] for r in older} | set(args.days()))


def extra_hudi_options(args: JobArgs) -> dict[str, str] | None:
    """Hudi's hive sync when the job runs with `--hive_sync true` (on Glue, a default argument `zfish deploy` sets)."""
    return hive_sync_options(args.database, args.target_table) if args.hive_sync == "true" else None


def run(spark: SparkSession, args: JobArgs) -> JobResult:
    """The whole job: read the window and every registered label, transform, upsert (all or what changed).

    No outcomes table yet (no label has arrived) means no labeled row: nothing is written. In
    incremental mode nothing is written either when no row changed: no commit, no file rewritten.
    """
    if args.join_mode not in JOIN_MODES:
        raise ValueError(f"join_mode={args.join_mode!r} is not one of {', '.join(JOIN_MODES)}")
    aws.use_endpoint(args.aws_endpoint_url, args.aws_region)
    observations_table = find_table(args, args.observations_table)
    if observations_table is None:
        raise LookupError(f"table {args.database}.{args.observations_table} is not in the catalog: crawl it first")
    outcomes_table = find_table(args, args.outcomes_table)
    outcomes = read_days(spark, outcomes_table).cache() if outcomes_table is not None else None
    stored = read_table(spark, args.target_path) if args.join_mode == "incremental" else None
    days = days_to_read(args, stored, outcomes)
    observations = read_days(spark, observations_table, days).cache()
    observations_read = observations.count()
    rows_labeled, rows_per_day, stats = 0, {}, None
    if outcomes is not None and observations_read:
        labeled = join_labeled(observations, outcomes).cache()
        rows_labeled = labeled.count()
        # The changed rows are materialized once (lineage cut): counted, then written, without
        # comparing again against files the upsert is replacing.
        to_write = labeled if stored is None else \
            changed_rows(labeled, stored.where(F.col("day").isin(days))).localCheckpoint()
        rows_per_day = {r["day"]: r["count"] for r in to_write.groupBy("day").count().collect()}
        extra = extra_hudi_options(args)
        stats = upsert(to_write, args.target_path, args.target_table, args.database, extra)
        labeled.unpersist()
    observations.unpersist()
    if outcomes is not None:
        outcomes.unpersist()
    return JobResult(
        first_day=args.first_day,
        last_day=args.last_day,
        observations_read=observations_read,
        rows_upserted=sum(rows_per_day.values()),
        rows_per_day=dict(sorted(rows_per_day.items())),
        commit_instant=stats.instant if stats else None,
        files_written=stats.files_written if stats else 0,
        bytes_written=stats.bytes_written if stats else 0,
        join_mode=args.join_mode,
        rows_labeled=rows_labeled,
        days_read=days,
        partitions_touched=[p.removeprefix("day=") for p in stats.partitions] if stats else [],
        files_replaced=stats.files_replaced if stats else 0,
        bytes_replaced=stats.bytes_replaced if stats else 0,
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
