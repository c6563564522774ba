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
import re
from urllib.parse import unquote
from collections.abc import Iterator

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from glue_scripts.zfish_etl.catalog import CatalogTable
from glue_scripts.zfish_etl.contract import Contract, check_line, contract_for, data_lines, is_data_file, ledger_uri

_DAY_FILE = re.compile(r"/day=([^/]+)/([^/]+)$")
_LINES = StructType([
    StructField("day", StringType()), StructField("file", StringType()), StructField("line", IntegerType()),
    StructField("reason", StringType()), StructField("detail", StringType()), StructField("row", StringType()),
])
STALE_SHOWN = 10


def _judged_lines(item: tuple[str, str], contract: Contract, excluded: frozenset[tuple[str, str, int]]) -> Iterator[tuple]:
    """(day, file, line, reason, detail, normalized row as JSON) for each line not in the quarantine."""
    path, content = item
    found = _DAY_FILE.search(path)
    if found is None or not is_data_file(found.group(2)):
        return
    day, name = (unquote(part) for part in found.groups())  # Spark's file paths are URL-encoded
    for line, text in data_lines(content):
        if (day, name, line) in excluded:
            continue
        verdict = check_line(contract, text)
        yield day, name, line, verdict.reason, verdict.detail, None if verdict.reason else json.dumps(verdict.row)


def _existing(spark: SparkSession, uris: list[str]) -> list[str]:
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    paths = [jvm.org.apache.hadoop.fs.Path(u) for u in uris]
    return [u for u, p in zip(uris, paths) if p.getFileSystem(conf).exists(p)]


def quarantined_lines(spark: SparkSession, table: CatalogTable, days: list[str]) -> frozenset[tuple[str, str, int]]:
    """(day, file, line) of every quarantine entry of `days` (a day crawled without a ledger has none)."""
    ledgers = _existing(spark, [ledger_uri(table.location, d) for d in days])
    if not ledgers:
        return frozenset()
    entries = (json.loads(r.value) for r in spark.read.text(ledgers).collect() if r.value.strip())
    return frozenset((e["day"], e["file"], e["line"]) for e in entries)


def read_days(spark: SparkSession, table: CatalogTable, days: list[str] | None = None) -> DataFrame:
    """The accepted rows of the table's registered partitions among `days` (all when None).

    The catalog's columns are the schema (`day` from the folder). Fails, naming the lines, when a
    line breaks the contract without a quarantine entry (files changed since the crawl).
    """
    wanted = table.partitions if days is None else {d: loc for d, loc in table.partitions.items() if d in set(days)}
    if not wanted:
        return spark.createDataFrame([], table.ddl())
    contract = contract_for(table.name)
    excluded = quarantined_lines(spark, table, sorted(wanted))
    # The text source with `wholetext` (one row per file) lists through Spark's file index;
    # `wholeTextFiles` stats every file through Hadoop, and on a local disk without Hadoop's native
    # library that forks a shell per file (10^4 files: minutes).
    files = (spark.read.text([loc.rstrip("/") + "/" for loc in wanted.values()], wholetext=True)
             .select(F.col("_metadata.file_path").alias("path"), "value").rdd)
    # Small files pack ~32 to a task; fewer, larger tasks spare each one its Python worker round trip.
    files = files.coalesce(max(1, min(files.getNumPartitions(), 4 * spark.sparkContext.defaultParallelism)))
    lines = spark.createDataFrame(files.flatMap(lambda row: _judged_lines((row[0], row[1]), contract, excluded)),
                                  _LINES).cache()  # judged once: for the stale lines, then the rows
    stale = lines.where(F.col("reason").isNotNull()).orderBy("day", "file", "line").limit(STALE_SHOWN).collect()
    if stale:
        shown = "; ".join(f"day={r['day']} {r['file']}:{r['line']} {r['reason']} ({r['detail']})" for r in stale)
        raise ValueError(
            f"{table.database}.{table.name}: lines break the contract but are not in the quarantine, so the files "
            f"changed after the crawl: {shown}. Re-crawl those days."
        )
    columns = StructType([f for f in spark.createDataFrame([], table.ddl()).schema.fields if f.name != "day"])
    parsed = lines.select(F.from_json("row", columns).alias("r"), "day")
    rows = parsed.select(*[F.col(f"r.{f.name}").alias(f.name) for f in columns.fields], "day").localCheckpoint()
    lines.unpersist()
    return rows
