"""Evolving data: a new marker gene becomes a column everywhere, older rows null, nothing rewritten.

The lab measures `gene_d` from 2025-05-02 and drops it again on 2025-05-03; one row names a gene
`Gene-E` (not a column name Glue or Athena keep) and one gives `gene_d` as text. Days are crawled
and joined through the Dagster assets on Spark and Hudi: 2025-05-01 first (its own commit), then
the window 2025-05-02..2025-05-05, which does not reach back to 2025-05-01. What each engine shows
is compared with the raw files, read here with `json` alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import AssetKey

from zfish_assets.tools.cli import main as zfish
from zfish_assets.definitions import build_definitions
from zfish_assets.backends.hudi_reader import read_hudi_snapshot
from zfish_assets.tools.runs import join_range, land_and_crawl, materialize_training
from zfish_assets_tests.support.scenario import scenario_instance

D1, D2, D3, LABELS = "2025-05-01", "2025-05-02", "2025-05-03", "2025-05-05"
BASE = {"fish_id": "zfish_A", "timestamp": "2025-05-01T09:00:00Z", "age_days": 12, "treatment": "drug_a",
        "length_mm": 5.25, "sex": "F"}


def obs(image: str, fish: str = "zfish_A", **genes) -> dict:
    return {**BASE, "fish_id": fish, "image_id": image,
            "genetic_markers": {"gene_a": 0.5, "gene_b": -1.25, "gene_c": 2.0, **genes}}


DELIVERY = {
    D1: [obs("img-1a"), obs("img-1b", "zfish_B")],
    D2: [obs("img-2a", gene_d=0.75), obs("img-2b", "zfish_B", gene_d=-3), obs("img-2c", gene_d="high"),
         obs("img-2d", **{"Gene-E": 1.0})],
    D3: [obs("img-3a"), obs("img-3b", "zfish_B")],
}
LABEL_LINES = [{"fish_id": "zfish_A", "condition_developed": True}, {"fish_id": "zfish_B", "condition_developed": False}]


def write_lab(root: Path) -> Path:
    for day, rows in DELIVERY.items():
        folder = root / "observations" / f"day={day}"
        folder.mkdir(parents=True)
        for r in rows:
            (folder / f"{r['image_id']}.json").write_text(json.dumps(r) + "\n")
    (root / "outcomes" / f"day={LABELS}").mkdir(parents=True)
    (root / "outcomes" / f"day={LABELS}" / "labels.json").write_text("".join(json.dumps(r) + "\n" for r in LABEL_LINES))
    return root


def expected_gene_d() -> dict[str, float | None]:
    """image_id -> gene_d of every row the table must hold (the text one is quarantined)."""
    out = {}
    for rows in DELIVERY.values():
        for r in rows:
            value = r["genetic_markers"].get("gene_d")
            if not isinstance(value, str):
                out[r["image_id"]] = None if value is None else float(value)
    return out


@pytest.fixture(scope="module")
def evolved(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("schema-evolution")
    with scenario_instance(root) as (mp, instance):
        defs = build_definitions()
        lab = write_lab(root / "lab")
        for day in (D1, LABELS):
            assert zfish(["upload", str(lab), "--day", day]) == 0
        assert all(r.success for r in land_and_crawl(defs, instance, [D1, LABELS], assets=["observations", "outcomes"]))
        assert join_range(defs, instance, D1, LABELS).success
        table = Path(root / "zfish" / "lake" / "use-cases/fish-demo/processed/joined_fish_data")
        day_one_files = sorted(p.name for p in (table / f"day={D1}").glob("*.parquet"))
        for day in (D2, D3):
            assert zfish(["upload", str(lab), "--day", day]) == 0
        crawls = land_and_crawl(defs, instance, [D2, D3], assets=["observations"])
        joined = join_range(defs, instance, D2, LABELS)
        assert all(r.success for r in crawls) and joined.success
        yield {"defs": defs, "instance": instance, "crawls": crawls, "joined": joined, "table": table,
               "day_one_files": day_one_files}


def hudi(evolved) -> dict[str, dict]:
    uri = evolved["defs"].resources["hudi_io_manager"].table_uri("joined_fish_data")
    return {r["image_id"]: r for r in read_hudi_snapshot(uri, {}).to_pylist()}


def test_a_new_gene_is_a_column_with_values_from_its_day_and_nulls_before_and_after(evolved):
    rows = hudi(evolved)
    assert {i: r["gene_d"] for i, r in rows.items()} == expected_gene_d()
    assert "Gene-E" not in next(iter(rows.values())) and "gene_e" not in next(iter(rows.values()))
    columns = dict(evolved["defs"].resources["catalog"].get_table("observations").columns)
    assert columns["genetic_markers"] == "struct<gene_a:double,gene_b:double,gene_c:double,gene_d:double>"


def test_older_partitions_are_not_rewritten(evolved):
    assert sorted(p.name for p in (evolved["table"] / f"day={D1}").glob("*.parquet")) == evolved["day_one_files"]


def test_duckdb_sees_the_new_column_in_the_raw_and_the_joined_table(evolved):
    query = evolved["defs"].resources["query"]
    raw = {r["image_id"]: r["gene_d"] for r in query.query(
        'SELECT image_id, genetic_markers.gene_d AS gene_d FROM "zebra_fish_demo"."observations"',
        {"observations": None}).to_pylist()}
    joined = {r["image_id"]: r["gene_d"] for r in query.query(
        'SELECT image_id, gene_d FROM "zebra_fish_demo"."joined_fish_data"', {"joined_fish_data": None}).to_pylist()}
    assert raw == joined == expected_gene_d()


def test_the_crawl_names_what_it_added_refused_and_quarantined(evolved):
    instance = evolved["instance"]
    by_day = {r.partition_key: r.asset_materialization.metadata
              for r in instance.fetch_materializations(AssetKey("observations"), limit=10).records}
    assert by_day[D2]["schema_added"].value == {"genetic_markers": ["gene_d"]}
    assert list(by_day[D2]["schema_refused"].value) == ["genetic_markers.Gene-E"]
    assert by_day[D2]["quarantine_reasons"].value == {"wrong_type": 1}
    assert by_day[D3]["schema_added"].value == {}


def test_the_schema_change_check_reports_the_new_column(evolved):
    d2_crawl, d3_crawl = evolved["crawls"]
    for checks, column in ((d2_crawl.checks, "genetic_markers.gene_d"), (evolved["joined"].checks, "gene_d")):
        (change,) = [c for c in checks if c.name == "column_schema_change"]
        assert not change.passed and change.description == f"added {column} (double)", change
    assert [c.passed for c in d3_crawl.checks if c.name == "column_schema_change"] == [True]
    assert all(c.passed for c in evolved["joined"].checks if c.name != "column_schema_change"), evolved["joined"].checks


def test_the_training_set_carries_the_new_gene(evolved):
    run = materialize_training(evolved["defs"], evolved["instance"])
    assert run.success
    (record,) = evolved["instance"].fetch_materializations(AssetKey("training_set"), limit=1).records
    export = Path(record.asset_materialization.metadata["export_path"].value.removeprefix("file://"))
    manifest = json.loads((export / "manifest.json").read_text())
    assert "gene_d" in manifest["feature_columns"]
    assert sum(s["rows"] for s in manifest["splits"].values()) == len(expected_gene_d())
