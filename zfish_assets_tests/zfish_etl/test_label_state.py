"""The label state's one Spark action: the outcome days' digests, and the fish of the days changed since
the last commit's state, which late labels look for (computed here from the rows, independently)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from glue_scripts.zfish_etl.label_state import LabelState, StaleLabelScan, changed_days, outcome_days

OUTCOMES = "fish_id string, condition_developed boolean, day string"
DAYS = ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04"]

outcome_rows = st.lists(st.tuples(st.sampled_from(["f1", "f2", "f3", "f4", None]), st.booleans(),
                                  st.sampled_from(DAYS)), max_size=12)
# What the previous commit recorded of each day: nothing (a new day), its digest now (unchanged), another one.
previous_kinds = st.lists(st.sampled_from(["absent", "same", "other"]), min_size=len(DAYS), max_size=len(DAYS))


def spelled_as_recorded(spark, rows) -> dict[str, str]:
    """Each day's digest as commits have recorded it: count, and two folds of Spark's xxhash64, joined in Python."""
    df = spark.createDataFrame(rows, OUTCOMES)
    row_hash = F.xxhash64("fish_id", "condition_developed")
    got = df.groupBy("day").agg(F.count(F.lit(1)).alias("n"), F.sum(row_hash.bitwiseAND(F.lit(0xFFFFFFFF))).alias("s"),
                                F.bit_xor(row_hash).alias("x")).collect()
    return {r["day"]: f"{int(r['n'])}:{int(r['s'])}:{int(r['x'])}" for r in got}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=outcome_rows, kinds=previous_kinds)
def test_relabeled_fish_are_those_labeled_on_the_days_changed_since_the_state(spark, rows, kinds):
    recorded = spelled_as_recorded(spark, rows)
    previous = {day: {"same": recorded.get(day, "0:0:0"), "other": "1:2:3"}[kind]
                for day, kind in zip(DAYS, kinds) if kind != "absent"}
    found = outcome_days(spark.createDataFrame(rows, OUTCOMES), previous)

    assert found.digests == recorded  # what earlier commits recorded still compares equal
    changed = {d for d in recorded if previous.get(d) != recorded[d]}
    assert changed_days(LabelState(previous, {}), found.digests) == sorted(changed)
    assert found.relabeled == {fish for fish, _, day in rows if fish is not None and day in changed}
    assert found.fish_days == {d: sorted({other for f2, _, other in rows for f1, _, day in rows
                                          if f1 is not None and f1 == f2 and day == d}) for d in recorded}


def test_without_a_state_nothing_is_compared(spark):
    rows = [("f1", True, DAYS[0]), (None, False, DAYS[1])]
    found = outcome_days(spark.createDataFrame(rows, OUTCOMES), None)
    assert found.digests == spelled_as_recorded(spark, rows)
    assert found.relabeled is None and found.fish_days == {}


STORED = "image_id string, day string, outcome_day string"
stored_rows = st.lists(st.tuples(st.sampled_from(["w1", "w2", "w3"]), st.sampled_from(DAYS[:3]), st.sampled_from(DAYS)),
                       max_size=10)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=stored_rows)
def test_the_counts_collect_every_stored_rows_label_days_when_there_is_no_state(spark, rows):
    """The first recording run's label state: the stored rows' (label day -> image days), from the counting action."""
    from glue_scripts.joined_fish_data import count_run, labels_to_record

    stored = spark.createDataFrame(rows, STORED)
    observations = spark.createDataFrame([("w1", "2025-01-01")], "image_id string, day string")
    without_state = StaleLabelScan(previous=None, digests={}, days=None)
    counts = count_run(observations, None, None, None, None, labels_to_record(without_state, stored))
    expected: dict[str, set[str]] = {}
    for _, day, label_day in rows:
        expected.setdefault(label_day, set()).add(day)
    assert counts.stored_label_days() == {k: sorted(v) for k, v in expected.items()}
    assert without_state.next_state(counts.stored_label_days(), {DAYS[3]: [DAYS[0]]}, {}, DAYS[0]).label_days == {
        k: sorted(v | ({DAYS[0]} if k == DAYS[3] else set())) for k, v in (expected | {DAYS[3]: expected.get(
            DAYS[3], set())}).items()}
    # With a state the pairs carry over from it: the table is not read for them.
    with_state = StaleLabelScan(previous=LabelState({}, {}), digests={}, days=[])
    assert labels_to_record(with_state, stored) is None and labels_to_record(without_state, None) is None


ACCEPTED = "s3://lake/use-cases/fish-demo/_zfish/accepted/observations/day={day}/" + "ab" * 32
CATALOG_VALUES = st.fixed_dictionaries({
    "accepted": st.booleans(),  # the partition points at the crawl's accepted rows, or at the raw folder
    "fingerprint": st.sampled_from(["", "f1", "f2"]),  # "": registered by another writer
    "rows": st.sampled_from(["3", "4"]),
    "columns": st.sampled_from([(("image_id", "string"),), (("image_id", "string"), ("age_days", "bigint"))]),
})


def catalog_table(values: dict, day: str):
    from glue_scripts.zfish_etl.catalog import CatalogTable

    location = ACCEPTED.format(day=day) if values["accepted"] else f"s3://lake/observations/day={day}"
    parameters = {"recordCount": values["rows"], **({"zfish.fingerprint": values["fingerprint"]}
                                                    if values["fingerprint"] else {})}
    return CatalogTable("db", "observations", values["columns"], (("day", "string"),), "s3://lake/observations",
                        "json", {day: location}, {day: parameters})


@given(a=CATALOG_VALUES, b=CATALOG_VALUES)
def test_a_days_observation_version_is_equal_only_where_the_job_would_read_the_same(a, b):
    """A day counts as unchanged (not read) only when both registrations give the job the same rows with the
    same columns; a day no fingerprint vouches for never does; an unregistered day is its own version."""
    from glue_scripts.zfish_etl.label_state import UNREGISTERED, observation_versions

    day = DAYS[0]
    va, vb = (observation_versions(catalog_table(v, day), [day])[day] for v in (a, b))
    vouched = lambda v: v["accepted"] or bool(v["fingerprint"])  # noqa: E731
    same_rows = (a["accepted"] and b["accepted"]) or (not a["accepted"] and not b["accepted"] and (
        a["fingerprint"], a["rows"]) == (b["fingerprint"], b["rows"]))
    if not vouched(a):
        assert va is None
    if vouched(a) and vouched(b):
        assert (va == vb) == (same_rows and a["columns"] == b["columns"])
    assert observation_versions(catalog_table(a, day), [DAYS[1]]) == {DAYS[1]: UNREGISTERED}


def test_a_label_state_that_cannot_be_read_is_none_so_the_run_reads_every_older_day():
    """The state in a commit's metadata only narrows the next run's scan: cut short or of another shape, it is
    none (the run scans every older day and records a fresh one), never a failed evening."""
    from glue_scripts.zfish_etl.label_state import LABEL_STATE_KEY

    whole = json.dumps({"code": "c", "outcome_days": {"2025-01-01": "1:2:3"}, "label_days": {}})
    assert LabelState.from_commit({"extraMetadata": {LABEL_STATE_KEY: whole}}, "c") is not None
    for damaged in (whole[: len(whole) // 2], "[]", '{"code": "c", "outcome_days": [1], "label_days": {}}',
                    '{"code": "c", "label_days": {}}'):
        assert LabelState.from_commit({"extraMetadata": {LABEL_STATE_KEY: damaged}}, "c") is None, damaged
