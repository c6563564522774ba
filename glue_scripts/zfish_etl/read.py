"""Reading the crawled tables into Spark: registered partitions only, the rows the crawl accepted.

The crawl judged every line against the table's contract and wrote the rejected ones to each day's
quarantine ledger. The job reads the same files line by line, leaves out exactly the ledger's
lines, and judges the rest with the same `judge_line` (same module, run on the executors), which
also gives the same normalized values (UTC timestamps, undeclared fields dropped). So no row is
dropped without a quarantine entry, and bad input never fails the job. A line the contract rejects
but the ledger does not name means the files changed after the crawl: the job refuses to guess and
fails naming the lines, as the `partitions_match_lake` check does for the same cause.

Where the files are fetched and their lines judged (the driver, or Spark's executors) is decided
from the read's listing, by one rule: `placement`.

The raw files, not the accepted rows the catalog's partitions point at (`accepted.py`, what Athena
reads): a registered day's raw folder is `<table location>/day=D`. The job keeps judging what the
lab delivered with the one contract rather than trusting a derived copy, so the two sides are two
independent applications of the same `judge_line` whose agreement the checks measure
(`rows_match_landed` counts Athena's rows against the landing less the quarantine); and a file
changed after the crawl is refused here by name (`_refuse_stale`) instead of being read as the
crawl's older copy. Reading the accepted rows would drop that second judgement and that refusal
for no gain in what the job computes: both give the same rows, by construction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import Enum
from functools import partial

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import BinaryType, IntegerType, StringType, StructField, StructType

from glue_scripts.zfish_etl import aws
from glue_scripts.zfish_etl.accepted import data_fingerprint
from glue_scripts.zfish_etl.catalog import CatalogTable
from glue_scripts.zfish_etl.contract import Contract, contract_for
from glue_scripts.zfish_etl.judging import data_lines, is_data_file, judge_line
from glue_scripts.zfish_etl.ledger import ledger_uri, parse_ledger
from glue_scripts.zfish_etl.files import is_s3, join, list_versioned, read_files
from glue_scripts.zfish_etl.landing import readable_folders
from glue_scripts.zfish_etl.names import DATA_FINGERPRINT, QUARANTINED_ROWS
from glue_scripts.zfish_etl.session import KEPT, executors_are_local, materialized, parallelism

_LINES = StructType([
    StructField("day", StringType()), StructField("file", StringType()), StructField("line", IntegerType()),
    StructField("reason", StringType()), StructField("detail", StringType()), StructField("row", StringType()),
])
_LINES_ARROW = to_arrow_schema(_LINES)
_FILES = StructType([StructField("day", StringType()), StructField("file", StringType()),
                     StructField("content", BinaryType())])
_KEYS = StructType([StructField("day", StringType()), StructField("file", StringType()),
                    StructField("uri", StringType())])
STALE_SHOWN = 10
DRIVER_JUDGED_BYTES = 4 * 2**20
"""A read of at most this many bytes is small (`placement`): ~15,000 lines at ~12 us a line is
~0.2 s of judging, less than the fixed cost of the Spark action that would spread it (its first
one starts the Python workers: 3-5 s on a fresh JVM, docs/performance.md)."""
DRIVER_FETCHED_OBJECTS = 1000
"""A read of remote objects (S3) is small (`placement`) up to this many: the driver GETs them
`files.READ_THREADS` (16) at a time, 1000 in ~3 s at 50 ms a request, about what starting the
executors' Python workers costs; beyond it the executors' requests in flight outgrow the driver's."""
FILES_PER_TASK = 2000
"""Local files per task at least (shipped by the driver): judging a file's line costs tens of microseconds."""
OBJECTS_PER_TASK = 64
"""S3 objects per task at least (fetched by the task): each is a round trip of tens of milliseconds,
so tasks can be small and every executor slot gets some as soon as a day has a few hundred objects."""
FETCH_THREADS = 4
"""Concurrent GETs of one task: each executor slot keeps this many requests in flight, so a read's
throughput is slots x FETCH_THREADS / latency, up to what the store serves (benchmarks/s3_read.py)."""


class Where(Enum):
    """Where a read's files are fetched and their lines judged (`placement`)."""

    DRIVER = "the driver fetches the files and judges their lines"
    SHIPPED = "the driver reads the files, the executors judge their lines"
    EXECUTORS = "the executors fetch the files and judge their lines"


