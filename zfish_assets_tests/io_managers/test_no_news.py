"""No Spark for no news: the walkthrough's rerun of an evening never calls the engine, and its checks pass;
any news (a new label day reaching images before the window, a re-delivered or retracted observation day,
another writer's commit) calls it.

The proof is an engine that fails when called: a run on it succeeds only if the engine is never asked.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from dagster import AssetKey, Definitions

from glue_scripts.zfish_etl.job_args import JobArgs
from zfish_assets.definitions import build_definitions
from zfish_assets.domain.crawl import crawl_day
from zfish_assets.backends.hudi_reader import completed_commits
from zfish_assets.io_managers.hudi_io_manager import HudiIOManager
from zfish_assets.resources.engine import Engine
from zfish_assets.tools.runs import join_range, land_and_crawl
from zfish_assets_tests.support.walkthrough import START, evening_window, expected_rows, rows, table_uri

pytestmark = pytest.mark.long_module  # minutes of work: scheduled first (conftest)

WINDOW = evening_window("2025-05-11")  # 2025-04-06..2025-05-11


class RefusingEngine(Engine):
    """An engine that fails when asked to run: a run on it succeeds only if it never asks."""

    def run_job(self, args: JobArgs, run_key: str = "", context=None):
        raise RuntimeError(f"the engine was called for {args.first_day}..{args.last_day}")


def refusing(defs):
    """`defs` with an IO manager whose engine refuses to run."""
    io = defs.resources["hudi_io_manager"]
    return Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs, schedules=defs.schedules,
                       sensors=defs.sensors, executor=defs.executor, resources={**defs.resources, "hudi_io_manager":
                       HudiIOManager(engine=RefusingEngine(), catalog=io.catalog, lake=io.lake)})


def evening(defs, instance) -> None:
    """The walkthrough up to the evening of 2025-05-11 (60 rows, then 75)."""
    assert join_range(defs, instance, START, "2025-05-10").success
    land_and_crawl(defs, instance, ["2025-05-11"])
    assert join_range(defs, instance, *WINDOW).success


def catalog_bytes(data_dir: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted((data_dir / "catalog").rglob("*.json"))}


def latest_metadata(instance) -> dict[str, dict]:
    records = instance.fetch_materializations(AssetKey("joined_fish_data"), limit=200).records
    return {r.partition_key: r.asset_materialization.metadata for r in reversed(records)}


def test_the_rerun_of_an_evening_skips_the_engine_and_its_checks_pass(walkthrough, defs, instance, data_dir):
    evening(defs, instance)
    catalog, commits = catalog_bytes(data_dir), completed_commits(table_uri(defs), {})

    rerun = join_range(refusing(defs), instance, *WINDOW)

    assert rerun.success and rerun.checks and all(c.passed for c in rerun.checks), rerun.checks
    assert rows(defs) == expected_rows(data_dir) and len(rows(defs)) == 75
    assert completed_commits(table_uri(defs), {}) == commits and catalog_bytes(data_dir) == catalog
    metadata = latest_metadata(instance)
    last = metadata[WINDOW[1]]
    assert last["engine_skipped"].value is True and last["no_news_since"].value == commits[-1]
    assert last["dagster/row_count"].value == 75 and last["observations_read"].value == 0
    per_day = Counter(day for *_, day in expected_rows(data_dir).values())
    for day in ("2025-04-08", "2025-04-10", "2025-05-11"):
        assert metadata[day]["dagster/partition_row_count"].value == per_day.get(day, 0)


def land(defs, table: str, day: str, files: dict[str, str]) -> None:
    """Deliver `day` of `table` as `files` (name -> text; none: the day retracted) and crawl it."""
    lake = defs.resources["lake"]

    def write(dest: Path) -> None:
        for name, text in files.items():
            (dest / name).write_text(text)

    lake.land_day(table, day, write)
    crawl_day(lake, defs.resources["catalog"], table, day)


def delivered(defs, table: str, day: str) -> dict[str, str]:
    folder = defs.resources["lake"].local_day_dir(table, day)
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.is_file()}


def fish_of(defs, day: str) -> str:
    return json.loads(next(iter(delivered(defs, "observations", day).values())))["fish_id"]


def regene(text: str) -> str:
    record = json.loads(text)
    record["genetic_markers"]["gene_a"] += 1.0
    return json.dumps(record)


def test_news_of_any_kind_calls_the_engine(walkthrough, defs, instance, data_dir, monkeypatch):
    evening(defs, instance)
    late_fish = fish_of(defs, START)  # imaged before the window only
    redelivered = delivered(defs, "observations", "2025-04-20")
    news = {
        "a new label day whose label reaches an image before the window": lambda: land(
            defs, "outcomes", "2025-05-12",
            {"late.json": json.dumps({"fish_id": late_fish, "condition_developed": True})}),
        "a re-delivered observation day": lambda: land(
            defs, "observations", "2025-04-20", {n: regene(t) for n, t in redelivered.items()}),
        "another writer's commit": lambda: another_writer(monkeypatch, instance),
        # The crawl registers nothing for a day without files, so the catalog keeps naming the emptied day:
        # it cannot be fingerprinted, and every later run of the window calls the engine (last, therefore).
        "a retracted observation day": lambda: land(defs, "observations", "2025-04-21", {}),
    }
    for name, make in news.items():
        make()
        refused = join_range(refusing(defs), instance, *WINDOW, raise_on_error=False)
        assert not refused.success and "the engine was called" in refused.error, (name, refused)
        assert join_range(defs, instance, *WINDOW).success, name
        if name != "a retracted observation day":
            assert join_range(refusing(defs), instance, *WINDOW).success, f"no news after {name}"
    assert rows(defs) == expected_rows(data_dir)


def another_writer(monkeypatch, instance) -> None:
    """A full rewrite of a labeled day of the window (its 15 rows again): a commit the window's record did not see."""
    with monkeypatch.context() as m:
        m.setenv("ZFISH_JOIN_MODE", "full")
        assert join_range(build_definitions(), instance, "2025-04-08", "2025-04-08").success
