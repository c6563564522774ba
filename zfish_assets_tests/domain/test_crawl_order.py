"""The crawl without Spark: the order days are crawled in never matters, and a whole day can be retracted.

A key (observations' `image_id`) belongs to the earliest day that delivers a usable line of it;
every other delivery of it is quarantined as `key_in_other_day`, naming that day. The expectations
here are computed from the delivered files alone, never from the crawl's records.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glue_scripts.zfish_etl.accepted import day_prefix
from glue_scripts.zfish_etl.ledger import read_ledger
from zfish_assets.assets.crawled_checks import partitions_match_lake, rows_match_landed
from zfish_assets.domain.glue_crawler import crawl
from zfish_assets.domain.quarantine import keys_key
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.resources.lake import LocalLake
from zfish_assets.resources.query import DuckDBQuery

DAYS = ("2025-04-25", "2025-04-26", "2025-04-27")
KEYS = ("X", "Y", "Z")


def line(key: str, fish: str = "zfish_A") -> str:
    return json.dumps({"fish_id": fish, "image_id": key, "timestamp": "2025-04-25T09:00:00Z", "age_days": 5,
                       "treatment": "control", "genetic_markers": {"gene_a": 0.1, "gene_b": 0.2, "gene_c": 0.3},
                       "length_mm": 4.5, "sex": "F"})


def make_lake(root: Path) -> tuple[LocalLake, LocalCatalog]:
    return LocalLake(root=str(root / "lake"), prefix="p"), LocalCatalog(root=str(root / "catalog"), database="db")


def deliver(lake: LocalLake, table: str, day: str, keys: list[str]) -> None:
    """Replace the day's folder with one file of a line per key (none: the day is retracted)."""
    def write(folder: Path) -> None:
        if keys:
            (folder / "obs.json").write_text("".join(line(k) + "\n" for k in keys))
    lake.land_day(table, day, write)


def outcome(lake: LocalLake, catalog: LocalCatalog, table: str = "observations") -> dict:
    """What the crawls left: per registered day its accepted keys (from the accepted rows the
    partition points at) and its count; per day its quarantine as (line, reason, detail)."""
    base = lake.uri().rstrip("/") + "/"
    found = catalog.get_table(table)
    registered = {}
    for day, location in (found.partitions if found else {}).items():
        rows = (Path(lake.root) / "p" / location.removeprefix(base) / "rows.json").read_text().splitlines()
        registered[day] = (sorted(json.loads(r).get("image_id", r) for r in rows),
                           catalog.partition_parameters(table)[day]["recordCount"])
    quarantined = {day: sorted((e.line, e.reason, e.detail) for e in read_ledger(lake.get_bytes, table, day) or [])
                   for day in DAYS}
    return {"registered": registered, "quarantined": {d: q for d, q in quarantined.items() if q}}


def expected(delivered: dict[str, list[str]]) -> dict:
    """The outcome the final lake alone implies: the earliest day delivering a key holds it."""
    holder: dict[str, str] = {}
    registered, quarantined = {}, {}
    for day in sorted(delivered):
        keys = delivered[day]
        if not keys:
            continue
        accepted, entries, seen = [], [], set()
        for number, key in enumerate(keys, start=1):
            if key in holder and holder[key] != day:
                entries.append((number, "key_in_other_day", f'image_id "{key}" was accepted on day={holder[key]}'))
            elif key in seen:
                entries.append((number, "duplicate_key", f'image_id "{key}" first seen at obs.json:{keys.index(key) + 1}'))
            else:
                seen.add(key)
                accepted.append(key)
        for key in seen:
            holder.setdefault(key, day)
        registered[day] = (sorted(accepted), str(len(accepted)))
        if entries:
            quarantined[day] = sorted(entries)
    return {"registered": registered, "quarantined": quarantined}


@pytest.fixture(scope="module")
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="zfish-crawl-order-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


day_keys = st.lists(st.sampled_from(KEYS), max_size=3)
step = st.one_of(st.tuples(st.just("deliver"), st.sampled_from(DAYS), day_keys),
                 st.tuples(st.just("crawl"), st.sampled_from(DAYS), st.just([])))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(step, min_size=1, max_size=10), final_order=st.permutations(DAYS))
def test_the_final_lake_alone_decides_every_registration_and_quarantine(scratch, history, final_order):
    """Any interleaving of deliveries (re-deliveries, retractions) and crawls, then a crawl of each
    day whose files changed since its last crawl, in any order: the registrations and quarantines
    are those the final lake implies, and every delivered line is in exactly one of them."""
    lake, catalog = make_lake(Path(tempfile.mkdtemp(dir=scratch)))
    delivered = {day: [] for day in DAYS}
    changed: set[str] = set()
    for action, day, keys in history:
        if action == "deliver":
            deliver(lake, "observations", day, keys)
            delivered[day], changed = list(keys), changed | {day}
        else:
            crawl(lake, catalog, "observations", day)
            changed.discard(day)
    for day in final_order:
        if day in changed:
            crawl(lake, catalog, "observations", day)
    got, want = outcome(lake, catalog), expected(delivered)
    assert got == want, history
    lines = sum(len(keys) for keys in delivered.values())
    assert sum(len(k) for k, _ in got["registered"].values()) + sum(map(len, got["quarantined"].values())) == lines


