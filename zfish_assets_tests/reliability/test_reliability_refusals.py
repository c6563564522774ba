"""Reliability, hostile and odd input refused where it enters: partition keys and names that would reach SQL or
paths (through the assets, the CLI, the crawl, the checks and the settings), and the contract's verdict on
each field's edge cases, line by line.
"""

from __future__ import annotations

import json
import re

import pytest
from dagster import AssetKey, AssetSelection, DagsterUnknownPartitionError, materialize

from zfish_assets.definitions import build_definitions
from zfish_assets.tools.cli import main as zfish
from zfish_assets.tools.runs import land_and_crawl

VALID = {"fish_id": "zfish_A", "image_id": "img", "timestamp": "2025-05-01T09:00:00Z", "age_days": 12,
         "treatment": "drug_a", "genetic_markers": {"gene_a": 0.5, "gene_b": -1.25, "gene_c": 2}, "length_mm": 5.25,
         "sex": "F"}
"""An observation line the contract accepts, changed one field at a time below."""


# ---- partition keys and names that reach SQL or paths are refused, through the real entry points ----

HOSTILE_DAYS = ("2025-05-10' OR '1'='1", "../../etc", "2025-05-10/../../x")


@pytest.mark.parametrize("day", HOSTILE_DAYS)
def test_a_hostile_partition_key_is_refused_by_the_assets(defs, instance, data_dir, day):
    with pytest.raises(DagsterUnknownPartitionError, match=re.escape(f"Could not find a partition with key `{day}`")):
        land_and_crawl(defs, instance, [day])
    assert not [p for p in data_dir.rglob("*") if p.is_file() and "dagster" not in p.parts]


@pytest.mark.parametrize("day", HOSTILE_DAYS)
def test_a_hostile_day_is_refused_by_the_cli(tmp_path, capsys, day):
    with pytest.raises(SystemExit) as exit_:
        zfish(["upload", str(tmp_path), "--day", day])
    assert exit_.value.code == 2
    assert f"day={day!r} is not a day in YYYY-MM-DD form" in capsys.readouterr().err


def test_a_hostile_day_or_table_is_refused_by_the_crawl_and_the_checks(defs, instance):
    from zfish_assets.domain.crawl import crawl_day

    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    with pytest.raises(ValueError, match=r"day='\.\./\.\./etc' is not a day"):
        crawl_day(lake, catalog, "observations", "../../etc")
    with pytest.raises(ValueError, match=r"unknown raw table '\.\./secrets'"):
        crawl_day(lake, catalog, "../secrets", "2025-05-10")
    result = materialize([*defs.assets, *defs.asset_checks], selection=AssetSelection.checks_for_assets(
        AssetKey("observations")), resources=defs.resources, instance=instance, raise_on_error=False,
        tags={"dagster/partition": "2025-05-10' OR '1'='1"})
    failures = [e.step_failure_data.error for e in result.get_step_failure_events()]
    causes = [(error.cause or error).message for error in failures]
    assert failures and all("day=\"2025-05-10' OR '1'='1\" is not a day" in m for m in causes), causes


@pytest.mark.parametrize("variable, value", [("ZFISH_DATABASE", "zfish; DROP TABLE x"),
                                             ("ZFISH_DATABASE", "../../etc"),
                                             ("ZFISH_LAKE_PREFIX", "../../etc")])
def test_a_hostile_database_or_prefix_is_refused_when_the_definitions_load(data_dir, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(Exception, match=f"{variable}={value!r} is not"):
        build_definitions().resources["catalog" if variable == "ZFISH_DATABASE" else "lake"].process_config_and_initialize()


# ---- the contract on its own: the edges the delivery of test_reliability_input does not plant ----

@pytest.mark.parametrize("changes, reason", [
    ({"age_days": 12.5}, "wrong_type"),  # a fraction where an integer belongs
    ({"age_days": True}, "wrong_type"),  # JSON true is not a number
    ({"length_mm": 5}, None),  # an integer where a double belongs is fine
    ({"fish_id": 7}, "wrong_type"),  # a number where a string belongs
    ({"genetic_markers": [0.5, -1.25, 2]}, "wrong_type"),
    ({"genetic_markers": {"gene_a": 0.5, "gene_b": -1.25}}, "missing_field"),
    ({"sex": None}, "missing_field"),
    ({"timestamp": "2025-05-01T09:00:00"}, "bad_timestamp"),
    ({"timestamp": "yesterday"}, "bad_timestamp"),
    ({"age_days": 2**63}, "out_of_range"),  # beyond bigint
])
def test_the_contract_judges_each_field(changes, reason):
    from glue_scripts.zfish_etl.contract import OBSERVATIONS
    from glue_scripts.zfish_etl.judging import check_line

    row = {**VALID, **changes}
    assert check_line(OBSERVATIONS, json.dumps(row)).reason == reason


@pytest.mark.parametrize("text", ['[1, 2]', '"zfish"', '{"fish_id": NaN}', '{"a": 1} trailing'])
def test_json_that_is_not_one_object_is_malformed(text):
    from glue_scripts.zfish_etl.contract import OUTCOMES
    from glue_scripts.zfish_etl.judging import check_line

    assert check_line(OUTCOMES, text).reason == "malformed_json"
