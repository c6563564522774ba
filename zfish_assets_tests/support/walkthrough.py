"""The walkthrough's joined table as the tests read it, and the rows it must hold, computed from the raw files."""

from __future__ import annotations

import json
from datetime import date, timedelta

from zfish_assets.backends.hudi_reader import read_hudi_snapshot


START = "2025-04-05"


def table_uri(defs) -> str:
    return defs.resources["hudi_io_manager"].table_uri("joined_fish_data")


def snapshot(defs, as_of=None):
    return read_hudi_snapshot(table_uri(defs), {}, as_of=as_of)


def rows(defs) -> dict[str, tuple]:
    """image_id -> (label, genes) as hudi-rs reads the table, failing on a duplicate key."""
    table = snapshot(defs).to_pylist()
    found = {r["image_id"]: (r["condition_developed"], r["gene_a"], r["gene_b"], r["gene_c"], r["day"]) for r in table}
    assert len(found) == len(table), "duplicate image_id"
    return found


def expected_rows(data_dir) -> dict[str, tuple]:
    """The labeled rows computed from the raw files alone: each image with its fish's latest label."""
    lake = data_dir / "lake" / "use-cases/fish-demo"
    labels: dict[str, tuple[str, bool]] = {}
    for f in sorted(lake.glob("outcomes/day=*/*.json")):
        day = f.parent.name.removeprefix("day=")
        for line in f.read_text().splitlines():
            record = json.loads(line)
            labels[record["fish_id"]] = max(labels.get(record["fish_id"], ("", False)), (day, record["condition_developed"]))
    out = {}
    for f in lake.glob("observations/day=*/*.json"):
        o = json.loads(f.read_text())
        if o["fish_id"] in labels:
            g = o["genetic_markers"]
            out[o["image_id"]] = (labels[o["fish_id"]][1], g["gene_a"], g["gene_b"], g["gene_c"], f.parent.name[4:])
    return out


def evening_window(day: str, horizon: int = 36) -> tuple[str, str]:
    return max(START, (date.fromisoformat(day) - timedelta(days=horizon - 1)).isoformat()), day