def test_a_key_moved_to_a_later_day_survives_the_later_day_crawled_first(tmp_path):
    """X re-delivered from 04-25 to 04-26, 04-26 crawled first (X deferred to 04-25), then 04-25:
    X must end up on 04-26, not lost."""
    lake, catalog = make_lake(tmp_path)
    first, second = DAYS[:2]
    deliver(lake, "observations", first, ["X", "Y"])
    crawl(lake, catalog, "observations", first)
    deliver(lake, "observations", first, ["Y"])
    deliver(lake, "observations", second, ["X"])
    deferred = crawl(lake, catalog, "observations", second)
    assert deferred.judged.reasons() == {"key_in_other_day": 1}
    crawled = crawl(lake, catalog, "observations", first)
    assert outcome(lake, catalog) == {"registered": {first: (["Y"], "1"), second: (["X"], "1")}, "quarantined": {}}
    assert crawled.rejudged == (second,)


def test_a_retracted_day_is_dropped_and_its_checks_pass(tmp_path):
    """A day re-delivered with no file: the crawl drops its partition, accepted rows and keys, and
    the blocking checks pass; a key it held goes to the next day delivering it."""
    lake, catalog = make_lake(tmp_path)
    first, second = DAYS[:2]
    deliver(lake, "observations", first, ["X", "Y"])
    deliver(lake, "observations", second, ["X", "Z"])
    for day in (first, second):
        crawl(lake, catalog, "observations", day)
    deliver(lake, "observations", first, [])
    assert not lake.list_day("observations", first)
    crawled = crawl(lake, catalog, "observations", first)
    assert set(catalog.partition_parameters("observations")) == {second}
    assert not crawled.registered and crawled.dropped and crawled.rejudged == (second,)
    assert lake.list_keys(day_prefix("observations", first)) == []
    assert lake.get_many([keys_key("observations", first)]) == [None]
    assert outcome(lake, catalog) == {"registered": {second: (["X", "Z"], "2")}, "quarantined": {}}
    check = partitions_match_lake("observations", [first], lake, catalog)
    assert check.passed, check.description
    query = DuckDBQuery(catalog=catalog, lake=lake)
    landed = {first: 0, second: 2}
    check = rows_match_landed("observations", [first, second], query, catalog, lambda _, day, files: landed[day])
    assert check.passed, check.description


def test_a_retracted_outcomes_day_is_dropped(tmp_path):
    lake, catalog = make_lake(tmp_path)
    day = DAYS[0]
    lake.land_day("outcomes", day, lambda f: (f / "labels.json").write_text(
        '{"fish_id": "zfish_A", "condition_developed": true}\n'))
    assert crawl(lake, catalog, "outcomes", day).registered
    lake.land_day("outcomes", day, lambda f: None)
    assert not crawl(lake, catalog, "outcomes", day).registered
    assert catalog.partition_parameters("outcomes") == {}
    assert lake.list_keys(day_prefix("outcomes", day)) == []
    assert partitions_match_lake("outcomes", [day], lake, catalog).passed


def test_a_crawl_stopped_before_following_is_completed_by_the_next_crawl_of_any_day(tmp_path):
    """The crawl of 04-25 stops after registering its own day, before re-judging 04-26 (as a kill
    there leaves it: `crawl_day` alone); the next crawl of any day of the table, here 04-27 with
    nothing to do with the key, finds 04-26 stale from the keys files and re-judges it."""
    from zfish_assets.domain.crawl import crawl_day

    lake, catalog = make_lake(tmp_path)
    first, second, third = DAYS
    deliver(lake, "observations", first, ["X"])
    crawl(lake, catalog, "observations", first)
    deliver(lake, "observations", first, [])
    deliver(lake, "observations", second, ["X"])
    deliver(lake, "observations", third, ["Z"])
    crawl(lake, catalog, "observations", second)
    crawl_day(lake, catalog, "observations", first)  # killed before it followed
    assert outcome(lake, catalog)["quarantined"]  # the quarantine names a day that no longer holds X
    assert crawl(lake, catalog, "observations", third).rejudged == (second,)
    assert outcome(lake, catalog) == {"registered": {second: (["X"], "1"), third: (["Z"], "1")}, "quarantined": {}}
