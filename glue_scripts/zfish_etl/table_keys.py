"""The joined table's key digests, kept beside it: each day's record keys as 64-bit hashes.

`unique_image_id` asks whether a run's image_ids occur anywhere else in the table. Hudi keys are
unique per partition only, so the answer needs every day's keys: 10^7 strings to decode and
compare. The digests let the check compare 64-bit hashes instead, and read strings only on the
days where two hashes meet.

Layout: `<table path>.keys/v1/day=D/files=F/part-*.parquet`, one `key_hash` column (`key_hash`
of every row's `image_id`), where `F` is the `fingerprint` of the names of the base files the
rows were read from. Base files are immutable and every new version of a day's data is a new file
name (copy-on-write), so a digest describes exactly the file slice it names: a reader that lists
the day's current base files and finds no digest under their fingerprint (a commit since, by a
writer that keeps no digests, a run that died between its commit and its digests) reads the day
from the table instead. A stale digest is never consulted, whichever writer made the table.

The job writes the digests of the days its commits touched, right after them (`write_table_keys`):
it reads the days' current base files, itself when they are small, else through a Spark action.
Either way a digest holds the keys of exactly the files its name fingerprints, so a slice chosen
otherwise than the reader's only leaves it unused. The same hash is spelled three ways here (Spark, DuckDB, Python), one definition each, checked
against each other by the tests.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from typing import TYPE_CHECKING

from glue_scripts.zfish_etl import aws, layout
from glue_scripts.zfish_etl.files import S3_SCHEMES, join, list_folders, list_sized, local_path, read_files, write_file

if TYPE_CHECKING:  # PySpark is imported where used: the Dagster side reads this module's hashes without it
    from pyspark.sql import Column, SparkSession

KEY_COLUMN = "image_id"
DIGEST_VERSION = "v1"  # a new hash or layout gets a new folder: digests of another version are never read
HASH_HEX_DIGITS = 15  # 60 bits of the key's MD5: a non-negative BIGINT in Spark, DuckDB and Athena alike
FILES_PARTITION = "files"
DRIVER_KEYS_BYTES = 8 * 2**20
"""The touched days' base files up to this many bytes in all are hashed by the job itself (pyarrow and
hashlib: ~1.4 us a key, some tens of bytes of Parquet a row, so a few tenths of a second at most),
not by a Spark action, whose fixed cost (0.5-3 s here, docs/performance.md) is the larger then."""


def keys_root(table_path: str) -> str:
    """Where the digests of the table at `table_path` live (any URI scheme the table's path uses)."""
    return layout.table_keys_root(table_path, DIGEST_VERSION)


def fingerprint(base_files: Iterable[str]) -> str:
    """The name of a day's file slice: SHA-1 of its base files' names, sorted, one a line."""
    return hashlib.sha1("\n".join(sorted(set(base_files))).encode()).hexdigest()


def key_hash(key: str) -> int:
    """A key's hash, in Python: the first 15 hex digits of the MD5 of its UTF-8 bytes."""
    return int(hashlib.md5(key.encode("utf-8")).hexdigest()[:HASH_HEX_DIGITS], 16)


def key_hash_column(key: Column) -> Column:
    """`key_hash` as a Spark expression."""
    from pyspark.sql import functions as F

    return F.conv(F.substring(F.md5(key), 1, HASH_HEX_DIGITS), 16, 10).cast("bigint")


def key_hash_sql(key: str) -> str:
    """`key_hash` in DuckDB's SQL, of the column `key`."""
    return f"('0x' || substr(md5({key}), 1, {HASH_HEX_DIGITS}))::BIGINT"


def _delete_days(root: str, days: Iterable[str]) -> None:
    """Remove every digest of `days` (local folders or S3 objects under `root`)."""
    scheme = root.partition("://")[0] if "://" in root else ""
    if scheme not in S3_SCHEMES:
        for day in days:
            shutil.rmtree(os.path.join(local_path(root), f"day={day}"), ignore_errors=True)
        return
    bucket, _, prefix = root.partition("://")[2].partition("/")
    s3 = aws.client("s3")
    for day in days:
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/day={day}/") for o in page.get("Contents", [])]
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})


