"""Which observation days hold each fish's images: an index the job keeps beside the table.

A label may arrive any time after its fish's images. To give it to every image of the fish on that
evening, the job must know the days holding them without reading every day of the history. Neither
the catalog nor the crawl says so: a catalog partition records a day's row count and a fingerprint
of its files, the crawl's key files hold image_ids only, and the images of unlabeled fish are not in
the table at all (only labeled rows are kept). So the job keeps its own index, built from the rows
it reads anyway: per observation day, each fish imaged that day and its number of accepted images.

Layout: `<table path>.fish/v1/segment-<time>-<token>.parquet`, columns `day`, `key`, `fish_id`,
`images`. Each entry is filed under its day's `day_key`: the catalog partition's fingerprint of the
day's files with its accepted and quarantined row counts, as the crawl registered them. The job
reads the catalog anyway, so telling a current entry from a stale one costs nothing: an entry
whose key is not the day's current key (the day was re-delivered or re-judged since) is never
used, and the day counts as not indexed until a run reads it again. A day with no accepted row is
indexed by one entry with no fish.

Written by the job itself, as plain files (no Spark job, no table format):
- each run that read a day lacking a current entry (the range's new days; any day the first time)
  writes one segment with the entries of those days. A segment's name is unique, so concurrent
  writers never overwrite one another; it is written whole (`files.write_file`);
- the index depends on the observations only, never on the table: a run that dies before writing
  its segment leaves those days unindexed, and the next run that needs them reads and indexes them
  (so a missing or deleted index is rebuilt, once, by reading the days it lacks);
- when more than `MAX_SEGMENTS` are listed, the run writes one segment of every current entry and
  then deletes the segments it read (a crash in between leaves equal entries twice, read as one),
  so an evening reads at most `MAX_SEGMENTS` + 1 small files, however long the history.

A day registered without the crawl's fingerprint (by a writer other than zfish's crawl) has no key:
it is never indexed, may hold any fish, and is read whenever a late label is placed.
"""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.catalog import CatalogTable
from glue_scripts.zfish_etl.files import delete_files, join, list_sized, read_files, write_file
from glue_scripts.zfish_etl.names import FINGERPRINT, QUARANTINED_ROWS

INDEX_VERSION = "v1"  # a new layout gets a new folder: entries of another version are never read
MAX_SEGMENTS = 16
SCHEMA = pa.schema([("day", pa.string()), ("key", pa.string()), ("fish_id", pa.string()), ("images", pa.int64())])


def index_root(table_path: str) -> str:
    """Where the index of the table at `table_path` lives (the table path's scheme)."""
    return layout.fish_index_root(table_path, INDEX_VERSION)


def day_key(parameters: Mapping[str, str]) -> str | None:
    """A registered day's key: what its entries are valid for (None: the crawl recorded no fingerprint)."""
    fingerprint = parameters.get(FINGERPRINT)
    if not fingerprint:
        return None
    text = f"{fingerprint}\0{parameters.get('recordCount', '')}\0{parameters.get(QUARANTINED_ROWS, '')}"
    return hashlib.sha1(text.encode()).hexdigest()


def day_keys(table: CatalogTable) -> dict[str, str | None]:
    """The key of each registered day of the observations' catalog table."""
    return {day: day_key(table.parameters.get(day, {})) for day in table.partitions}


def entries_of(counts: Mapping[tuple[str, str], int], days: list[str], keys: Mapping[str, str | None]) -> pa.Table:
    """Index entries of `days` from image counts per (day, fish); a day without a fish gets its empty entry."""
    rows = [(day, keys[day], fish, n) for (day, fish), n in sorted(counts.items()) if day in days]
    seen = {day for day, *_ in rows}
    rows += [(day, keys[day], None, 0) for day in days if day not in seen]
    return pa.table(list(map(list, zip(*rows))) if rows else [[] for _ in SCHEMA], schema=SCHEMA)


@dataclass(frozen=True)
class FishIndex:
    """The index as listed and read at the start of a run: its entries and the segments they came from."""

    entries: pa.Table
    segments: tuple[str, ...]

    def current(self, keys: Mapping[str, str | None]) -> pa.Table:
        """The entries whose key is their day's current one, each (day, fish) once."""
        if not self.entries.num_rows:
            return self.entries
        wanted = pa.array([keys.get(d) for d in self.entries["day"].to_pylist()], pa.string())
        valid = self.entries.filter(pc.fill_null(pc.equal(self.entries["key"], wanted), False))
        # Equal entries may be listed twice (a merge that died before deleting what it merged).
        once = valid.group_by(["day", "key", "fish_id"]).aggregate([("images", "max")])
        return once.rename_columns([c.removesuffix("_max") for c in once.column_names]).select(SCHEMA.names)

    def indexed_days(self, keys: Mapping[str, str | None]) -> set[str]:
        """The days with a current entry."""
        return set(self.current(keys)["day"].to_pylist())


def read_index(table_path: str) -> FishIndex:
    """Every segment of the index (none yet: an empty index), read by this process."""
    root = index_root(table_path)
    uris = [join(root, name) for name, _ in list_sized([root])[0] if name.endswith(".parquet")]
    tables = [table for uri, content in read_files(uris, missing_ok=True) if content is not None
              if (table := _segment(uri, content)) is not None]
    entries = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    return FishIndex(entries, tuple(uris))


def _segment(uri: str, content: bytes) -> pa.Table | None:
    """A segment's entries; None, said in a line, for one that cannot be read (cut short by a copy, edited):
    its days count as not indexed, so the runs that need them read and index them again, and the next merge
    deletes it with the segments it read. The index only saves reads: nothing is lost."""
    try:
        return pq.read_table(io.BytesIO(content)).select(SCHEMA.names).cast(SCHEMA)
    except (pa.ArrowException, KeyError, ValueError) as exc:
        print(f"zfish: the fish index segment {uri} cannot be read ({type(exc).__name__}: {exc}); "
              "its days will be read and indexed again")
        return None


def _write_segment(table_path: str, entries: pa.Table) -> str:
    uri = join(index_root(table_path), f"segment-{time.time_ns()}-{uuid.uuid4().hex[:12]}.parquet")
    buffer = io.BytesIO()
    pq.write_table(entries, buffer)
    write_file(uri, buffer.getvalue())
    return uri


def update_index(table_path: str, index: FishIndex, keys: Mapping[str, str | None], new: pa.Table) -> None:
    """Add the entries `new` (of days just read); merge every segment into one when there are too many."""
    if len(index.segments) + bool(new.num_rows) > MAX_SEGMENTS:
        merged = FishIndex(pa.concat_tables([index.entries, new]), index.segments).current(keys)
        _write_segment(table_path, merged)
        delete_files(list(index.segments))
    elif new.num_rows:
        _write_segment(table_path, new)