def placement(files: int, size: int, remote: bool) -> Where:
    """Where a read of `files` files of `size` bytes in all (as listed) runs; `remote`: S3 objects.

    A small read (at most `DRIVER_JUDGED_BYTES`, and for remote objects at most
    `DRIVER_FETCHED_OBJECTS` of them) is fetched and judged by the driver: no Spark job, no Python
    workers, which would cost more than the read itself. A larger read of remote objects is fetched
    by the executors, each task its slice of the listing: the GETs are latency-bound round trips,
    so throughput grows with the executor slots, not with one machine's threads. A larger read of
    local files is read by the driver (microseconds a file, nothing to spread) and shipped to the
    executors, which judge it in parallel. Every way runs `_judged_lines`: the verdicts are the same.
    """
    if size <= DRIVER_JUDGED_BYTES and (not remote or files <= DRIVER_FETCHED_OBJECTS):
        return Where.DRIVER
    return Where.EXECUTORS if remote else Where.SHIPPED


def _judged_lines(day: str, name: str, content: bytes, contract: Contract,
                  excluded: frozenset[tuple[str, str, int]]) -> Iterator[tuple]:
    """(day, file, line, reason, detail, normalized row as JSON) for each line not in the quarantine."""
    for line, raw in data_lines(content):  # bytes, as the crawl cuts and decodes them
        if (day, name, line) in excluded:
            continue
        verdict = judge_line(contract, raw)
        yield day, name, line, verdict.reason, verdict.detail, None if verdict.reason else json.dumps(verdict.row)


def quarantined_lines(table: CatalogTable, days: list[str]) -> frozenset[tuple[str, str, int]]:
    """(day, file, line) of every quarantine entry of `days` (a day crawled without a ledger has none).

    Each day's ledger must hold as many rows as its crawl quarantined (the partition's `QUARANTINED_ROWS`):
    a ledger deleted or cut short by hand would let the job read a day's duplicate keys as rows (the
    contract alone judges each line), so the job refuses the day, naming the ledger and the fix."""
    uris = [ledger_uri(table.location, d) for d in days]
    lines = set()
    for day, (uri, content) in zip(days, read_files(uris, missing_ok=True)):
        entries = parse_ledger(content) if content else []
        recorded = table.parameters.get(day, {}).get(QUARANTINED_ROWS)
        if recorded is not None and sum(1 for e in entries if e.line) != int(recorded):
            found = "is missing" if content is None else f"holds {sum(1 for e in entries if e.line)} quarantined rows"
            raise ValueError(f"{table.database}.{table.name} day={day}: its quarantine ledger {uri} {found}, "
                             f"but the day's crawl quarantined {recorded} rows (the partition's {QUARANTINED_ROWS}): "
                             "the ledger was changed or deleted after the crawl, or a crawl of the day is writing it "
                             "now. Re-crawl the day (it writes the ledger again; or let the running crawl finish), "
                             "then run again")
        lines.update((e.day, e.file, e.line) for e in entries)
    return frozenset(lines)


def raw_folder(table: CatalogTable, day: str) -> str:
    """The raw folder of a registered day: `<table location>/day=D` (its partition points at the
    accepted rows, see the module docstring)."""
    return join(table.location.rstrip("/"), f"day={day}")


def _listed_days(table: CatalogTable, days: list[str]) -> list[tuple[str, str, str, int, str]]:
    """(day, file name, URI, bytes, version) of every data file of the registered `days`, listed as the crawl
    lists them: a day an S3 landing is replacing is read from its previous copy (see `landing`), never half."""
    resolved = readable_folders([raw_folder(table, day) for day in days])
    readable = [(day, folder) for day, folder in zip(days, resolved) if folder is not None]
    folders = [folder for _, folder in readable]
    return [(day, name, join(folder, name), size, version)
            for (day, folder), listed in zip(readable, list_versioned(folders))
            for name, size, version in listed if is_data_file(name)]


def day_files(table: CatalogTable, days: list[str]) -> list[tuple[str, str, str, int]]:
    """(day, file name, URI, bytes) of every data file of the registered `days` (`_listed_days`)."""
    return [(day, name, uri, size) for day, name, uri, size, _ in _listed_days(table, days)]


def as_crawled(table: CatalogTable, days: list[str]) -> set[str]:
    """The registered `days` whose data files are those their crawl registered: by name, bytes and version
    (`DATA_FINGERPRINT`, `accepted.data_fingerprint`). A day not read whole is trusted to give the rows its
    stored ones were built from; a day whose files changed since its crawl is not, and is read, so a
    change is applied and its unjudged lines are refused by name (`_refuse_stale`). File count and bytes
    alone would pass over a file rewritten in place with as many bytes. A day crawled before the crawl
    recorded the fingerprint is read."""
    found: dict[str, list[tuple[str, int, str]]] = {day: [] for day in days}
    for day, name, _, size, version in _listed_days(table, days):
        found[day].append((name, size, version))
    recorded = {day: table.parameters.get(day, {}).get(DATA_FINGERPRINT) for day in days}
    return {day for day, files in found.items() if recorded[day] is not None and recorded[day] == data_fingerprint(files)}