def current_base_files(table_path: str, days: list[str]) -> dict[str, list[tuple[str, int]]]:
    """(name, bytes) of each day's base files that its rows are read from now: of each file group, the
    file of its latest commit among the completed ones (and those older than the timeline's first,
    archived), as Hudi's file system view picks them (a copy-on-write file is named
    `<file id>_<write token>_<instant>.parquet`). Listed in Python, as `hudi.completed_instants` lists."""
    timeline = [n for n in list_folders([join(table_path, ".hoodie")])[0] if n[:1].isdigit()]
    done = {n.removesuffix(".commit") for n in timeline if n.endswith(".commit")}
    first = min((n.split(".")[0] for n in timeline), default="")
    found: dict[str, list[tuple[str, int]]] = {}
    for day, listed in zip(days, list_sized([join(table_path, f"day={day}") for day in days])):
        latest: dict[str, tuple[str, str, int]] = {}
        for name, size in listed:
            parts = name.removesuffix(".parquet").split("_") if name.endswith(".parquet") and name[:1] != "." else []
            if len(parts) != 3 or (parts[2] not in done and not parts[2] < first):
                continue  # not a base file, or one of a write that did not complete
            if parts[0] not in latest or parts[2] > latest[parts[0]][0]:
                latest[parts[0]] = (parts[2], name, size)
        found[day] = sorted((name, size) for _, name, size in latest.values())
    return found


def _hash_here(table_path: str, root: str, current: dict[str, list[tuple[str, int]]]) -> None:
    """Write each day's digest from its `current` base files, read and hashed in this process."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    for day, files in current.items():
        if not files:
            continue  # a day without rows has no digest, as Spark writes none for it
        folder = join(table_path, f"day={day}")
        keys = [k for _, content in read_files([join(folder, name) for name, _ in files])
                for k in pq.read_table(io.BytesIO(content), columns=[KEY_COLUMN]).column(0).to_pylist()
                if k is not None]
        buffer = io.BytesIO()
        pq.write_table(pa.table({"key_hash": pa.array([key_hash(k) for k in keys], pa.int64())}), buffer)
        name = f"day={day}/{FILES_PARTITION}={fingerprint(n for n, _ in files)}/part-00000-keys.parquet"
        write_file(join(root, name), buffer.getvalue())


def write_table_keys(spark: SparkSession, table_path: str, days: Iterable[str]) -> None:
    """Replace the digests of `days` by those of the table's current rows there.

    The old digests go first: between the two steps a day has none, and a reader falls back to
    the table, never to a digest of files since replaced. The new ones are named by the files the
    rows were read from (the same scan), so a commit landing meanwhile only leaves them unused.
    Small days are read and hashed here (`DRIVER_KEYS_BYTES`), larger ones by a Spark action.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    days = sorted(set(days))
    if not days:
        return
    root = keys_root(table_path)
    _delete_days(root, days)
    current = current_base_files(table_path, days)
    if sum(size for files in current.values() for _, size in files) <= DRIVER_KEYS_BYTES:
        _hash_here(table_path, root, current)
        return
    rows = (spark.read.format("hudi").load(table_path).where(F.col("day").isin(days))
            .select("day", F.element_at(F.split(F.input_file_name(), "/"), -1).alias("file"),
                    key_hash_column(F.col(KEY_COLUMN)).alias("key_hash")))
    files = F.array_sort(F.collect_set("file").over(Window.partitionBy("day")))
    (rows.withColumn(FILES_PARTITION, F.sha1(F.concat_ws("\n", files))).drop("file")
     .write.partitionBy("day", FILES_PARTITION).mode("append").parquet(root))
