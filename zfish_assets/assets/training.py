"""ML: training_set, a model-ready export of joined_fish_data pinned to one Hudi commit.

Labels keep arriving and rows keep being upserted, so a training set is only reproducible if it
names the commit it was cut from: the asset reads the joined table through the IO manager as of
a commit (the latest, or `as_of_commit`), splits it by fish, and writes one Parquet file per split
and a manifest under `ml/training_set/commit=<instant>/config=<digest>/` in the lake. The same
commit and configuration give the same bytes, so an export can be re-made exactly later (for as
long as Hudi keeps the commit's files: its cleaner removes old file versions).

The cut, the manifest and the metadata are plain functions of Arrow tables; the asset reads,
calls them and writes. Its checks, judging the latest export, are beside it in `training_checks.py`.
"""

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)
from pydantic import Field, model_validator

from glue_scripts.zfish_etl import layout
from zfish_assets.bounded import bounded_json
from zfish_assets.partitions import validate_day
from zfish_assets.backends.hudi_reader import HudiSnapshot
from zfish_assets.resources.lake import Lake
from zfish_assets.dagster_names import COLUMN_SCHEMA, JOINED, ROW_COUNT, TRAINING
from zfish_assets.lazy import lazy_module

pa = lazy_module("pyarrow")
pc = lazy_module("pyarrow.compute")
pq = lazy_module("pyarrow.parquet")

SPLITS = ("train", "validation", "test")
LABEL = "condition_developed"
ID_COLUMNS = ("image_id", "fish_id")
NOT_FEATURES = (*ID_COLUMNS, LABEL, "timestamp", "outcome_day", "day")
MANIFEST = "manifest.json"
PREVIEW_ROWS = 5


class TrainingSetConfig(Config):
    """Which rows (days, commit) and how to split them; the defaults cut from the latest commit."""

    first_day: str | None = Field(default=None, description="First image day included (YYYY-MM-DD); none: the first.")
    last_day: str | None = Field(default=None, description="Last image day included (YYYY-MM-DD); none: the last.")
    as_of_commit: str | None = Field(
        default=None, description="Hudi commit instant (17 digits) to cut the set from; none: the latest commit."
    )
    train_fraction: float = Field(default=0.7, description="Share of fish in the train split.")
    validation_fraction: float = Field(default=0.15, description="Share of fish in the validation split.")
    test_fraction: float = Field(default=0.15, description="Share of fish in the test split.")
    seed: int = Field(default=0, description="Seed of the fish-to-split hash; another seed deals the fish anew.")

    @model_validator(mode="after")
    def _valid(self) -> "TrainingSetConfig":
        for day in (self.first_day, self.last_day):
            if day is not None:
                validate_day(day)
        if self.first_day and self.last_day and self.last_day < self.first_day:
            raise ValueError(f"last_day {self.last_day} is before first_day {self.first_day}")
        if self.as_of_commit is not None and not (len(self.as_of_commit) == 17 and self.as_of_commit.isdigit()):
            raise ValueError(f"as_of_commit={self.as_of_commit!r} is not a 17-digit Hudi instant")
        if any(not 0 <= f <= 1 for f in self.fractions) or abs(sum(self.fractions) - 1) > 1e-9:
            raise ValueError(f"split fractions {self.fractions} must each be in [0, 1] and sum to 1")
        return self

    @property
    def fractions(self) -> tuple[float, float, float]:
        return (self.train_fraction, self.validation_fraction, self.test_fraction)

    def digest(self) -> str:
        """A short name for everything but the commit that shapes the export: two configurations
        cut from one commit get two folders instead of overwriting each other."""
        shape = {"first_day": self.first_day, "last_day": self.last_day, "fractions": self.fractions, "seed": self.seed}
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]


def fish_position(seed: int, fish_id: str) -> float:
    """Where a fish falls in [0, 1): a hash of (seed, fish_id) alone.

    sha256 rather than `hash()` (salted per process); depending on nothing but the fish keeps
    every fish in its split when other fish are added or removed.
    """
    digest = hashlib.sha256(f"{seed}\x00{fish_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(seed: int, fish_id: str, fractions: Sequence[float]) -> str:
    """The split of a fish: the first whose cumulative fraction exceeds its position."""
    position = fish_position(seed, fish_id)
    for name, bound in zip(SPLITS, accumulate(fractions)):
        if position < bound:
            return name
    # Rounding can leave the cumulative sum just under 1: the last split that takes fish.
    return [name for name, fraction in zip(SPLITS, fractions) if fraction > 0][-1]


def export_key(instant: str, digest: str, name: str = "") -> str:
    """Lake key of an export (or of one of its files), versioned by commit and configuration."""
    folder = layout.export_folder(instant, digest)
    return f"{folder}/{name}" if name else folder


def parquet_bytes(table: "pa.Table") -> bytes:
    """`table` as Parquet, written the same way every time: same rows and schema, same bytes."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def read_parquet(data: bytes) -> "pa.Table":
    return pq.read_table(pa.BufferReader(data))


def label_balance(table: "pa.Table") -> dict[str, int | float]:
    positive = pc.sum(table[LABEL]).as_py() or 0
    return {"positive": positive, "negative": table.num_rows - positive,
            "positive_rate": round(positive / table.num_rows, 4) if table.num_rows else 0.0}


def schema_fields(schema: "pa.Schema") -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in schema]


def labeled_rows(rows: "pa.Table", first_day: str | None, last_day: str | None) -> "pa.Table":
    """The labeled rows of the chosen days, without Hudi's meta columns, sorted by image_id."""
    keep = pc.is_valid(rows[LABEL])
    if first_day:
        keep = pc.and_(keep, pc.greater_equal(rows["day"], first_day))
    if last_day:
        keep = pc.and_(keep, pc.less_equal(rows["day"], last_day))
    data = rows.filter(keep).drop_columns([c for c in rows.column_names if c.startswith("_hoodie_")])
    return data.sort_by("image_id").replace_schema_metadata(None)


def _markdown(rows: list[dict], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]).replace("|", "\\|") for c in columns) + " |" for r in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class TrainingCut:
    """What a training set holds before it is written: its rows, each fish's split, each split's rows."""

    data: "pa.Table"
    split_of_fish: dict[str, str]
    splits: "dict[str, pa.Table]"  # every split of SPLITS, in order, empty when no fish falls in it


