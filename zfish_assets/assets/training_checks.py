"""The checks of training_set, over its latest export: read back from the lake, judged against its manifest.

Each check is a rule over the export (its manifest and split files); one wrapper finds the latest
export and passes before the first (there is nothing to judge yet). They are blocking: a set that
fails them is not one to train on.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetChecksDefinition, AssetKey, DagsterInstance, asset_check

from zfish_assets.assets.training import LABEL, SPLITS, label_balance, read_parquet, schema_fields
from zfish_assets.backends.hudi_reader import read_hudi_snapshot
from zfish_assets.dagster_names import TRAINING
from zfish_assets.resources.lake import Lake
from zfish_assets.lazy import lazy_module

pa = lazy_module("pyarrow")
pc = lazy_module("pyarrow.compute")


@dataclass(frozen=True)
class Export:
    """One export of training_set as the lake holds it: its manifest and its split files."""

    manifest_key: str
    manifest: dict
    files: "dict[str, pa.Table]"  # split name -> the rows of its Parquet file, as the manifest lists them


def latest_export(instance: DagsterInstance, lake: Lake) -> Export | None:
    """The export of the latest materialization (None before the first)."""
    records = instance.fetch_materializations(AssetKey(TRAINING), limit=1).records
    if not records:
        return None
    key = str(records[0].asset_materialization.metadata["manifest_key"].value)
    manifest = json.loads(lake.get_bytes(key))
    folder = key.rsplit("/", 1)[0]
    files = {name: read_parquet(lake.get_bytes(f"{folder}/{split['file']}")) for name, split in manifest["splits"].items()}
    return Export(key, manifest, files)


Rule = Callable[[Export, Lake], AssetCheckResult]


def training_check(name: str, description: str) -> Callable[[Rule], AssetChecksDefinition]:
    """The blocking check `name` of training_set: `rule` judges the latest export."""

    def wrap(rule: Rule) -> AssetChecksDefinition:
        @asset_check(asset=TRAINING, name=name, blocking=True, description=description)
        def _check(context: AssetCheckExecutionContext, lake: Lake) -> AssetCheckResult:
            export = latest_export(context.instance, lake)
            if export is None:
                return AssetCheckResult(passed=True, description="no training set yet")
            return rule(export, lake)

        return _check

    return wrap


@training_check("fish_in_one_split", "No fish has images in two splits: the split files share no fish_id.")
def fish_in_one_split(export: Export, lake: Lake) -> AssetCheckResult:
    fish = {name: set(t["fish_id"].to_pylist()) for name, t in export.files.items()}
    shared = sorted({f for a in fish for b in fish if a < b for f in fish[a] & fish[b]})
    return AssetCheckResult(
        passed=not shared,
        description=f"fish in two splits: {', '.join(shared[:20])}" if shared else
        f"{sum(len(f) for f in fish.values())} fish, each in one split",
        metadata={"fish_in_two_splits": len(shared), **{f"fish_{name}": len(f) for name, f in fish.items()}},
    )


@training_check("rows_match_snapshot", "The export holds exactly the labeled rows of the chosen days at the recorded "
                                       "commit (read again through hudi-rs).")
def rows_match_snapshot(export: Export, lake: Lake) -> AssetCheckResult:
    manifest = export.manifest
    # The rule restated from the manifest alone: labeled rows of the chosen days at its commit.
    at_commit = read_hudi_snapshot(manifest["source_table_uri"], lake.storage_options(), as_of=manifest["commit_instant"])
    keep = pc.is_valid(at_commit[LABEL])
    if manifest["first_day"]:
        keep = pc.and_(keep, pc.greater_equal(at_commit["day"], manifest["first_day"]))
    if manifest["last_day"]:
        keep = pc.and_(keep, pc.less_equal(at_commit["day"], manifest["last_day"]))
    expected = set(at_commit.filter(keep)["image_id"].to_pylist())
    exported = [i for t in export.files.values() for i in t["image_id"].to_pylist()]
    missing, extra = expected - set(exported), set(exported) - expected
    duplicated = len(exported) - len(set(exported))
    differences = f": {len(missing)} missing, {len(extra)} extra, {duplicated} duplicated"
    return AssetCheckResult(
        passed=not (missing or extra or duplicated),
        description=f"{len(exported)} rows exported, {len(expected)} labeled rows at commit {manifest['commit_instant']}"
        + (differences if missing or extra or duplicated else ""),
        metadata={"expected_rows": len(expected), "exported_rows": len(exported), "missing": len(missing),
                  "extra": len(extra), "duplicated": duplicated},
    )


@training_check("manifest_matches_files", "The manifest's row counts, label balance and schema are those of the "
                                          "Parquet files.")
def manifest_matches_files(export: Export, lake: Lake) -> AssetCheckResult:
    manifest, problems = export.manifest, []
    for name, table in export.files.items():
        recorded = manifest["splits"][name]
        if table.num_rows != recorded["rows"]:
            problems.append(f"{name}: {table.num_rows} rows in the file, {recorded['rows']} in the manifest")
        if (balance := label_balance(table)) != recorded["label_balance"]:
            problems.append(f"{name}: label balance {balance} in the file, {recorded['label_balance']} in the manifest")
        if schema_fields(table.schema) != manifest["schema"]:
            problems.append(f"{name}: schema differs from the manifest's")
    missing = sorted(set(SPLITS) - set(manifest["splits"]))
    problems += [f"splits missing from the manifest: {', '.join(missing)}"] * bool(missing)
    return AssetCheckResult(passed=not problems, description="; ".join(problems) or "manifest matches the split files",
                            metadata={"problems": len(problems)})


training_checks: list[AssetChecksDefinition] = [fish_in_one_split, rows_match_snapshot, manifest_matches_files]
