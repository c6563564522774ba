"""The job's transformation (glue_scripts/zfish_etl/transform.py) against plain-Python answers.

Pure Spark, no Hudi: these run on every Glue runtime's Spark, Glue 6.0's 4.1.1 included
(`make test-glue6`). Each expectation is computed here from the rows, never by the code under test.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from glue_scripts.zfish_etl.transform import (
    changed_rows, deleted_keys, flat_names, flatten_markers, join_labeled, latest_labels, stale_label_days,
    with_event_time)

FISH = st.sampled_from(["f1", "f2", "f3", "f4"])
DAYS = st.sampled_from(["2025-05-01", "2025-05-02", "2025-05-03"])
# Each example is Spark jobs of about a second on a loaded machine; what is asserted is the answer, never its speed.
EXAMPLES = settings(max_examples=5, deadline=None)


def ordered(rows) -> list[tuple]:
    """`rows` (tuples, Rows) in one order, nulls included."""
    return sorted((tuple(r) for r in rows), key=repr)

OUTCOMES_DDL = "fish_id string, condition_developed boolean, day string"
OBSERVATIONS_DDL = ("image_id string, fish_id string, timestamp string, length_mm double, "
                    "genetic_markers struct<gene_b:double, gene_a:double>, day string")
outcome_rows = st.lists(st.tuples(st.one_of(st.none(), FISH), st.one_of(st.none(), st.booleans()), DAYS), max_size=10)


def latest_label_of(outcomes: list[tuple]) -> dict[str, tuple[bool, str]]:
    """fish -> (label, its day): the latest day's; on one day, a positive label over a negative one."""
    best: dict[str, tuple[str, bool]] = {}
    for fish, label, day in outcomes:
        if fish is not None and label is not None and (day, label) > best.get(fish, ("", False)):
            best[fish] = (day, label)
    return {fish: (label, day) for fish, (day, label) in best.items()}


@EXAMPLES
@given(outcomes=outcome_rows)
def test_latest_labels_keeps_one_label_per_fish(spark, outcomes):
    got = latest_labels(spark.createDataFrame(outcomes, OUTCOMES_DDL)).collect()
    assert ordered(got) == ordered((f, label, day) for f, (label, day) in latest_label_of(outcomes).items())


def test_markers_become_columns_in_the_datas_order(spark):
    frame = spark.createDataFrame([("i1", "f1", "2025-05-01T08:00:00Z", 2.5, (0.1, 0.2), "2025-05-01")], OBSERVATIONS_DDL)
    assert flat_names(frame.schema) == ["image_id", "fish_id", "timestamp", "length_mm", "day", "gene_b", "gene_a"]
    flat = flatten_markers(frame, frame.schema)
    assert flat.columns == flat_names(frame.schema)
    assert flat.collect()[0].asDict() == {"image_id": "i1", "fish_id": "f1", "timestamp": "2025-05-01T08:00:00Z",
                                          "length_mm": 2.5, "day": "2025-05-01", "gene_b": 0.1, "gene_a": 0.2}
    bad = spark.createDataFrame([("i1", "x")], "image_id string, genetic_markers string")
    with pytest.raises(TypeError, match="genetic_markers must be a struct, the catalog says string"):
        flat_names(bad.schema)


@pytest.mark.parametrize("text", ["2025-05-10T09:30:00Z", "2025-05-10T09:30:00.250000Z", "0001-01-01T00:00:00Z",
                                  "9999-12-31T23:59:59.999999Z", "2024-02-29T23:59:59Z"])
