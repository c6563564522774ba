"""The joined table against the raw files: what it must hold, read from the raw files independently of the
job, and what it holds, as hudi-rs reads it."""

from __future__ import annotations

import json
from pathlib import Path

from zfish_assets.backends.hudi_reader import read_hudi_snapshot
from zfish_assets.dagster_names import META_COLUMNS


def raw_expected(lake: Path) -> dict[str, tuple[str, str, bool, str]]:
    """image_id -> (day, fish, label, label day): each image of a labeled fish, with its latest label
    (the latest label day wins, a positive label within a day)."""
    labels: dict[str, tuple[str, bool]] = {}
    for path in sorted(lake.glob("outcomes/day=*/*.json")):
        day = path.parent.name.removeprefix("day=")
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                labels[record["fish_id"]] = max(labels.get(record["fish_id"], ("", False)),
                                                (day, record["condition_developed"]))
    expected = {}
    for path in lake.glob("observations/day=*/*.json"):
        record = json.loads(path.read_text())
        if record["fish_id"] in labels:
            label_day, label = labels[record["fish_id"]]
            expected[record["image_id"]] = (path.parent.name.removeprefix("day="), record["fish_id"], label, label_day)
    return expected


def table_rows(uri: str) -> dict[str, dict]:
    """image_id -> every non-meta column, as hudi-rs reads the snapshot (a duplicate key fails)."""
    rows = read_hudi_snapshot(uri, {}).to_pylist()
    found = {r["image_id"]: {k: v for k, v in r.items() if k not in META_COLUMNS} for r in rows}
    assert len(found) == len(rows), "duplicate image_id"
    return found


def as_expected(rows: dict[str, dict]) -> dict[str, tuple[str, str, bool, str]]:
    return {k: (r["day"], r["fish_id"], r["condition_developed"], r["outcome_day"]) for k, r in rows.items()}
