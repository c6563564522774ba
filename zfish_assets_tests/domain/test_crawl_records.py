"""A crawl's records deleted out of band (a day's keys file, its quarantine ledger): the next crawl of any day
of the table writes them again from the day's files, and until then the job refuses the day, naming the
ledger, rather than read its quarantined duplicates as rows.

Without its keys file a registered day's keys looked free to every other day's crawl: an image was
accepted on two days (two rows in the joined table), with every crawl succeeding. The expectations are
computed from the delivered keys (`support/crawl_lake.expected`), never from the crawl's records.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glue_scripts.zfish_etl.catalog import read_local_table
from glue_scripts.zfish_etl.ledger import ledger_key
from glue_scripts.zfish_etl.read import quarantined_lines
from zfish_assets.domain.glue_crawler import crawl
from zfish_assets.domain.quarantine import keys_key
from zfish_assets_tests.support.crawl_lake import DAYS, DELIVER_OR_CRAWL, deliver, expected, make_lake, outcome, play

RECORDS = {"keys": keys_key, "ledger": ledger_key}


def crawled_lake(root: Path, delivered: dict[str, list[str]]):
    lake, catalog = make_lake(root)
    for day, keys in delivered.items():
        deliver(lake, "observations", day, keys)
    for day in delivered:
        crawl(lake, catalog, "observations", day)
    return lake, catalog


def test_a_day_whose_keys_file_was_deleted_keeps_its_keys_from_a_later_day(tmp_path):
    delivered = {DAYS[0]: ["X", "Y"], DAYS[1]: ["X", "Z"], DAYS[2]: []}
    lake, catalog = crawled_lake(tmp_path, delivered)
    lake.delete_keys([keys_key("observations", DAYS[0])])
    crawled = crawl(lake, catalog, "observations", DAYS[1])  # re-crawled (the sensor, a backfill)
    assert outcome(lake, catalog) == expected(delivered)  # X held by day 25 only, deferred by day 26
    assert DAYS[0] in crawled.rejudged
    assert lake.get_many([keys_key("observations", DAYS[0])]) != [None]


def test_a_deleted_ledger_is_written_again_by_the_next_crawl_of_any_day(tmp_path):
    delivered = {DAYS[0]: ["X"], DAYS[1]: ["X", "Z", "Z"], DAYS[2]: ["Y"]}
    lake, catalog = crawled_lake(tmp_path, delivered)
    lake.delete_keys([ledger_key("observations", DAYS[1])])
    assert crawl(lake, catalog, "observations", DAYS[2]).rejudged == (DAYS[1],)
    assert outcome(lake, catalog) == expected(delivered)


def test_a_re_judging_killed_before_it_registered_is_finished_by_the_next_crawl_of_any_day(tmp_path, monkeypatch):
    """Day 25 re-delivered without X: its crawl re-judges day 26 (X moves there), writes 26's keys and
    ledger, and is killed before registering 26. Its keys file then agrees with the earlier days, so only
    the digest the partition records tells that 26's registration is not its verdict."""
    from zfish_assets.resources.data_catalog import LocalCatalog

    lake, catalog = crawled_lake(tmp_path, {DAYS[0]: ["X"], DAYS[1]: ["X", "Z"]})
    deliver(lake, "observations", DAYS[0], ["Y"])
    register = LocalCatalog.put_partition

    def killed_at_26(self, table, day, location, parameters):
        if day == DAYS[1]:
            raise KeyboardInterrupt("killed")
        return register(self, table, day, location, parameters)

    monkeypatch.setattr(LocalCatalog, "put_partition", killed_at_26)
    with pytest.raises(KeyboardInterrupt):
        crawl(lake, catalog, "observations", DAYS[0])
    monkeypatch.setattr(LocalCatalog, "put_partition", register)
    deliver(lake, "observations", DAYS[2], ["W"])
    assert DAYS[1] in crawl(lake, catalog, "observations", DAYS[2]).rejudged
    assert outcome(lake, catalog) == expected({DAYS[0]: ["Y"], DAYS[1]: ["X", "Z"], DAYS[2]: ["W"]})


