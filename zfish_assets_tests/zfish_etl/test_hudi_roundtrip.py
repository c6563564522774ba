"""The engine itself: the Glue runtime's Spark and Hudi (`ZFISH_GLUE_VERSION`: Spark 3.5.4 + Hudi 0.15,
or Spark 3.5.6 + Hudi 1.0.2) write a copy-on-write table of version 6 that hudi-rs reads."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pytest

from glue_scripts.zfish_etl.hudi import completed_instants, upsert
from zfish_assets.backends.hudi_reader import completed_commits, read_hudi_snapshot
from zfish_assets.settings import glue_runtime


def test_spark_hudi_upsert_read_back_by_spark_and_hudi_rs(spark, tmp_path):
    base = (tmp_path / "t").as_uri()
    t0 = datetime(2025, 5, 1, 9, 0, tzinfo=timezone.utc)
    rows = [("img_1", "zfish_00001", t0, True, "2025-05-01"),
            ("img_2", "zfish_00002", t0, False, "2025-05-01"),
            ("img_3", "zfish_00003", t0, True, "2025-05-02")]
    schema = "image_id string, fish_id string, timestamp timestamp, condition_developed boolean, day string"
    first = upsert(spark.createDataFrame(rows, schema), base, "t", "default")
    later = datetime(2025, 5, 1, 10, 0, tzinfo=timezone.utc)
    second = upsert(spark.createDataFrame([("img_2", "zfish_00002", later, True, "2025-05-01")], schema), base, "t", "default")

    assert first is not None and second is not None and first.instant < second.instant
    by_spark = {r["image_id"]: r["condition_developed"] for r in spark.read.format("hudi").load(base).collect()}
    snapshot = read_hudi_snapshot(base, {})
    by_hudi_rs = dict(zip(snapshot["image_id"].to_pylist(), snapshot["condition_developed"].to_pylist()))
    assert by_spark == by_hudi_rs == {"img_1": True, "img_2": True, "img_3": True}
    assert completed_commits(base, {}) == completed_instants(base) == [first.instant, second.instant]
    # Hive-style day folders, and the upsert rewrote only the touched partition's file.
    assert sorted(p.name for p in (tmp_path / "t").glob("day=*")) == ["day=2025-05-01", "day=2025-05-02"]
    assert second.partitions == ["day=2025-05-01"] and second.files_written == 1
    # The runtime's Spark, and table version 6 (what Athena's and hudi-rs 0.5's readers read) on both.
    assert spark.version == glue_runtime().pyspark
    properties = (tmp_path / "t" / ".hoodie" / "hoodie.properties").read_text().splitlines()
    assert "hoodie.table.version=6" in properties


def test_the_last_write_wins_whatever_its_timestamp(spark, tmp_path):
    """A corrected re-delivery with an earlier event time (a camera clock fixed) replaces the stored row."""
    base = (tmp_path / "t").as_uri()
    schema = "image_id string, timestamp timestamp, length_mm double, day string"
    wrong_clock, fixed = datetime(2099, 5, 1, tzinfo=timezone.utc), datetime(2025, 5, 1, tzinfo=timezone.utc)
    upsert(spark.createDataFrame([("img_1", wrong_clock, 2.0, "2025-05-01")], schema), base, "t", "default")
    upsert(spark.createDataFrame([("img_1", fixed, 1.0, "2025-05-01")], schema), base, "t", "default")
    snapshot = read_hudi_snapshot(base, {})
    assert snapshot["length_mm"].to_pylist() == [1.0]
    assert [t.replace(tzinfo=timezone.utc) for t in snapshot["timestamp"].to_pylist()] == [fixed]


def test_time_travel_reads_an_earlier_commit(spark, tmp_path):
    base = (tmp_path / "t").as_uri()
    schema = "image_id string, timestamp timestamp, day string"
    ts = datetime(2025, 5, 1, tzinfo=timezone.utc)
    first = upsert(spark.createDataFrame([("a", ts, "2025-05-01")], schema), base, "t", "default")
    upsert(spark.createDataFrame([("b", ts, "2025-05-02")], schema), base, "t", "default")
    assert read_hudi_snapshot(base, {}, as_of=first.instant)["image_id"].to_pylist() == ["a"]
    assert sorted(read_hudi_snapshot(base, {})["image_id"].to_pylist()) == ["a", "b"]
    assert read_hudi_snapshot(base, {}, days=["2025-05-02"])["image_id"].to_pylist() == ["b"]
    with pytest.raises(Exception):
        read_hudi_snapshot((tmp_path / "missing").as_uri(), {})
    assert isinstance(read_hudi_snapshot(base, {}, days=[]), pa.Table)
