"""Reading the crawled tables into Spark: registered partitions only, the rows the crawl accepted.

The crawl judged every line against the table's contract and wrote the rejected ones to each day's
quarantine ledger. The job reads the same files line by line, leaves out exactly the ledger's
lines, and judges the rest with the same `judge_line` (same module, run on the executors), which
also gives the same normalized values (UTC timestamps, undeclared fields dropped). So no row is
dropped without a quarantine entry, and bad input never fails the job. A line the contract rejects
but the ledger does not name means the files changed after the crawl: the job refuses to guess and
fails naming the lines, as the `partitions_match_lake` check does for the same cause.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import BinaryType, IntegerType, StringType, StructField, StructType

from glue_scripts.zfish_etl.catalog import CatalogTable
from glue_scripts.zfish_etl.contract import Contract, contract_for, data_lines, is_data_file, judge_line
from glue_scripts.zfish_etl.ledger import ledger_uri, parse_ledger
from glue_scripts.zfish_etl.files import join, list_folders, read_files
from glue_scripts.zfish_etl.landing import readable_folders
from glue_scripts.zfish_etl.session import KEPT, materialized, parallelism

_LINES = StructType([
    StructField("day", StringType()), StructField("file", StringType()), StructField("line", IntegerType()),
    StructField("reason", StringType()), StructField("detail", StringType()), StructField("row", StringType()),
])
_LINES_ARROW = to_arrow_schema(_LINES)
_FILES = StructType([StructField("day", StringType()), StructField("file", StringType()),
                     StructField("content", BinaryType())])
STALE_SHOWN = 10
FILES_PER_TASK = 2000
DRIVER_JUDGED_BYTES = 4 * 2**20
"""Up to this many bytes of files in the read, the lines are judged where the bytes already are
(the process that fetched them) instead of on Spark's Python workers: ~15,000 lines at ~12 us a
line is ~0.2 s, while the Spark action that would judge them costs more than that in fixed cost
(its first one starts the Python workers: 3-5 s on a fresh JVM, BENCHMARKS.md). Beyond it the
executors judge in parallel. Both run `_judged_lines`, so the verdicts are the same."""


def _judged_lines(day: str, name: str, content: bytes, contract: Contract,
                  excluded: frozenset[tuple[str, str, int]]) -> Iterator[tuple]:
    """(day, file, line, reason, detail, normalized row as JSON) for each line not in the quarantine."""
    for line, raw in data_lines(content):  # bytes, as the crawl cuts and decodes them
        if (day, name, line) in excluded:
            continue
        verdict = judge_line(contract, raw)
        yield day, name, line, verdict.reason, verdict.detail, None if verdict.reason else json.dumps(verdict.row)


def quarantined_lines(table: CatalogTable, days: list[str]) -> frozenset[tuple[str, str, int]]:
    """(day, file, line) of every quarantine entry of `days` (a day crawled without a ledger has none)."""
    uris = [ledger_uri(table.location, d) for d in days]
    return frozenset((e.day, e.file, e.line) for _, content in read_files(uris, missing_ok=True) if content
                     for e in parse_ledger(content))


def day_files(table: CatalogTable, days: list[str]) -> list[tuple[str, str, str]]:
    """(day, file name, URI) of every data file of the registered `days`, listed as the crawl lists them:
    a day an S3 landing is replacing is read from its previous copy (see `landing`), never half."""
    resolved = readable_folders([table.partitions[day] for day in days])
    readable = [(day, folder) for day, folder in zip(days, resolved) if folder is not None]
    folders = [folder for _, folder in readable]
    return [(day, name, join(folder, name))
            for (day, folder), names in zip(readable, list_folders(folders)) for name in names if is_data_file(name)]


def _judge_batches(batches: Iterator[pa.RecordBatch], contract: Contract,
                   excluded: frozenset[tuple[str, str, int]]) -> Iterator[pa.RecordBatch]:
    """`mapInArrow`'s function: batches of (day, file, content) to batches of judged lines (`_LINES`)."""
    for batch in batches:
        judged = [line for day, name, content in zip(*(batch.column(i).to_pylist() for i in range(3)))
                  for line in _judged_lines(day, name, content, contract, excluded)]
        columns = list(zip(*judged)) if judged else [()] * len(_LINES_ARROW)
        yield pa.RecordBatch.from_arrays([pa.array(c, f.type) for c, f in zip(columns, _LINES_ARROW)],
                                         schema=_LINES_ARROW)


