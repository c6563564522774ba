"""The crawl without Spark: the order days are crawled in never matters, and a whole day can be retracted.

A key (observations' `image_id`) belongs to the earliest day that delivers a usable line of it;
every other delivery of it is quarantined as `key_in_other_day`, naming that day. The expectations
here are computed from the delivered files alone, never from the crawl's records.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glue_scripts.zfish_etl.accepted import day_prefix
from zfish_assets.assets.crawled_checks import partitions_match_lake, rows_match_landed
from zfish_assets.domain.glue_crawler import crawl
from zfish_assets.domain.quarantine import keys_key
from zfish_assets.resources.query import DuckDBQuery
from zfish_assets_tests.support.crawl_lake import DAYS, DELIVER_OR_CRAWL, deliver, expected, make_lake, outcome, play

step = st.one_of(*DELIVER_OR_CRAWL)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(step, min_size=1, max_size=10), final_order=st.permutations(DAYS))
def test_the_final_lake_alone_decides_every_registration_and_quarantine(scratch, history, final_order):
    """Any interleaving of deliveries (re-deliveries, retractions) and crawls, then a crawl of each
    day whose files changed since its last crawl, in any order: the registrations and quarantines
    are those the final lake implies, and every delivered line is in exactly one of them."""
    lake, catalog = make_lake(Path(tempfile.mkdtemp(dir=scratch)))
    delivered, changed = play(lake, catalog, history)
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