def test_event_time_is_the_instant_the_normalized_text_names(spark, text):
    """The contract's normal form (UTC, `Z`) read as that instant, whatever the JVM's zone: microseconds since the epoch."""
    frame = with_event_time(spark.createDataFrame([(text,)], "timestamp string"))
    assert dict(frame.dtypes)["timestamp"] == "timestamp"
    micros = frame.select(F.unix_micros("timestamp")).first()[0]
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    epoch = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
    delta = moment - epoch
    assert micros == (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


observation_rows = st.lists(
    st.tuples(st.integers(0, 30).map(lambda n: f"img{n}"), st.one_of(st.none(), FISH),
              st.one_of(st.none(), st.floats(0, 10, allow_nan=False)), DAYS),
    max_size=8, unique_by=lambda r: r[0])


@EXAMPLES
@given(observations=observation_rows, outcomes=outcome_rows)
def test_join_keeps_each_labeled_image_with_its_fishs_latest_label(spark, observations, outcomes):
    rows = [(image, fish, "2025-05-01T08:00:00Z", length, (length, None), day) for image, fish, length, day in observations]
    joined = join_labeled(spark.createDataFrame(rows, OBSERVATIONS_DDL), spark.createDataFrame(outcomes, OUTCOMES_DDL))
    assert joined.columns == ["image_id", "fish_id", "timestamp", "length_mm", "gene_b", "gene_a",
                              "condition_developed", "outcome_day", "day"]
    labels = latest_label_of(outcomes)
    expected = [(image, fish, length, length, None, *labels[fish], day)
                for image, fish, length, day in observations if fish in labels]
    got = [tuple(r[c] for c in joined.columns if c != "timestamp") for r in joined.collect()]
    assert ordered(got) == ordered(expected)


stored_rows = st.lists(st.tuples(st.integers(0, 20).map(lambda n: f"img{n}"), FISH, st.one_of(st.none(), st.booleans()),
                                 st.one_of(st.none(), DAYS), DAYS), max_size=8)


@EXAMPLES
@given(stored=stored_rows, outcomes=outcome_rows)
def test_stale_label_days_are_those_holding_a_label_not_the_latest(spark, stored, outcomes):
    frame = spark.createDataFrame(stored, "image_id string, fish_id string, condition_developed boolean, "
                                          "outcome_day string, day string")
    labels = latest_label_of(outcomes)
    expected = {day for _, fish, label, outcome_day, day in stored if (label, outcome_day) != labels.get(fish, (None, None))}
    got = stale_label_days(frame, spark.createDataFrame(outcomes, OUTCOMES_DDL)).collect()
    assert sorted(r["day"] for r in got) == sorted(expected)


ROW_DDL = "image_id string, length_mm double, outcome_day string, day string"
table_rows = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.one_of(st.none(), st.sampled_from([1.0, 2.5])),
                                st.one_of(st.none(), DAYS), DAYS), max_size=6)


@EXAMPLES
@given(candidates=table_rows, stored=table_rows)
def test_changed_rows_are_the_candidates_the_table_lacks_exactly(spark, candidates, stored):
    got = changed_rows(spark.createDataFrame(candidates, ROW_DDL), spark.createDataFrame(stored, ROW_DDL)).collect()
    held = set(stored)  # a null equals a null: a row is unchanged when every column is the same
    assert ordered(got) == ordered(r for r in candidates if r not in held)


def test_a_column_retyped_or_missing_in_the_table_changes_every_row(spark):
    rows = [("a", 1.0, "2025-05-01", "2025-05-01"), ("b", None, None, "2025-05-02")]
    candidates, stored = spark.createDataFrame(rows, ROW_DDL), spark.createDataFrame(rows, ROW_DDL)
    assert changed_rows(candidates, stored).count() == 0
    assert changed_rows(candidates, stored.withColumn("length_mm", F.col("length_mm").cast("float"))).count() == 2
    assert changed_rows(candidates, stored.drop("outcome_day")).count() == 2


@EXAMPLES
@given(stored=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), DAYS), max_size=6, unique=True),
       labeled=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), DAYS), max_size=6, unique=True))
def test_deleted_keys_are_the_stored_rows_the_days_no_longer_make(spark, stored, labeled):
    with_time = [(image, day, datetime(2025, 5, 1, 8)) for image, day in stored]
    frame = spark.createDataFrame(with_time, "image_id string, day string, timestamp timestamp")
    got = deleted_keys(frame, spark.createDataFrame(labeled, "image_id string, day string")).collect()
    assert sorted((r["image_id"], r["day"]) for r in got) == sorted(set(stored) - set(labeled))
