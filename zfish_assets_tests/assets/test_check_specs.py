"""The checks' wiring without Spark: a spec requires what its function reads, the query side reads
the tables its caller names and asks the catalog for nothing else, a check is a function of values.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest
from dagster import AssetCheckResult

from zfish_assets.assets.check_specs import CheckSpec, asset_check_of, run_days, tables_exist
from zfish_assets.assets.schema_checks import column_schema_change
from zfish_assets.dagster_names import PARTITION, RANGE_END, RANGE_START

DAY = "2025-05-01"


def test_a_check_requires_the_resources_its_function_and_guard_read_and_nothing_else():
    def reads_the_query_side(days, query) -> AssetCheckResult:
        raise AssertionError("not run here")

    plain = asset_check_of(CheckSpec("t", "c", "d", True, reads_the_query_side))
    guarded = asset_check_of(CheckSpec("t", "c", "d", False, reads_the_query_side, tables_exist("t")))
    assert plain.required_resource_keys - {"io_manager"} == {"query"}
    assert guarded.required_resource_keys - {"io_manager"} == {"query", "catalog"}  # the guard's table lookup
    assert [(s.name, s.blocking, s.description) for s in guarded.check_specs] == [("c", False, "d")]

    def reads_a_typo(lakes) -> AssetCheckResult:
        raise AssertionError("not run here")

    with pytest.raises(TypeError, match=r"check t/c reads lakes: not among the inputs a check gets \(asset, days, lake"):
        asset_check_of(CheckSpec("t", "c", "d", True, reads_a_typo))


def test_the_runs_days_come_from_its_partition_or_range_tags():
    assert run_days({PARTITION: DAY}) == [DAY]
    assert run_days({RANGE_START: "2025-04-29", RANGE_END: DAY}) == ["2025-04-29", "2025-04-30", DAY]
    assert run_days({}) is None
    with pytest.raises(ValueError, match="2025-05-01' OR"):
        run_days({PARTITION: "2025-05-01' OR '1'='1"})


def test_the_schema_change_compares_the_latest_run_with_the_previous_one():
    latest = {"a": "bigint", "c": "double"}
    # Two materializations of the latest run (a range run records one per day), then the previous run's.
    schemas = [("run-2", latest), ("run-2", latest), ("run-1", {"a": "int", "b": "string"})]
    result = column_schema_change(schemas)
    assert not result.passed and result.severity.value == "WARN"
    assert result.description == "added c (double); removed b; a: int -> bigint"
    assert column_schema_change([("run-2", latest), ("run-2", latest)]).description == \
        "no earlier run's column schema to compare with"
    assert column_schema_change([]).passed


def test_duckdb_asks_the_catalog_for_the_tables_it_is_told_and_reads_their_days(tmp_path, monkeypatch):
    from zfish_assets.domain.crawl import crawl_day
    from zfish_assets.resources.data_catalog import LocalCatalog
    from zfish_assets.resources.lake import LocalLake
    from zfish_assets.resources.query import DuckDBQuery
    from zfish_assets.synthetic import SimSettings, write_day

    lake = LocalLake(root=str(tmp_path / "lake"), prefix="p")
    catalog = LocalCatalog(root=str(tmp_path / "catalog"), database="db")
    sim = SimSettings(start=date(2025, 4, 30), fish_per_day=4, images_per_fish=2)
    for day in ("2025-04-30", DAY):
        lake.land_day("observations", day, lambda folder, day=day: write_day(sim, "observations", date.fromisoformat(day), folder))
        assert crawl_day(lake, catalog, "observations", day).registered
    raw = {day: sum(1 for f in Path(lake.local_day_dir("observations", day)).glob("*.json")
                    for line in f.read_text().splitlines() if line.strip() and json.loads(line))
           for day in ("2025-04-30", DAY)}

    asked: list[str] = []
    get_table = LocalCatalog.get_table
    monkeypatch.setattr(LocalCatalog, "get_table", lambda self, name: asked.append(name) or get_table(self, name))
    query = DuckDBQuery(catalog=catalog, lake=lake)
    every_day = 'SELECT day, count(*) AS n FROM "db"."observations" GROUP BY day ORDER BY day'
    assert {r["day"]: r["n"] for r in query.query(every_day, {"observations": None}).to_pylist()} == raw
    assert asked == ["observations"]  # not one lookup per word of the SQL
    # Told one day, the view holds that day alone.
    assert {r["day"]: r["n"] for r in query.query(every_day, {"observations": [DAY]}).to_pylist()} == {DAY: raw[DAY]}
    # A table the SQL reads but the caller did not name gets no view: DuckDB's error names it.
    with pytest.raises(duckdb.CatalogException, match="outcomes"):
        query.query('SELECT count(*) FROM "db"."observations" o JOIN "db"."outcomes" USING (fish_id)',
                    {"observations": None})
