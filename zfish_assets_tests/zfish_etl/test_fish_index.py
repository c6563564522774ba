"""The fish index beside the joined table: entries valid for their day's registration only, segments
written whole, merged when too many, equal entries from an interrupted merge read once.

Spark-free: the index is plain parquet files the job's driver reads and writes.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from glue_scripts.zfish_etl import fish_index
from glue_scripts.zfish_etl.catalog import CatalogTable
from glue_scripts.zfish_etl.fish_index import FishIndex, day_key, day_keys, entries_of, read_index, update_index
from glue_scripts.zfish_etl.names import FINGERPRINT, QUARANTINED_ROWS

DAYS = [f"2024-01-0{d}" for d in range(1, 8)]


def registered(day: str, fingerprint: str = "f", rows: int = 3) -> dict[str, str]:
    return {FINGERPRINT: f"{fingerprint}-{day}", "recordCount": str(rows), QUARANTINED_ROWS: "0"}


def as_set(index: FishIndex, keys) -> set[tuple]:
    return {(r["day"], r["fish_id"], r["images"]) for r in index.current(keys).to_pylist()}


def test_an_entry_is_valid_for_its_days_registration_only(tmp_path):
    table = f"file://{tmp_path}/joined"
    keys = {d: day_key(registered(d)) for d in DAYS[:3]} | {DAYS[3]: None}
    update_index(table, read_index(table), keys, entries_of({(DAYS[0], "a"): 2, (DAYS[1], "b"): 1}, DAYS[:3], keys))
    index = read_index(table)
    assert as_set(index, keys) == {(DAYS[0], "a", 2), (DAYS[1], "b", 1), (DAYS[2], None, 0)}
    assert index.indexed_days(keys) == set(DAYS[:3])  # a day without fish is indexed too
    # Re-delivered (another fingerprint) or re-judged (other counts): its entries no longer count.
    moved = keys | {DAYS[0]: day_key(registered(DAYS[0], "g")), DAYS[1]: day_key(registered(DAYS[1], rows=2))}
    assert index.indexed_days(moved) == {DAYS[2]}
    # A day registered without the crawl's fingerprint has no key: never indexed.
    assert day_key({"recordCount": "3"}) is None and DAYS[3] not in index.indexed_days(keys)


def test_day_keys_come_from_the_catalog_partitions():
    partitions = [{"Values": [d], "StorageDescriptor": {"Location": f"s3://b/o/day={d}"}, "Parameters": registered(d)}
                  for d in DAYS[:2]]
    table = CatalogTable.from_glue({"DatabaseName": "db", "Name": "observations"}, partitions)
    assert day_keys(table) == {d: day_key(registered(d)) for d in DAYS[:2]}


@settings(max_examples=25, deadline=None)
@given(batches=st.lists(st.dictionaries(st.tuples(st.sampled_from(DAYS), st.sampled_from("abcd")),
                                        st.integers(1, 5), min_size=1, max_size=6), min_size=1, max_size=30))
def test_segments_merge_and_an_interrupted_merge_reads_the_same(tmp_path_factory, batches):
    """Whatever runs index (each a batch of days), the index reads what the last entry of each day says,
    in at most MAX_SEGMENTS + 1 files; a merge that died before deleting its inputs reads the same."""
    table = f"file://{tmp_path_factory.mktemp('index')}/joined"
    root = Path(fish_index.index_root(table).removeprefix("file://"))
    versions: dict[str, int] = {}
    expected: dict[str, set[tuple]] = {}
    for batch in batches:
        days = sorted({d for d, _ in batch})
        for d in days:  # each run sees its days re-registered: the old entries turn stale
            versions[d] = versions.get(d, 0) + 1
            expected[d] = {(d, f, n) for (day, f), n in batch.items() if day == d}
        keys = {d: day_key(registered(d, str(v))) for d, v in versions.items()}
        update_index(table, read_index(table), keys, entries_of(batch, days, keys))
        assert len(list(root.glob("*.parquet"))) <= fish_index.MAX_SEGMENTS
    index = read_index(table)
    assert as_set(index, keys) == set().union(*expected.values())
    # An interrupted merge: every segment's entries written once more, none deleted.
    copy = pq.read_table(root / sorted(p.name for p in root.glob("*.parquet"))[0])
    pq.write_table(copy, root / "segment-0-copy.parquet")
    assert as_set(read_index(table), keys) == set().union(*expected.values())


def test_a_segment_that_cannot_be_read_counts_as_missing_and_the_next_merge_removes_it(tmp_path, capsys, monkeypatch):
    """A segment cut short (a copy interrupted) or of another shape failed every evening, naming no file;
    now its days are not indexed (the runs that need them read them again) and a merge deletes it."""
    table = f"file://{tmp_path}/joined"
    keys = {d: day_key(registered(d)) for d in DAYS[:2]}
    update_index(table, read_index(table), keys, entries_of({(DAYS[0], "a"): 2}, DAYS[:1], keys))
    root = Path(fish_index.index_root(table).removeprefix("file://"))
    whole = next(root.glob("*.parquet")).read_bytes()
    (root / "segment-0-cut.parquet").write_bytes(whole[: len(whole) // 2])
    pq.write_table(pq.read_table(next(root.glob("segment-1*.parquet"))).drop(["images"]), root / "segment-0-other.parquet")
    index = read_index(table)
    assert as_set(index, keys) == {(DAYS[0], "a", 2)} and len(index.segments) == 3
    said = capsys.readouterr().out
    assert "segment-0-cut.parquet cannot be read" in said and "segment-0-other.parquet cannot be read" in said, said
    monkeypatch.setattr(fish_index, "MAX_SEGMENTS", 1)  # the next update merges every segment into one
    update_index(table, index, keys, entries_of({(DAYS[1], "b"): 1}, DAYS[1:2], keys))
    assert [p.name for p in root.glob("segment-0-*")] == []
    assert as_set(read_index(table), keys) == {(DAYS[0], "a", 2), (DAYS[1], "b", 1)}
