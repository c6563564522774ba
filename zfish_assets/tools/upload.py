"""What `zfish upload DIR --day D` lands, decided before anything lands.

The day must have a partition (a day after the clock lands, and every crawl of it then fails with
Dagster's `DagsterUnknownPartitionError`), and every entry of its folders a fate
(`domain/delivery.py`): the files to land, or a refusal naming each entry that is neither a file
nor a folder. Either refusal is a usage error: nothing is landed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zfish_assets.domain.delivery import delivered_files
from zfish_assets.dagster_names import RAW_TABLES
from zfish_assets import settings
from zfish_assets.partitions import outside_partitions


@dataclass(frozen=True)
class Upload:
    """One table's day to land: its source folder and the files under it (through links), sorted."""

    table: str
    source: Path
    files: list[Path]


def plan_upload(folder: Path, day: str) -> list[Upload]:
    """The tables' days to land from `folder`; ValueError naming the reason when the upload must not land."""
    why = outside_partitions(day)
    if why is not None:
        fix = (f"Set {settings.SIM_START.name} to {day} or earlier to keep it" if day < settings.sim_start().isoformat()
               else "Upload it once its evening has come (or set the clock)")
        raise ValueError(f"{why}: no run could crawl it. {fix}")
    sources = {t: folder / t / f"day={day}" for t in RAW_TABLES if (folder / t / f"day={day}").is_dir()}
    if not sources:
        raise ValueError(f"{folder} has no observations/day={day}/ or outcomes/day={day}/")
    return [Upload(table, source, delivered_files(source)) for table, source in sources.items()]
