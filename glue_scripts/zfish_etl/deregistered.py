"""Days the table's last commit read as registered that the catalog no longer registers, though their folders
in the lake still hold data files: a partition deleted behind the crawl's back (by hand in the Glue console,
a catalog file edited or restored from a backup).

Joined as the catalog stands, the evening would delete such an observation day's rows, or take such an
outcome day's labels away from their fish, with the run succeeding and its checks passing (they read the
same catalog), while the lab retracted nothing: a retraction empties the day's folder, and its crawl drops
the partition. A day landed and not crawled yet is no such day: the last commit never read it. So the job
refuses, naming the days and the fix, before it reads anything else.
"""

from __future__ import annotations

from collections.abc import Iterable

from glue_scripts.zfish_etl.catalog import CatalogTable
from glue_scripts.zfish_etl.files import join, list_folders
from glue_scripts.zfish_etl.judging import is_data_file
from glue_scripts.zfish_etl.landing import readable_folders

SHOWN = 10


class Deregistered(LookupError):
    """Days read by the last commit are registered no more, though the lake still holds their files."""


def deregistered_days(table: CatalogTable, seen: Iterable[str]) -> list[str]:
    """The days of `seen` (registered when the last commit read them) that `table` no longer registers
    and whose folder in the lake (its readable version, while a landing replaces it) holds a data file."""
    gone = sorted(set(seen) - set(table.partitions))
    if not gone:
        return []
    folders = readable_folders([join(table.location.rstrip("/"), f"day={day}") for day in gone])
    readable = [(day, folder) for day, folder in zip(gone, folders) if folder is not None]
    listed = list_folders([folder for _, folder in readable])
    return [day for (day, _), names in zip(readable, listed) if any(is_data_file(n) for n in names)]


def refuse_deregistered(table: CatalogTable | None, seen: Iterable[str], what: str) -> None:
    """Raise `Deregistered` naming the days of `seen` that `table` lost (`deregistered_days`) and the fix;
    `what` names what the evening would drop of them ("rows", "labels")."""
    if table is None:
        return  # the whole table is gone from the catalog: `read_sources` refuses that with its own message
    days = deregistered_days(table, seen)
    if not days:
        return
    shown = ", ".join(days[:SHOWN]) + (f" and {len(days) - SHOWN} more" if len(days) > SHOWN else "")
    raise Deregistered(
        f"{table.database}.{table.name}: day(s) {shown} were registered when the table's last commit read them, "
        f"and their folders in the lake still hold data files, but the catalog registers them no more (a partition "
        f"deleted outside zfish?). Joined now, the evening would drop their {what} though nothing was retracted. "
        f"Crawl those days again (`dagster asset materialize --select {table.name} --partition DAY`, or let the "
        "lake sensor do it); to retract a day, land it empty (`zfish upload` of an empty day folder)")
