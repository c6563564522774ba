"""JVM-free reads of Hudi tables through hudi-rs: snapshots, time travel, the commit timeline.

hudi-rs names the files of the latest snapshot; `snapshot_dataset` hands them to a reader that
takes only the columns it needs, which hudi-rs's own reads do not make much cheaper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from zfish_assets.lazy import lazy_module

pa = lazy_module("pyarrow")
ds = lazy_module("pyarrow.dataset")
pafs = lazy_module("pyarrow.fs")
hudi = lazy_module("hudi")


def _table(uri: str, storage_options: Mapping[str, str]):
    return hudi.HudiTableBuilder.from_base_uri(uri).with_storage_options(dict(storage_options)).build()


def table_exists(uri: str, storage_options: Mapping[str, str]) -> bool:
    """Whether a Hudi table (its `hoodie.properties`) is at `uri`."""
    try:
        _table(uri, storage_options)
    except Exception:  # hudi-rs raises a plain exception when the base path holds no table
        return False
    return True


def completed_commits(uri: str, storage_options: Mapping[str, str]) -> list[str]:
    """Completed commit instants, oldest first."""
    return [i.timestamp for i in _table(uri, storage_options).get_timeline().get_completed_commits()]


def latest_instant(uri: str, storage_options: Mapping[str, str]) -> str | None:
    """The latest completed instant that changed data (commit, delta commit, replace commit); None
    without a table. Cleans and other table services are left out: they change no row."""
    try:
        timeline = _table(uri, storage_options).get_timeline()
    except Exception:  # hudi-rs raises a plain exception when the base path holds no table
        return None
    instants = [i.timestamp for listed in (timeline.get_completed_commits(), timeline.get_completed_deltacommits(),
                                           timeline.get_completed_replacecommits()) for i in listed]
    return max(instants, default=None)


def read_hudi_snapshot(
    uri: str,
    storage_options: Mapping[str, str],
    days: Sequence[str] | None = None,
    as_of: str | None = None,
) -> pa.Table:
    """The table's snapshot (as of a commit instant if given), restricted to `days` if given.

    Meta columns are kept: `_hoodie_commit_time` tells which commit wrote each row.
    """
    table = _table(uri, storage_options)
    if days is not None and not days:
        return table.get_schema_with_meta_fields().empty_table()
    options = hudi.HudiReadOptions()
    if as_of:
        options = options.with_as_of_timestamp(as_of)
    if days is not None:
        # Exactly the days' partitions, pruned by hudi-rs: a range min..max would read every day between
        # scattered ones (a late label's old days and the window), and filtering in Arrow afterwards
        # builds an array from Python strings, which makes pyarrow import pandas (0.35 s).
        options = options.with_filters([("day", "IN", ",".join(sorted(set(days))))])
    batches = table.read(options)
    # File slices written before a column was added (schema evolution) lack it: unify, nulls there.
    return (pa.concat_tables([pa.Table.from_batches([b]) for b in batches], promote_options="default")
            if batches else table.get_schema_with_meta_fields().empty_table())


def filesystem_of(uri: str, storage_options: Mapping[str, str]) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for the table at `uri`, set up as hudi-rs's storage options say, and the table's path in it."""
    scheme, _, path = uri.partition("://")
    if scheme == "file":
        return pafs.LocalFileSystem(), path
    return pafs.S3FileSystem(  # s3:// or s3a://; without keys in the options, the default AWS chain
        access_key=storage_options.get("aws_access_key_id") or None,
        secret_key=storage_options.get("aws_secret_access_key") or None,
        session_token=storage_options.get("aws_session_token") or None,
        region=storage_options.get("aws_region") or None,
        endpoint_override=storage_options.get("aws_endpoint") or None,
        scheme="http" if storage_options.get("aws_allow_http") == "true" else "https",
    ), path


def snapshot_dataset(uri: str, storage_options: Mapping[str, str], days: Sequence[str] | None = None) -> ds.Dataset:
    """The latest snapshot (restricted to `days` if given) as a lazy Arrow dataset over its base files.

    A reader (DuckDB) then decodes only the columns and row groups it needs: the image_ids of
    10^7 rows without the other twenty columns. Faithful for copy-on-write tables, whose file
    slices are base files alone: hudi-rs lists the latest slice of each file group as of the
    latest completed commit (a glob of the folders would also see superseded versions).
    """
    table = _table(uri, storage_options)
    schema = table.get_schema_with_meta_fields()
    if days is not None and not days:
        return ds.dataset([], schema=schema, format="parquet")
    options = hudi.HudiReadOptions()
    if days is not None:
        # Partition pruning in hudi-rs: only the days' file slices are listed.
        options = options.with_filters([("day", "IN", ",".join(sorted(set(days))))])
    slices = table.get_file_slices(options)
    if any(s.has_log_files() for s in slices):
        raise ValueError(f"{uri} has log files (merge-on-read): read it with read_hudi_snapshot, which merges them")
    filesystem, root = filesystem_of(uri, storage_options)
    return ds.dataset([f"{root}/{s.base_file_relative_path()}" for s in slices], schema=schema, format="parquet",
                      filesystem=filesystem)


def base_files_by_day(uri: str, storage_options: Mapping[str, str]) -> dict[str, list[tuple[str, int]]]:
    """(name, bytes) of each file of the latest snapshot's file slices, by day: what a day's rows are
    read from now. Base files, and log files of a merge-on-read slice (with their sizes)."""
    files: dict[str, list[tuple[str, int]]] = {}
    for s in _table(uri, storage_options).get_file_slices(hudi.HudiReadOptions()):
        day = files.setdefault(s.partition_path.removeprefix("day="), [])
        day.append((s.base_file_name, s.base_file_size))
        day.extend(zip(s.log_file_names, s.log_file_sizes))
    return files


class CommitRead(NamedTuple):
    """Rows read from a Hudi table, and the commit instant they were read as of."""

    instant: str
    table: pa.Table


@dataclass(frozen=True)
class HudiSnapshot:
    """A handle on some days of a Hudi table, for a consumer that must name the commit it reads.

    The IO manager hands this out instead of an Arrow table when the consumer's input is annotated
    `HudiSnapshot`: the consumer picks the commit (the latest, or an earlier one to reproduce a
    result) and learns which one it read, which a plain snapshot read does not tell.
    """

    uri: str
    days: tuple[str, ...] | None = None
    storage_options: Mapping[str, str] = field(default_factory=dict)

    def commits(self) -> list[str]:
        """Completed commit instants still on the active timeline, oldest first (none without a table)."""
        if not table_exists(self.uri, self.storage_options):
            return []
        return completed_commits(self.uri, self.storage_options)

    def read(self, as_of: str | None = None) -> CommitRead:
        """The days as of the commit `as_of`, or as of the latest completed commit.

        The read is pinned to an explicit instant either way, so a commit landing meanwhile
        cannot change what was read. `as_of` must be a completed commit: a time between commits
        would read the same rows under a name no commit has.
        """
        commits = self.commits()
        if not commits:
            raise ValueError(f"no completed commit in {self.uri}")
        if as_of is not None and as_of not in commits:
            raise ValueError(
                f"{as_of} is not a completed commit of {self.uri} (or was archived); "
                f"commits: {', '.join(commits[-10:])}"
            )
        instant = as_of or commits[-1]
        return CommitRead(instant, read_hudi_snapshot(self.uri, self.storage_options, self.days, as_of=instant))
