"""Parts of the lake gone between evenings (the joined table's timeline, a catalog partition): the evening
names what is missing and the fix, never writes over it, and once fixed the table is the raw files' join.

Before, a `.hoodie/` deleted by hand let the next evening start a new table over the old files (every
reader then saw two copies of their rows, `duplicate image_id`), and an outcomes partition deleted from
the catalog while its folder stayed let the evening take those labels away (15 rows gone), both runs
succeeding. Expectations come from the raw files (`support/tables.raw_expected`), never from the job.
"""

from __future__ import annotations

import shutil

import pytest

from glue_scripts.joined_fish_data import run
from glue_scripts.zfish_etl.deregistered import Deregistered
from glue_scripts.zfish_etl.hudi import NoTimeline
from zfish_assets.domain.crawl import crawl_day
from zfish_assets.partitions import days_between
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.resources.lake import LocalLake
from zfish_assets_tests.support.crash import job_args, land_and_crawl, timeline
from zfish_assets_tests.support.tables import as_expected, raw_expected, table_rows

DAYS = days_between("2025-04-05", "2025-04-09")


def lake_with_an_evening(tmp_path, spark):
    """Five days landed and crawled, the evening of the fourth run; (lake, catalog, table, args of the fifth's)."""
    lake, catalog = LocalLake(root=str(tmp_path / "lake")), LocalCatalog(root=str(tmp_path / "catalog"))
    for day in DAYS:
        for raw in ("observations", "outcomes"):
            land_and_crawl(lake, catalog, raw, day)
    table = tmp_path / "joined_fish_data"
    assert run(spark, job_args(str(tmp_path / "catalog"), table, DAYS[0], DAYS[3])).commit_instant
    return lake, catalog, table, job_args(str(tmp_path / "catalog"), table, DAYS[1], DAYS[4])


def assert_the_raw_files_join(tmp_path, table, reliability, kind: str) -> None:
    expected = raw_expected(tmp_path / "lake" / "use-cases/fish-demo")
    stored = as_expected(table_rows(f"file://{table}"))
    reliability.add("absence", kind, rows_in=len(expected), rows_out=len(stored), quarantined=0,
                    lost=len(set(expected) - set(stored)), duplicates=len(set(stored) - set(expected)),
                    changed=sum(stored[k] != v for k, v in expected.items() if k in stored))
    assert stored == expected
    assert DAYS[0] in {day for day, *_ in expected.values()}  # a day outside the last evening's window


def test_a_deleted_timeline_is_refused_naming_it_and_the_table_is_built_whole_once_moved_aside(tmp_path, spark,
                                                                                              reliability):
    lake, catalog, table, args = lake_with_an_evening(tmp_path, spark)
    shutil.rmtree(table / ".hoodie")
    with pytest.raises(NoTimeline) as refused:
        run(spark, args)
    message = str(refused.value)
    assert f"{table}/.hoodie/hoodie.properties is missing" in message and "Move the folder aside" in message, message
    assert not (table / ".hoodie").exists()  # nothing written over the old files
    table.rename(tmp_path / "joined_fish_data.aside")
    assert run(spark, args).commit_instant
    assert_the_raw_files_join(tmp_path, table, reliability, ".hoodie deleted: refused, folder moved aside")


@pytest.mark.parametrize("raw", ["outcomes", "observations"])
def test_a_partition_deleted_outside_zfish_is_refused_and_a_crawl_restores_it(tmp_path, spark, raw, reliability):
    lake, catalog, table, args = lake_with_an_evening(tmp_path, spark)
    before, rows = timeline(table), table_rows(f"file://{table}")
    day = next(d for d in DAYS[1:4] if any(o.is_data() for o in lake.list_day(raw, d)))
    catalog.delete_partition(raw, day)  # as a hand in the Glue console would; the day's folder stays
    with pytest.raises(Deregistered) as refused:
        run(spark, args)
    message = str(refused.value)
    assert f".{raw}: day(s) {day} were registered" in message and f"--select {raw} --partition" in message, message
    assert timeline(table) == before and table_rows(f"file://{table}") == rows
    crawl_day(lake, catalog, raw, day)
    run(spark, args)
    assert_the_raw_files_join(tmp_path, table, reliability, f"{raw} partition deleted: refused, re-crawled")
