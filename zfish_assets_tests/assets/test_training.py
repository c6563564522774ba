"""training_set: the walkthrough's 60 → 75, a byte-identical re-export as of a commit, fish-level splits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetKey

from zfish_assets.assets.training import MANIFEST, SPLITS, TrainingSetConfig, parquet_bytes, read_parquet, split_of
from zfish_assets.tools.runs import join_range, land_and_crawl, materialize_training, run_checks

START = "2025-04-05"
FILES = (MANIFEST, *(f"{s}.parquet" for s in SPLITS))


def latest_export(defs, instance) -> tuple[dict, dict[str, bytes]]:
    """The latest materialization's metadata, and the bytes of every file of its export."""
    metadata = instance.fetch_materializations(AssetKey("training_set"), limit=1).records[0].asset_materialization.metadata
    folder = metadata["manifest_key"].value.rsplit("/", 1)[0]
    return metadata, {name: defs.resources["lake"].get_bytes(f"{folder}/{name}") for name in FILES}


def fish_splits(files: dict[str, bytes]) -> dict[str, str]:
    """fish_id -> split, failing when a fish is in two splits."""
    found: dict[str, set[str]] = {}
    for split in SPLITS:
        for fish in read_parquet(files[f"{split}.parquet"])["fish_id"].to_pylist():
            found.setdefault(fish, set()).add(split)
    assert all(len(s) == 1 for s in found.values()), {f: s for f, s in found.items() if len(s) > 1}
    return {fish: s.pop() for fish, s in found.items()}


def passed(run) -> bool:
    return run.success and {c.name for c in run.checks} == {
        "fish_in_one_split", "rows_match_snapshot", "manifest_matches_files"} and all(c.passed for c in run.checks)


def test_training_sets_follow_commits_and_reproduce_byte_for_byte(walkthrough, defs, instance):
    assert join_range(defs, instance, START, "2025-05-10").success
    assert passed(first := materialize_training(defs, instance)), first.checks
    metadata, files = latest_export(defs, instance)
    manifest = json.loads(files[MANIFEST])
    commit = manifest["commit_instant"]
    assert metadata["dagster/row_count"].value == 60 == sum(s["rows"] for s in manifest["splits"].values())
    assert metadata["commit_instant"].value == commit and f"/commit={commit}/" in metadata["export_path"].value
    assert [metadata[f"rows_{s}"].value for s in SPLITS] == [manifest["splits"][s]["rows"] for s in SPLITS]
    assert "| split | image_id |" in metadata["preview"].value
    assert manifest["feature_columns"] == ["age_days", "treatment", "length_mm", "sex", "gene_a", "gene_b", "gene_c"]
    assert not [f for f in manifest["schema"] if f["name"].startswith("_hoodie_")]
    first_splits = fish_splits(files)
    assert len(first_splits) == 20

    land_and_crawl(defs, instance, ["2025-05-11"])
    assert join_range(defs, instance, "2025-04-06", "2025-05-11").success
    assert passed(second := materialize_training(defs, instance)), second.checks
    later, later_files = latest_export(defs, instance)
    assert later["dagster/row_count"].value == 75 and later["commit_instant"].value > commit
    later_splits = fish_splits(later_files)
    # Five new fish; the twenty of the first set keep their split.
    assert len(later_splits) == 25 and {f: later_splits[f] for f in first_splits} == first_splits

    # Re-made as of the first commit (its folder deleted first): the same bytes, file for file.
    shutil.rmtree(Path(metadata["export_path"].value.removeprefix("file://")))
    assert passed(again := materialize_training(defs, instance, {"as_of_commit": commit})), again.checks
    reproduced, reproduced_files = latest_export(defs, instance)
    assert reproduced["export_path"].value == metadata["export_path"].value
    assert reproduced_files == files

    # Days restrict the set, in a folder of their own; a time that is no commit is refused.
    assert passed(materialize_training(defs, instance, {"as_of_commit": commit, "first_day": "2025-04-06",
                                                        "last_day": "2025-04-07"}))
    days, _ = latest_export(defs, instance)
    assert days["dagster/row_count"].value == 30 and days["export_path"].value != metadata["export_path"].value
    assert not materialize_training(defs, instance, {"as_of_commit": "20250101000000000"}, raise_on_error=False).success

    # The checks see a tampered export: a train image copied into the test file.
    folder = days["manifest_key"].value.rsplit("/", 1)[0]
    lake = defs.resources["lake"]
    train, test = (read_parquet(lake.get_bytes(f"{folder}/{s}.parquet")) for s in ("train", "test"))
    lake.put_bytes(f"{folder}/test.parquet", parquet_bytes(pa.concat_tables([test, train.slice(0, 1)])))
    assert not any(c.passed for c in run_checks(defs, instance, ["training_set"]).checks)


def test_split_is_by_fish_deterministic_and_follows_the_fractions():
    fish = [f"zfish_{i:05d}" for i in range(3000)]
    fractions = (0.7, 0.15, 0.15)
    splits = [split_of(0, f, fractions) for f in fish]
    assert splits == [split_of(0, f, fractions) for f in fish]
    for name, fraction in zip(SPLITS, fractions):
        assert abs(splits.count(name) / len(fish) - fraction) < 0.03
    assert [split_of(1, f, fractions) for f in fish] != splits
    assert {split_of(0, f, (0.5, 0.5, 0.0)) for f in fish} == {"train", "validation"}


@pytest.mark.parametrize("bad", [
    {"train_fraction": 0.5},
    {"test_fraction": -0.1, "train_fraction": 0.95},
    {"as_of_commit": "2025-05-10"},
    {"first_day": "2025-05-10", "last_day": "2025-05-01"},
    {"first_day": "2025-5-1"},
])
def test_config_refuses_what_cannot_be_cut(bad):
    with pytest.raises(ValueError):
        TrainingSetConfig(**bad)