def _judge_batches(batches: Iterator[pa.RecordBatch], contract: Contract,
                   excluded: frozenset[tuple[str, str, int]]) -> Iterator[pa.RecordBatch]:
    """`mapInArrow`'s function: batches of (day, file, content) to batches of judged lines (`_LINES`)."""
    for batch in batches:
        judged = [line for day, name, content in zip(*(batch.column(i).to_pylist() for i in range(3)))
                  for line in _judged_lines(day, name, content, contract, excluded)]
        yield _lines_batch(judged)


def _fetch_and_judge(batches: Iterator[pa.RecordBatch], contract: Contract, excluded: frozenset[tuple[str, str, int]],
                     settings: aws.ClientSettings) -> Iterator[pa.RecordBatch]:
    """`mapInArrow`'s function, on the executors: batches of (day, file, URI) to batches of judged
    lines (`_LINES`). The files are fetched here, `FETCH_THREADS` at a time, by a client made from
    the driver's `settings`."""
    for batch in batches:
        days, names, uris = (batch.column(i).to_pylist() for i in range(3))
        contents = read_files(uris, threads=FETCH_THREADS, settings=settings)
        try:
            judged = [line for day, name, (_, content) in zip(days, names, contents)
                      for line in _judged_lines(day, name, content, contract, excluded)]
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{contract.table}: a file listed for the read is gone ({exc}): the day was "
                                    "landed again during the run; run it again") from exc
        yield _lines_batch(judged)


def _lines_batch(judged: list[tuple]) -> pa.RecordBatch:
    columns = list(zip(*judged)) if judged else [()] * len(_LINES_ARROW)
    return pa.RecordBatch.from_arrays([pa.array(c, f.type) for c, f in zip(columns, _LINES_ARROW)],
                                      schema=_LINES_ARROW)


def slices_for(files: int, per_task: int, spark: SparkSession) -> int:
    """Tasks for `files` files: at least `per_task` each, at most four per core (every slot gets some,
    with room to even out slow ones)."""
    return max(1, min(-(-files // per_task), 4 * parallelism(spark)))


def read_days(spark: SparkSession, table: CatalogTable, days: list[str] | None = None) -> DataFrame:
    """The accepted rows of the table's registered partitions among `days` (all when None), persisted:
    the caller unpersists them.

    The catalog's columns are the schema (`day` from the folder). Fails, naming the lines, when a
    line breaks the contract without a quarantine entry (files changed since the crawl).

    The driver lists each day (see `files`); `placement` decides from the listing who fetches the
    files and judges their lines (`mapInArrow` on the executors, in `slices_for` tasks); Spark
    parses the accepted rows with the catalog's schema. DataFrames only, so it runs on Spark
    Connect too.
    """
    wanted = sorted(table.partitions if days is None else set(days) & set(table.partitions))
    if not wanted:
        return spark.createDataFrame([], table.ddl()).persist(KEPT)
    contract = contract_for(table.name).evolve_from_columns(table.columns)  # the members the table gained
    excluded = quarantined_lines(table, wanted)
    listed = day_files(table, wanted)
    where = placement(len(listed), sum(size for *_, size in listed), any(is_s3(uri) for _, _, uri, _ in listed))
    columns = StructType([f for f in spark.createDataFrame([], table.ddl()).schema.fields if f.name != "day"])
    if where is Where.EXECUTORS:
        # Endpoint and region for the executors' clients; credentials only for executors on this
        # machine (Glue's resolve the job role's). In the task's closure, never logged.
        settings = aws.for_executors(with_credentials=executors_are_local(spark))
        shipped = spark.createDataFrame([(day, name, uri) for day, name, uri, _ in listed], _KEYS)
        slices = slices_for(len(listed), OBJECTS_PER_TASK, spark)
        judge = partial(_fetch_and_judge, contract=contract, excluded=excluded, settings=settings)
    else:
        contents = read_files([uri for _, _, uri, _ in listed])
        files = [(day, name, content) for (day, name, _, _), (_, content) in zip(listed, contents)]
        if where is Where.DRIVER:
            return _parsed(_judged_here(spark, table, files, contract, excluded), columns).persist(KEPT)
        shipped = spark.createDataFrame(files, _FILES)
        del files  # Spark holds them now
        slices = slices_for(len(listed), FILES_PER_TASK, spark)
        judge = partial(_judge_batches, contract=contract, excluded=excluded)
    if slices > 1:
        shipped = shipped.repartition(slices)
    # Judged once (kept, so no file is fetched, shipped or judged twice): for the stale lines, then the rows.
    lines = shipped.mapInArrow(judge, _LINES).persist(KEPT)
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
