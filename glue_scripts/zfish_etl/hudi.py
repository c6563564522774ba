"""Writing joined_fish_data: every Hudi option in one dict, what a commit wrote, and what the table holds.

Options follow Hudi's Spark quickstart and the traps recorded for Hudi 0.15 on Glue 5.0:
SimpleKeyGenerator explicitly (ComplexKeyGenerator writes different record keys on OSS and on
Glue), a real timestamp as precombine field, hive-style `day=` folders.

Which version of a row wins: the one written last (`OverwriteWithLatestAvroPayload`), never the one
with the larger `timestamp`. The table is a function of the lake: each run writes the rows the
lake holds now (the crawl keeps one delivery per image_id), so the last write is the current
delivery, and a corrected re-delivery replaces what it corrects even when its `timestamp` is
earlier (a camera clock set to 2099, then fixed). `timestamp` is the image's event time, data, not
an ordering; precombine still uses it only to pick within one batch, which holds one row per key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from glue_scripts.zfish_etl import aws
from glue_scripts.zfish_etl.files import (
    join, list_folders, list_subfolders, local_path, read_files, s3_location, s3_object_exists,
)
from glue_scripts.zfish_etl.session import parallelism
from glue_scripts.zfish_etl.names import META_COLUMNS

HUDI_OPTIONS: dict[str, str] = {
    "hoodie.table.type": "COPY_ON_WRITE",
    "hoodie.datasource.write.table.type": "COPY_ON_WRITE",
    "hoodie.datasource.write.operation": "upsert",
    "hoodie.datasource.write.recordkey.field": "image_id",
    "hoodie.datasource.write.precombine.field": "timestamp",
    "hoodie.datasource.write.partitionpath.field": "day",
    "hoodie.datasource.write.hive_style_partitioning": "true",
    "hoodie.datasource.write.keygenerator.class": "org.apache.hudi.keygen.SimpleKeyGenerator",
    "hoodie.datasource.write.payload.class": "org.apache.hudi.common.model.OverwriteWithLatestAvroPayload",
    "hoodie.index.type": "SIMPLE",
    # Every base file carries a Bloom filter of its keys in the Parquet footer, which the SIMPLE index
    # never reads; sized for the default 60,000 keys it was ~430 KB, ~98% of a walkthrough-day file.
    # A dynamic filter starts this small and grows with the file's keys (a BLOOM index still works).
    "hoodie.index.bloom.num_entries": "1000",
    "hoodie.bloom.index.filter.type": "DYNAMIC_V0",
    "hoodie.table.timeline.timezone": "UTC",
    "hoodie.datasource.write.partitionpath.urlencode": "false",
    "hoodie.datasource.write.drop.partition.columns": "false",
    # Hudi's metadata table (file listings and column stats kept as a second Hudi table) is written
    # on every commit: a quarter of the evening join at walkthrough size (27-30 s with it, 20-24 s
    # without, same evenings). Its gain, listing without listing, is for tables of many thousands of
    # files; a partition here holds a day's few files. Athena and hudi-rs read without it.
    "hoodie.metadata.enable": "false",
    # Table version 6 on both runtimes: Hudi 0.15 (Glue 5.0) writes it anyway (and ignores the key);
    # Hudi 1.0 (Glue 5.1) would write version 8, which Athena's and hudi-rs 0.5's readers refuse.
    "hoodie.write.table.version": "6",
    # Markers (which files a commit is writing, for its rollback) written by the tasks themselves, not
    # sent to the driver's embedded timeline server: there a full disk kills the server's writing
    # thread, and every task then waits out the client's 5-minute read timeout before failing with
    # `SocketTimeoutException`. Direct, the task's own IOException fails the run in seconds. The cost,
    # one small file per data file, is nothing at a day's few files.
    "hoodie.write.markers.type": "DIRECT",
    # No embedded timeline server (the driver's HTTP service of file listings the tasks would ask): Hudi 0.15 and
    # 1.0 start it for every write on every interface (Javalin's `start(port)`; no setting names an address),
    # with no authentication, so any host that reaches the machine could read the table's layout while a
    # write runs. The tasks build their own file-system view instead; the evening join took the same time
    # either way (24.5 vs 24.0 s, docs/performance.md).
    "hoodie.embed.timeline.server": "false",
}

"""Columns Hudi adds to every row; they say which commit wrote the row, not what the row is."""


def hudi_options(table_name: str, database: str, parallelism: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """HUDI_OPTIONS for one table, with shuffle parallelism sized for the cluster."""
    sized = {f"hoodie.{op}.shuffle.parallelism": str(parallelism) for op in ("upsert", "insert", "bulkinsert", "delete")}
    return {
        **HUDI_OPTIONS,
        "hoodie.table.name": table_name,
        "hoodie.datasource.write.table.name": table_name,
        "hoodie.database.name": database,
        **sized,
        **(extra or {}),
    }


@dataclass(frozen=True)
class CommitStats:
    """What one completed commit wrote, from its commit file."""

    instant: str
    files_written: int
    bytes_written: int
    records_written: int
    partitions: list[str] = field(default_factory=list)
    files_replaced: int = 0  # new versions of existing files (copy-on-write merges); the rest are new file groups
    bytes_replaced: int = 0


class NoTimeline(RuntimeError):
    """The table's folder holds day folders but no Hudi timeline (`.hoodie/` deleted): it is no table."""


