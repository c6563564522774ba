"""The Glue 5.0 job that builds joined_fish_data for a range of days (and runs locally alike).

Reads the observations of [first_day, last_day] and every registered outcome from the catalog,
joins, flattens, keeps labeled rows, and upserts them into the Hudi table. Under Glue the
arguments come from `getResolvedOptions`; elsewhere from the command line, same names.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from pyspark.sql import SparkSession

from glue_scripts.zfish_etl.catalog import CatalogTable, read_glue_table, read_local_table
from glue_scripts.zfish_etl.hudi import hive_sync_options, upsert
from glue_scripts.zfish_etl.read import read_days
from glue_scripts.zfish_etl.transform import join_labeled

ARGUMENTS = (
    "first_day", "last_day", "database", "observations_table", "outcomes_table",
    "target_path", "target_table", "catalog", "catalog_dir", "result_uri", "hive_sync",
)
OPTIONAL = ("catalog", "catalog_dir", "result_uri", "hive_sync")


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
    rows_upserted: int
    rows_per_day: dict[str, int]
    commit_instant: str | None
    files_written: int
    bytes_written: int


def find_table(args: JobArgs, name: str) -> CatalogTable | None:
    """A source table from the catalog the job was pointed at (None when never crawled)."""
    if args.catalog == "file":
        return read_local_table(args.catalog_dir, args.database, name)
    import boto3

    return read_glue_table(boto3.client("glue"), args.database, name)


def run(spark: SparkSession, args: JobArgs) -> JobResult:
    """The whole job: read the window and every registered label, transform, upsert.

    No outcomes table yet (no label has arrived) means no labeled row: nothing is written.
    """
    observations_table = find_table(args, args.observations_table)
    if observations_table is None:
        raise LookupError(f"table {args.database}.{args.observations_table} is not in the catalog: crawl it first")
    outcomes_table = find_table(args, args.outcomes_table)
    observations = read_days(spark, observations_table, args.days()).cache()
    observations_read = observations.count()
    rows_per_day: dict[str, int] = {}
    stats = None
    if outcomes_table is not None and observations_read:
        joined = join_labeled(observations, read_days(spark, outcomes_table)).cache()
        rows_per_day = {r["day"]: r["count"] for r in joined.groupBy("day").count().collect()}
        extra = hive_sync_options(args.database, args.target_table) if args.hive_sync == "true" else None
        stats = upsert(joined, args.target_path, args.target_table, args.database, extra)
        joined.unpersist()
    observations.unpersist()
    return JobResult(
        first_day=args.first_day,
        last_day=args.last_day,
        observations_read=observations_read,
        rows_upserted=sum(rows_per_day.values()),
        rows_per_day=dict(sorted(rows_per_day.items())),
        commit_instant=stats.instant if stats else None,
        files_written=stats.files_written if stats else 0,
        bytes_written=stats.bytes_written if stats else 0,
    )


def parse_args(argv: list[str]) -> JobArgs:
    """Glue's `--name value` arguments, through awsglue when it is there."""
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        parser = argparse.ArgumentParser(description=__doc__)
        for name in ARGUMENTS:
            parser.add_argument(f"--{name}", default="" if name in ("catalog_dir", "result_uri", "hive_sync") else None,
                                required=name not in OPTIONAL)
        values = vars(parser.parse_known_args(argv)[0])
        values["catalog"] = values["catalog"] or "glue"
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
        write_result(args.result_uri, result)


def write_result(uri: str, result: JobResult) -> None:
    """Store the result where the engine that started the job reads it (boto3 honours AWS_ENDPOINT_URL)."""
    import boto3

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(asdict(result)).encode())


if __name__ == "__main__":
    main()
