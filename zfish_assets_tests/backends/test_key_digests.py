"""The key digests beside the joined table: a missing, stale or unreadable digest never changes which image_ids
`unique_image_id` finds repeated, nor their counts; and the job's hash is the checks' hash.

The property test stands in for the table with key lists per day (each day's current files named
as Hudi names them), writes digests beside it as the job lays them out (some days current, some
from an older version of the day, some none), and compares what the check would count on the days
`repeated_key_days` names, with the check's own SQL, against a brute-force count over every row.
"""

from __future__ import annotations

from collections import Counter

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glue_scripts.zfish_etl.table_keys import FILES_PARTITION, fingerprint, key_hash, key_hash_sql
from zfish_assets.assets.joined_checks import repeated_image_ids_sql
from zfish_assets.backends.key_digests import MAX_UNDIGESTED_SHARE, compare_keys

DAYS = ["2025-04-05", "2025-04-06", "2025-04-07", "2025-04-08", "2025-04-09"]
# A small pool makes repeats across and within days common; any text may be a key too.
KEYS = st.one_of(st.sampled_from(["a", "b", "c", "d", "é", "x y", "'q'"]), st.text(max_size=6))
DIGEST_STATES = ("current", "missing", "stale", "stale_and_current", "cut_short")


def write_digest(root: str, day: str, files: list[str], keys: list[str]) -> None:
    """A digest as the job lays it out: the keys' hashes under the fingerprint of the files they came from."""
    folder = f"{root}/day={day}/{FILES_PARTITION}={fingerprint(files)}"
    pafs.LocalFileSystem().create_dir(folder)
    pq.write_table(pa.table({"key_hash": pa.array([key_hash(k) for k in keys], pa.int64())}), f"{folder}/part-0.parquet")


@st.composite
def tables(draw):
    days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=5, unique=True))
    rows = {day: draw(st.lists(KEYS, max_size=8)) for day in days}
    states = {day: draw(st.sampled_from(DIGEST_STATES)) for day in days}
    older = {day: draw(st.lists(KEYS, max_size=8)) for day in days}  # the day's keys before its last commit
    run = draw(st.one_of(st.none(), st.lists(st.sampled_from(DAYS), max_size=3, unique=True)))
    return rows, states, older, run


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tables())
def test_stale_or_missing_digests_never_change_the_duplicates_found(tmp_path_factory, table):
    rows, states, older, run = table
    root = str(tmp_path_factory.mktemp("keys"))
    current = {}
    for day, keys in rows.items():
        # Two file groups, as a day's base files: group id, write token, commit instant (the last commit's).
        files = [f"fg{day}-{i}_0-1-0_20250510120000000.parquet" for i in range(2)]
        current[day] = [(f, 1 + len(keys)) for f in files]
        if states[day] in ("stale", "stale_and_current"):
            write_digest(root, day, [f.replace("20250510", "20250509") for f in files], older[day])
        if states[day] in ("current", "stale_and_current", "cut_short"):
            write_digest(root, day, files, keys)
        if states[day] == "cut_short":  # a copy interrupted: as good as missing, never a failed check
            part = f"{root}/day={day}/{FILES_PARTITION}={fingerprint(files)}/part-0.parquet"
            with open(part, "r+b") as handle:
                handle.truncate(max(1, handle.seek(0, 2) // 2))
    read: list[list[str]] = []

    def read_keys(days: list[str]) -> pa.Table:
        read.append(days)
        picked = [(d, k) for d in days for k in rows[d]]
        return pa.table({"day": [d for d, _ in picked], "image_id": [k for _, k in picked]}, schema=pa.schema(
            [("day", pa.string()), ("image_id", pa.string())]))

    found = compare_keys(current, pafs.LocalFileSystem(), root, run, read_keys)

    every_row = Counter(k for keys in rows.values() for k in keys)
    of_run = {k for day in (rows if run is None else run) for k in rows.get(day, [])}
    expected = {k: n for k, n in every_row.items() if n > 1 and k in of_run}
    undigested = sorted(d for d, s in states.items() if s in ("missing", "stale", "cut_short"))
    weight = {d: 2 * (1 + len(keys)) for d, keys in rows.items()}
    retried = "cut_short" in states.values()  # found unreadable by a first attempt, which may have read keys
    if sum(weight[d] for d in undigested) > MAX_UNDIGESTED_SHARE * sum(weight.values()):
        assert found is None and (retried or not read)  # the check scans every day
    else:
        assert found is not None and found.from_table == undigested
        assert read[-1:] == ([undigested] if undigested else []) and (retried or len(read) <= 1)
    # The check's own SQL, over the days it names (or every day), against the count of every row.
    counted = None if found is None else found.days
    con = duckdb.connect()
    con.register("j", pa.table({"day": [d for d, keys in rows.items() for _ in keys],
                                "image_id": [k for keys in rows.values() for k in keys]},
                               schema=pa.schema([("day", pa.string()), ("image_id", pa.string())])))
    answered = {} if counted == [] else dict(con.sql(repeated_image_ids_sql("j", run, counted)).fetchall())
    assert answered == expected


CON = duckdb.connect()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=20))
def test_duckdb_hashes_keys_as_python_does(keys):
    CON.register("t", pa.table({"i": list(range(len(keys))), "k": keys}))
    hashed = dict(CON.sql(f"SELECT i, {key_hash_sql('k')} FROM t").fetchall())
    assert [hashed[i] for i in range(len(keys))] == [key_hash(k) for k in keys]


