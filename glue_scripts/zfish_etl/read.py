"""Reading the crawled tables into Spark: registered partitions only, the rows the crawl accepted.

The crawl judged every line against the table's contract and wrote the rejected ones to each day's
quarantine ledger. The job reads the same files line by line, leaves out exactly the ledger's
lines, and judges the rest with the same `check_line` (same module, run on the executors), which
also gives the same normalized values (UTC timestamps, undeclared fields dropped). So no row is
dropped without a quarantine entry, and bad input never fails the job. A line the contract rejects
but the ledger does not name means the files changed after the crawl: the job refuses to guess and
fails naming the lines, as the `partitions_match_lake` check does for the same cause.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from glue_scripts.zfish_etl.catalog import CatalogTable
from glue_scripts.zfish_etl.contract import Contract, check_line, contract_for, data_lines, is_data_file, ledger_uri
from glue_scripts.zfish_etl.files import join, list_folders, read_files
from glue_scripts.zfish_etl.landing import readable_folders

_LINES = StructType([
    StructField("day", StringType()), StructField("file", StringType()), StructField("line", IntegerType()),
    StructField("reason", StringType()), StructField("detail", StringType()), StructField("row", StringType()),
])
STALE_SHOWN = 10
FILES_PER_TASK = 2000


def _judged_lines(day: str, name: str, content: bytes, contract: Contract,
                  excluded: frozenset[tuple[str, str, int]]) -> Iterator[tuple]:
    """(day, file, line, reason, detail, normalized row as JSON) for each line not in the quarantine."""
    for line, text in data_lines(content.decode("utf-8", errors="replace")):  # as the crawl decodes
        if (day, name, line) in excluded:
            continue
        verdict = check_line(contract, text)
        yield day, name, line, verdict.reason, verdict.detail, None if verdict.reason else json.dumps(verdict.row)


def quarantined_lines(table: CatalogTable, days: list[str]) -> frozenset[tuple[str, str, int]]:
    """(day, file, line) of every quarantine entry of `days` (a day crawled without a ledger has none)."""
    uris = [ledger_uri(table.location, d) for d in days]
    entries = (json.loads(text) for _, content in read_files(uris, missing_ok=True) if content
               for text in content.decode("utf-8").splitlines() if text.strip())
    return frozenset((e["day"], e["file"], e["line"]) for e in entries)


def day_files(table: CatalogTable, days: list[str]) -> list[tuple[str, str, str]]:
    """(day, file name, URI) of every data file of the registered `days`, listed as the crawl lists them:
    a day an S3 landing is replacing is read from its previous copy (see `landing`), never half."""
    resolved = readable_folders([table.partitions[day] for day in days])
    readable = [(day, folder) for day, folder in zip(days, resolved) if folder is not None]
    folders = [folder for _, folder in readable]
    return [(day, name, join(folder, name))
            for (day, folder), names in zip(readable, list_folders(folders)) for name in names if is_data_file(name)]


def read_days(spark: SparkSession, table: CatalogTable, days: list[str] | None = None) -> DataFrame:
    """The accepted rows of the table's registered partitions among `days` (all when None).

    The catalog's columns are the schema (`day` from the folder). Fails, naming the lines, when a
    line breaks the contract without a quarantine entry (files changed since the crawl).

    The driver lists each day and reads its files (see `files`); Spark's executors judge the lines,
    in a task per `FILES_PER_TASK` files (at most four per core), and parse the accepted rows with
    the catalog's schema.
    """
    wanted = sorted(table.partitions if days is None else set(days) & set(table.partitions))
    if not wanted:
        return spark.createDataFrame([], table.ddl())
    contract = contract_for(table.name)
    excluded = quarantined_lines(table, wanted)
    listed = day_files(table, wanted)
    contents = read_files([uri for _, _, uri in listed])
    files = [(day, name, content) for (day, name, _), (_, content) in zip(listed, contents)]
    slices = max(1, min(len(files) // FILES_PER_TASK + 1, 4 * spark.sparkContext.defaultParallelism))
    judged = spark.sparkContext.parallelize(files, slices).flatMap(
        lambda f: _judged_lines(f[0], f[1], f[2], contract, excluded))
    del files  # the JVM holds the slices now
    # Judged once (lineage cut, so the files are not shipped again): for the stale lines, then the rows.
    lines = spark.createDataFrame(judged, _LINES).localCheckpoint()
    stale = lines.where(F.col("reason").isNotNull()).orderBy("day", "file", "line").limit(STALE_SHOWN).collect()
    if stale:
        shown = "; ".join(f"day={r['day']} {r['file']}:{r['line']} {r['reason']} ({r['detail']})" for r in stale)
        raise ValueError(
            f"{table.database}.{table.name}: lines break the contract but are not in the quarantine, so the files "
            f"changed after the crawl: {shown}. Re-crawl those days."
        )
    columns = StructType([f for f in spark.createDataFrame([], table.ddl()).schema.fields if f.name != "day"])
    parsed = lines.select(F.from_json("row", columns).alias("r"), "day")
    return parsed.select(*[F.col(f"r.{f.name}").alias(f.name) for f in columns.fields], "day")