def test_the_job_refuses_a_day_whose_ledger_is_gone_or_cut_naming_the_ledger_and_the_fix(tmp_path):
    """The job leaves out exactly the ledger's lines and judges the rest line by line: with the ledger gone,
    day 26's duplicate `Z` and deferred `X` would be read as rows."""
    lake, catalog = crawled_lake(tmp_path, {DAYS[0]: ["X"], DAYS[1]: ["X", "Z", "Z"]})
    table = read_local_table(catalog.root, catalog.database, "observations")
    assert len(quarantined_lines(table, [DAYS[0], DAYS[1]])) == 2
    ledger = Path(lake.root) / "p" / ledger_key("observations", DAYS[1])
    whole = ledger.read_bytes()
    for damaged in (None, whole.splitlines(keepends=True)[0]):  # deleted, then cut to its first entry
        ledger.unlink(missing_ok=True)
        if damaged is not None:
            ledger.write_bytes(damaged)
        with pytest.raises(ValueError) as refused:
            quarantined_lines(table, [DAYS[0], DAYS[1]])
        message = str(refused.value)
        assert f"day={DAYS[1]}" in message and str(ledger) in message and "Re-crawl the day" in message, message
        assert ("is missing" if damaged is None else "holds 1 quarantined rows") in message, message


step = st.one_of(*DELIVER_OR_CRAWL,
                 st.tuples(st.just("lose"), st.sampled_from(DAYS), st.sampled_from(sorted(RECORDS))))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(step, min_size=1, max_size=10), last=st.sampled_from(DAYS))
def test_records_lost_at_any_moment_are_repaired_by_the_next_crawl(scratch, history, last):
    """Deliveries, crawls and records deleted in any order, then each changed day crawled in day order and
    a crawl of any day: the registrations and quarantines the final lake implies."""
    lake, catalog = make_lake(Path(tempfile.mkdtemp(dir=scratch)))

    def lose(_: str, day: str, record: str) -> None:
        lake.delete_keys([RECORDS[record]("observations", day)])

    delivered, changed = play(lake, catalog, history, other=lose)
    for day in sorted(changed):
        crawl(lake, catalog, "observations", day)
    crawl(lake, catalog, "observations", last)
    assert outcome(lake, catalog) == expected(delivered), history


def test_on_s3_and_glue_lost_records_are_repaired_and_crawls_at_once_take_turns(moto_url, tmp_path, monkeypatch):
    """The same on moto's S3 and Glue: the crawl's lease is an S3 object written conditionally, and the
    records are found missing by listing."""
    import boto3

    from zfish_assets.resources.aws_connection import AWSConnection
    from zfish_assets.resources.data_catalog import GlueCatalog
    from zfish_assets.resources.lake import S3Lake

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url).create_bucket(Bucket="crawl-records")
    connection = AWSConnection(region_name="us-east-1", endpoint_url=moto_url)
    lake = S3Lake(bucket="crawl-records", prefix="p", cache_dir=str(tmp_path / "cache"), aws=connection)
    catalog = GlueCatalog(database="crawl_records", aws=connection)
    delivered = {DAYS[0]: ["X", "Y"], DAYS[1]: ["X", "Z", "Z"], DAYS[2]: ["Y", "W"]}
    for day, keys in delivered.items():
        deliver(lake, "observations", day, keys)
    threads = [threading.Thread(target=crawl, args=(lake, catalog, "observations", day)) for day in DAYS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcome(lake, catalog) == expected(delivered)
    lake.delete_keys([keys_key("observations", DAYS[0]), ledger_key("observations", DAYS[1])])
    assert {DAYS[0], DAYS[1]} <= set(crawl(lake, catalog, "observations", DAYS[2]).rejudged)
    assert outcome(lake, catalog) == expected(delivered)