def test_spark_hashes_keys_as_python_does(spark):
    from pyspark.sql import functions as F

    from glue_scripts.zfish_etl.table_keys import key_hash_column

    keys = ["", "a", "zfish_0000001", "é", "日本語", "🐟", "x y", "'q'", "\n", "a\u0000b",
            "f47ac10b-58cc-4372-a567-0e02b2c3d479", "ß" * 100]
    rows = spark.createDataFrame([(i, k) for i, k in enumerate(keys)], "i int, k string") \
        .select("i", key_hash_column(F.col("k")).alias("h")).collect()
    assert {r["i"]: r["h"] for r in rows} == {i: key_hash(k) for i, k in enumerate(keys)}


def digests_written(root) -> dict[tuple[str, str], list[int]]:
    """(day, files) -> the sorted hashes of each digest under `root`."""
    found: dict[tuple[str, str], list[int]] = {}
    for path in sorted(root.glob("day=*/files=*/*.parquet")):
        key = (path.parent.parent.name.removeprefix("day="), path.parent.name.removeprefix("files="))
        found.setdefault(key, []).extend(pq.read_table(path).column("key_hash").to_pylist())
    return {k: sorted(v) for k, v in found.items()}


def test_small_days_are_hashed_by_the_job_as_spark_hashes_them_named_by_the_files_hudi_reads(
        spark, tmp_path, monkeypatch):
    """The job hashes small days itself: the same digests as its Spark action writes, under the name of the
    file slices hudi-rs (the checks' reader) finds current, after upserts and a delete rewrote some files."""
    from datetime import datetime

    from glue_scripts.zfish_etl import table_keys
    from glue_scripts.zfish_etl.hudi import delete, upsert
    from zfish_assets.backends.key_digests import repeated_key_days

    schema = "image_id string, timestamp timestamp, day string"
    table = f"file://{tmp_path / 't'}"  # as the job names a local table (and hudi-rs reads it)
    at = datetime(2025, 4, 5, 10)
    upsert(spark.createDataFrame([(f"w{i}", at, DAYS[i % 3]) for i in range(9)], schema), table, "t", "default")
    upsert(spark.createDataFrame([("w0", at, DAYS[0]), ("w9", at, DAYS[1])], schema), table, "t", "default")
    delete(spark.createDataFrame([("w2", at, DAYS[2])], schema), table, "t", "default")
    days = DAYS[:3]
    root = tmp_path / "t.keys" / table_keys.DIGEST_VERSION
    assert table_keys.keys_root(table) == f"file://{root}"

    table_keys.write_table_keys(spark, table, days)  # ~1 KB a day: hashed here
    here = digests_written(root)
    monkeypatch.setattr(table_keys, "DRIVER_KEYS_BYTES", -1)  # every day by Spark's action
    table_keys.write_table_keys(spark, table, days)

    assert here == digests_written(root) and len(here) == 3
    assert sorted(h for hashes in here.values() for h in hashes) == sorted(
        key_hash(f"w{i}") for i in range(10) if i != 2)
    found = repeated_key_days(table, {}, None)
    assert (found.from_digests, found.from_table, found.days) == (3, [], [])