def require_timeline(base_path: str) -> None:
    """Refuse (`NoTimeline`, naming what is missing and the fix) a table folder holding `day=` folders but no
    `.hoodie/hoodie.properties`. Hudi creates the timeline before it writes a data file, so only a `.hoodie/`
    deleted by hand leaves that; Hudi would then start a new table over the old files, and every reader would
    see two copies of their rows."""
    properties = join(base_path, ".hoodie/hoodie.properties")
    found = s3_location(properties)  # one request: the timeline folder grows with every commit
    if (s3_object_exists(aws.client("s3"), *found) if found else local_path(properties).is_file()):
        return
    days = [n for n in list_subfolders(base_path) if n.startswith("day=")]
    if days:
        raise NoTimeline(
            f"{base_path} holds {len(days)} day folders ({days[0]}, ...) but no Hudi timeline: "
            f"{join(base_path, '.hoodie/hoodie.properties')} is missing, so it is no table any more, and writing "
            "would put a second copy of its rows beside the first. Move the folder aside (or delete it), then run "
            "again: the join builds the table from the lake anew")


def completed_instants(base_path: str) -> list[str]:
    """Completed commit instants of the table, oldest first (empty when there is no table).

    Listed in Python (`files`: local paths or S3), not through Spark's JVM, which a Spark Connect
    client cannot reach.
    """
    names = list_folders([join(base_path, ".hoodie")])[0]
    return sorted(n.removesuffix(".commit") for n in names if n.endswith(".commit") and n[0].isdigit())


def commit_metadata(base_path: str, instant: str) -> dict:
    """The JSON of the completed commit `instant` (its write stats and extra metadata)."""
    (_, content), = read_files([join(join(base_path, ".hoodie"), f"{instant}.commit")])
    return json.loads(content)


def commit_stats(base_path: str, instant: str) -> CommitStats:
    """Files and bytes the commit `instant` wrote (copy-on-write rewrites touched files whole)."""
    doc = commit_metadata(base_path, instant)
    stats = [s for per_partition in doc["partitionToWriteStats"].values() for s in per_partition]
    merged = [s for s in stats if s.get("prevCommit") not in (None, "null")]
    return CommitStats(
        instant=instant,
        files_written=len(stats),
        bytes_written=sum(int(s.get("totalWriteBytes", 0)) for s in stats),
        records_written=sum(int(s.get("numWrites", 0)) for s in stats),
        partitions=sorted(doc["partitionToWriteStats"]),
        files_replaced=len(merged),
        bytes_replaced=sum(int(s.get("totalWriteBytes", 0)) for s in merged),
    )


def read_table(spark: SparkSession, base_path: str) -> DataFrame | None:
    """The table's current rows through Hudi's Spark reader, without meta columns; None when no commit exists.

    The snapshot, never the parquet files themselves: those include superseded file versions.
    """
    if not completed_instants(base_path):
        return None
    return spark.read.format("hudi").load(base_path).drop(*META_COLUMNS)


def upsert(df: DataFrame, base_path: str, table_name: str, database: str,
           extra: dict[str, str] | None = None) -> CommitStats:
    """Upsert `df`, which holds rows, into the Hudi table at `base_path` in one commit.

    The caller knows that `df` is not empty from its own counts: asking Spark again here was one
    more action (a fixed cost of 0.2-1 s) per commit.
    """
    before = set(completed_instants(base_path))
    options = hudi_options(table_name, database, parallelism(df.sparkSession), extra)
    df.write.format("hudi").options(**options).mode("append").save(base_path)
    new = [i for i in completed_instants(base_path) if i not in before]
    if len(new) != 1:
        raise RuntimeError(f"expected one new commit in {base_path}, found {new or 'none'}: another writer?")
    return commit_stats(base_path, new[0])


def delete(keys: DataFrame, base_path: str, table_name: str, database: str,
           extra: dict[str, str] | None = None) -> CommitStats:
    """Delete the records `keys` names (`image_id`, `day`, `timestamp`, at least one) in one commit.

    Hudi's delete operation: the same record key, partition path and index as the upserts, so each
    key is found in its day's file group and copy-on-write rewrites that file without it.
    """
    return upsert(keys, base_path, table_name, database, {**(extra or {}), "hoodie.datasource.write.operation": "delete"})
