"""What a join reads, by fingerprint (`io_managers/news.read_inputs`): any change to what it reads is news,
a change to what it does not read is not. No Spark: the catalog is the local one, on disk."""

from __future__ import annotations

import hashlib
import json
import tempfile

from hypothesis import given, settings as hsettings, strategies as st

from glue_scripts.zfish_etl import layout
from zfish_assets.io_managers.news import Inputs, read_inputs
from zfish_assets.dagster_names import FINGERPRINT
from zfish_assets.partitions import days_between
from zfish_assets.resources.data_catalog import LocalCatalog

DAYS = days_between("2025-04-01", "2025-04-12")
WINDOW = tuple(DAYS[3:9])
SOURCES = ("observations", "outcomes")
COLUMNS = [("image_id", "string"), ("fish_id", "string")]

day_state = st.tuples(st.sampled_from("abc"), st.integers(0, 3))  # (files' fingerprint, usable rows)
lake_state = st.fixed_dictionaries({
    "observations": st.dictionaries(st.sampled_from(DAYS), day_state),
    "outcomes": st.dictionaries(st.sampled_from(DAYS), day_state),
})


def catalog_with(root: str, state: dict, columns=COLUMNS) -> LocalCatalog:
    """A catalog holding `state`'s days as a crawl registers them (fingerprint, recordCount, accepted rows' folder)."""
    catalog = LocalCatalog(root=root)
    for table in SOURCES:
        catalog.put_table(table, columns, [("day", "string")], f"file:///lake/{table}", "json")
        for day, (files, rows) in state[table].items():
            catalog.put_partition(table, day, f"file:///lake/_zfish/accepted/{table}/day={day}/{files}{rows}",
                                  {FINGERPRINT: files, "recordCount": str(rows)})
    return catalog


def inputs_of(state: dict, mode: str = "incremental", code: str = "c0", columns=COLUMNS) -> Inputs | None:
    with tempfile.TemporaryDirectory() as root:
        return read_inputs(catalog_with(root, state, columns), WINDOW, mode, code, SOURCES)


def changed(state: dict, table: str, day: str, new: tuple[str, int] | None) -> dict:
    days = {d: v for d, v in state[table].items() if d != day}
    if new is not None:
        days[day] = new
    return {**state, table: days}


@hsettings(max_examples=60, deadline=None)
@given(lake_state, st.sampled_from(DAYS), st.one_of(st.none(), day_state))
def test_any_change_to_an_outcome_day_is_news(state, day, new):
    """A new, re-delivered or retracted (gone, or re-crawled empty) label day, inside the window or not:
    a label of any lateness reaches images of any day."""
    after = changed(state, "outcomes", day, new)
    assert (inputs_of(after) == inputs_of(state)) == (after == state)


@hsettings(max_examples=60, deadline=None)
@given(lake_state, st.sampled_from(DAYS), st.one_of(st.none(), day_state))
def test_observation_days_are_news_inside_the_window_only(state, day, new):
    after = changed(state, "observations", day, new)
    news = day in WINDOW and after != state
    assert (inputs_of(after) != inputs_of(state)) == news


@hsettings(max_examples=20, deadline=None)
@given(lake_state)
def test_other_code_mode_or_columns_are_news(state):
    same = inputs_of(state)
    assert same is not None and same == inputs_of(state)
    assert inputs_of(state, mode="full") != same
    assert inputs_of(state, code="c1") != same
    assert inputs_of(state, columns=[*COLUMNS, ("gene_z", "double")]) != same
    assert Inputs.from_json(same.to_json()) == same


def test_a_day_registered_without_a_fingerprint_is_always_news(tmp_path):
    """A partition another tool registered cannot be compared: no inputs, so no run may skip on it."""
    state = {"observations": {WINDOW[0]: ("a", 1)}, "outcomes": {DAYS[0]: ("b", 2)}}
    catalog = catalog_with(str(tmp_path), state)
    assert read_inputs(catalog, WINDOW, "incremental", "c0", SOURCES) is not None
    catalog.put_partition("outcomes", DAYS[-1], "file:///elsewhere", {"recordCount": "3"})
    assert read_inputs(catalog, WINDOW, "incremental", "c0", SOURCES) is None


def test_accepted_rows_are_fingerprinted_by_their_content(tmp_path):
    """Where a partition points at its accepted rows (named by their SHA-256), the rows' digest is the day's
    fingerprint: the same rows re-delivered (new files' mtimes) are no news, other rows are."""
    catalog = catalog_with(str(tmp_path), {"observations": {}, "outcomes": {}})

    def register(files: str, rows: bytes) -> Inputs | None:
        digest = hashlib.sha256(rows).hexdigest()
        catalog.put_partition("outcomes", DAYS[0], f"file:///lake/p/_zfish/accepted/outcomes/day={DAYS[0]}/{digest}",
                              {FINGERPRINT: files, "recordCount": "1"})
        return read_inputs(catalog, WINDOW, "incremental", "c0", SOURCES)

    first = register("mtime-1", b'{"fish_id": "f1"}\n')
    assert first is not None
    assert register("mtime-2", b'{"fish_id": "f1"}\n') == first
    assert register("mtime-2", b'{"fish_id": "f2"}\n') != first


def test_a_record_that_cannot_be_read_is_news_not_a_failed_evening(tmp_path):
    """The record of what a window's last join read only lets the next run skip the engine: cut short (a copy
    interrupted, an editor) or of another shape, it is no record, and the run runs (and records it again)."""
    from zfish_assets.io_managers.news import NewsLedger
    from zfish_assets.resources.lake import LocalLake

    lake = LocalLake(root=str(tmp_path / "lake"))
    inputs = inputs_of({"observations": {WINDOW[0]: ("a", 1)}, "outcomes": {}})
    ledger = NewsLedger(lake, "joined_fish_data", f"file://{tmp_path}/joined_fish_data", {})
    whole = json.dumps({"inputs": inputs.to_json(), "instant": "20250511180000000"}).encode()
    for damaged in (whole[: len(whole) // 2], b"[]", b'{"inputs": {}, "instant": 1}', b"\xff"):
        lake.put_bytes(layout.news_key("joined_fish_data", inputs.window), damaged)
        assert ledger.unchanged_since(inputs) is None, damaged