def cut(rows: "pa.Table", config: TrainingSetConfig) -> TrainingCut:
    """The labeled rows of `config`'s days in `rows`, dealt into splits by fish."""
    data = labeled_rows(rows, config.first_day, config.last_day)
    fish = data["fish_id"].to_pylist()
    assigned = {f: split_of(config.seed, f, config.fractions) for f in set(fish)}
    split_column = pa.array([assigned[f] for f in fish], pa.string())
    return TrainingCut(data, assigned, {name: data.filter(pc.equal(split_column, name)) for name in SPLITS})


def export_manifest(instant: str, source_uri: str, config: TrainingSetConfig, training: TrainingCut) -> dict:
    """The manifest of an export: where it was cut from, how, and what each split file holds."""
    data = training.data
    return {
        "commit_instant": instant,
        "source_table_uri": source_uri,
        "first_day": config.first_day,
        "last_day": config.last_day,
        "days": sorted(set(data["day"].to_pylist())),
        "split_fractions": dict(zip(SPLITS, config.fractions)),
        "seed": config.seed,
        "splits": {
            name: {"file": f"{name}.parquet", "rows": table.num_rows,
                   "fish": len(set(table["fish_id"].to_pylist())), "label_balance": label_balance(table)}
            for name, table in training.splits.items()
        },
        "label_column": LABEL,
        "id_columns": list(ID_COLUMNS),
        "feature_columns": [c for c in data.column_names if c not in NOT_FEATURES],
        "schema": schema_fields(data.schema),
    }


def write_export(lake: Lake, digest: str, training: TrainingCut, manifest: dict) -> str:
    """The split files, then the manifest, in the lake; returns the manifest's key.

    The manifest is written last: a manifest in the lake means the files it names are there.
    """
    instant = manifest["commit_instant"]
    for name, table in training.splits.items():
        lake.put_bytes(export_key(instant, digest, f"{name}.parquet"), parquet_bytes(table))
    manifest_key = export_key(instant, digest, MANIFEST)
    lake.put_bytes(manifest_key, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest_key


def export_metadata(export_uri: str, manifest_key: str, training: TrainingCut, manifest: dict) -> dict:
    """The materialization's metadata: counts per split, label balance, where the export is, a preview."""
    data, splits = training.data, training.splits
    preview_columns = ["split", *ID_COLUMNS, "day", *manifest["feature_columns"], LABEL]
    preview = [{"split": training.split_of_fish[r["fish_id"]], **r} for r in data.slice(0, PREVIEW_ROWS).to_pylist()]
    return {
        ROW_COUNT: data.num_rows,
        **{f"rows_{name}": table.num_rows for name, table in splits.items()},
        "label_balance": bounded_json({name: split["label_balance"] for name, split in manifest["splits"].items()}),
        "commit_instant": manifest["commit_instant"],
        "export_path": MetadataValue.path(export_uri),
        "manifest_key": manifest_key,
        "fish": len(training.split_of_fish),
        COLUMN_SCHEMA: TableSchema(columns=[TableColumn(f["name"], f["type"]) for f in manifest["schema"]]),
        "preview": MetadataValue.md(_markdown(preview, preview_columns)),
    }


def training_asset() -> AssetsDefinition:
    """training_set: every day of joined_fish_data (the IO manager maps all its partitions)."""

    @asset(
        name=TRAINING,
        ins={"joined": AssetIn(JOINED)},
        group_name="ml",
        kinds={"python", "parquet"},
        owners=["team:data-platform"],
        description=(
            "The labeled rows of joined_fish_data as of one Hudi commit, split by fish into train / "
            "validation / test, exported as Parquet with a manifest under a path naming the commit."
        ),
    )
    def _training(
        context: AssetExecutionContext, config: TrainingSetConfig, lake: Lake, joined: HudiSnapshot
    ) -> MaterializeResult:
        instant, rows = joined.read(config.as_of_commit)
        training = cut(rows, config)
        manifest = export_manifest(instant, joined.uri, config, training)
        digest = config.digest()
        manifest_key = write_export(lake, digest, training, manifest)
        export_uri = lake.uri(export_key(instant, digest))
        context.log.info(
            f"training set from commit {instant}: {training.data.num_rows} rows of {len(training.split_of_fish)} fish "
            f"({', '.join(f'{n} {t.num_rows}' for n, t in training.splits.items())}) at {export_uri}"
        )
        return MaterializeResult(metadata=export_metadata(export_uri, manifest_key, training, manifest))

    return _training