def read_days(spark: SparkSession, table: CatalogTable, days: list[str] | None = None) -> DataFrame:
    """The accepted rows of the table's registered partitions among `days` (all when None), persisted:
    the caller unpersists them.

    The catalog's columns are the schema (`day` from the folder). Fails, naming the lines, when a
    line breaks the contract without a quarantine entry (files changed since the crawl).

    The driver lists each day and reads its files (see `files`); Spark's executors judge the lines
    (`mapInArrow`, in a task per `FILES_PER_TASK` files, at most four per core), or the driver
    itself up to `DRIVER_JUDGED_BYTES`, and Spark parses the accepted rows with the catalog's
    schema. DataFrames only, so it runs on Spark Connect too.
    """
    wanted = sorted(table.partitions if days is None else set(days) & set(table.partitions))
    if not wanted:
        return spark.createDataFrame([], table.ddl()).persist(KEPT)
    contract = contract_for(table.name).evolve_from_columns(table.columns)  # the members the table gained
    excluded = quarantined_lines(table, wanted)
    listed = day_files(table, wanted)
    contents = read_files([uri for _, _, uri in listed])
    files = [(day, name, content) for (day, name, _), (_, content) in zip(listed, contents)]
    columns = StructType([f for f in spark.createDataFrame([], table.ddl()).schema.fields if f.name != "day"])
    if sum(len(content) for _, _, content in files) <= DRIVER_JUDGED_BYTES:
        return _parsed(_judged_here(spark, table, files, contract, excluded), columns).persist(KEPT)
    slices = max(1, min(len(files) // FILES_PER_TASK + 1, 4 * parallelism(spark)))
    shipped = spark.createDataFrame(files, _FILES)
    del files  # Spark holds them now
    if slices > 1:
        shipped = shipped.repartition(slices)
    # Judged once (kept, so the files are not shipped and judged again): for the stale lines, then the rows.
    lines = shipped.mapInArrow(lambda batches: _judge_batches(batches, contract, excluded), _LINES).persist(KEPT)
    stale = lines.where(F.col("reason").isNotNull()).orderBy("day", "file", "line").limit(STALE_SHOWN).collect()
    if stale:
        lines.unpersist()
        _refuse_stale(table, stale)
    rows = materialized(_parsed(lines, columns))
    lines.unpersist()
    return rows


def _judged_here(spark: SparkSession, table: CatalogTable, files: list[tuple[str, str, bytes]], contract: Contract,
                 excluded: frozenset[tuple[str, str, int]]) -> DataFrame:
    """The accepted lines of `files` (`day`, `row`) judged in this process, as the executors would judge them."""
    judged = [line for day, name, content in files for line in _judged_lines(day, name, content, contract, excluded)]
    stale = sorted((line for line in judged if line[3] is not None), key=lambda line: line[:3])[:STALE_SHOWN]
    if stale:
        _refuse_stale(table, stale)
    # No stale line: every judged line is accepted, and carries its normalized row.
    return spark.createDataFrame([(day, row) for day, _, _, _, _, row in judged], "day string, row string")


def _refuse_stale(table: CatalogTable, stale: list[tuple]) -> None:
    """Fail naming the first lines (day, file, line, reason, detail) the contract rejects and the quarantine lacks."""
    shown = "; ".join(f"day={day} {name}:{line} {reason} ({detail})" for day, name, line, reason, detail, *_ in stale)
    raise ValueError(
        f"{table.database}.{table.name}: lines break the contract but are not in the quarantine, so the files "
        f"changed after the crawl: {shown}. Re-crawl those days."
    )


def _parsed(lines: DataFrame, columns: StructType) -> DataFrame:
    """The accepted lines' normalized JSON (`row`) parsed with the catalog's columns, `day` last."""
    parsed = lines.select(F.from_json("row", columns).alias("r"), "day")
    return parsed.select(*[F.col(f"r.{f.name}").alias(f.name) for f in columns.fields], "day")
