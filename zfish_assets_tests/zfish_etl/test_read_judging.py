"""The job's read judges a small read's lines in the process that fetched the files, a larger one on
Spark's Python workers (`read.DRIVER_JUDGED_BYTES`). Both must give the same rows and refuse the
same stale lines, on a lab delivery of every kind of bad line (test_reliability_lines' first round),
crawled with its quarantine ledgers.
"""

from __future__ import annotations

import pytest

from glue_scripts.zfish_etl import read
from glue_scripts.zfish_etl.catalog import read_local_table
from zfish_assets.tools.cli import main as zfish
from zfish_assets.definitions import build_definitions
from zfish_assets.tools.runs import land_and_crawl
from zfish_assets_tests.support.scenario import scenario_instance
from zfish_assets_tests.support.lab_delivery import D1, D2, DAYS, LABELS, PREFIX, ROUND_ONE, write_delivery


@pytest.fixture(scope="module")
def crawled(tmp_path_factory, spark):
    """The first round's observations landed and crawled (no join): the lake and the observations table."""
    root = tmp_path_factory.mktemp("read-judging")
    with scenario_instance(root) as (mp, instance):
        defs = build_definitions()
        delivery = write_delivery(root / "lab", ROUND_ONE)
        for day in (D1, D2, LABELS):
            assert zfish(["upload", str(delivery), "--day", day]) == 0
        assert all(r.success for r in land_and_crawl(defs, instance, DAYS, assets=["observations", "outcomes"]))
        catalog = defs.resources["catalog"]
        yield root / "zfish" / "lake" / PREFIX, read_local_table(str(catalog.root), catalog.database, "observations")


def rows(spark, table, where: str) -> list[dict]:
    """read_days' rows of D1 and D2, with the lines judged `where` ("driver" or "executors")."""
    with pytest.MonkeyPatch.context() as mp:
        if where == "executors":
            mp.setattr(read, "DRIVER_JUDGED_BYTES", -1)
        df = read.read_days(spark, table, [D1, D2])
        found = sorted((r.asDict(recursive=True) for r in df.collect()), key=lambda r: r["image_id"])
        df.unpersist()
    return found


def test_driver_and_executors_read_the_same_rows(spark, crawled):
    _, table = crawled
    here, there = rows(spark, table, "driver"), rows(spark, table, "executors")
    accepted = sum(d.rows() for (day, _), d in ROUND_ONE.items() if d.reason is None and day in (D1, D2))
    assert here == there
    assert len(here) == accepted > 0


def test_driver_and_executors_refuse_the_same_stale_lines(spark, crawled):
    lake, table = crawled
    victim = lake / f"observations/day={D1}/good.json"
    saved = victim.read_bytes()
    victim.write_bytes(saved + b"{broken\n\xff\n")
    try:
        refusals = []
        for where in ("driver", "executors"):
            with pytest.raises(ValueError, match=rf"day={D1} good.json:2 malformed_json") as refused:
                rows(spark, table, where)
            refusals.append(str(refused.value))
        assert refusals[0] == refusals[1]
        assert f"day={D1} good.json:3 not_utf8" in refusals[0]
    finally:
        victim.write_bytes(saved)
