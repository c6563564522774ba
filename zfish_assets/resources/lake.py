"""The lake: where raw days land, in the walkthrough's layout `<prefix>/<table>/day=YYYY-MM-DD/`.

Assets speak to a `Lake` only; the local folder lake lives here and the S3 lake beside it, so the
AWS deployment adds S3 without touching an asset. This module holds where things are (keys under the
prefix, a table's days) and the landing protocol, each in its local and S3 forms side by side; storing
bytes at keys (put, get, list, delete, the S3 cache) is `lake_storage.py`'s.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field

from glue_scripts.zfish_etl.judging import is_data_file
from glue_scripts.zfish_etl.write_errors import writing
from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.layout import marker_key, staging_prefix
from glue_scripts.zfish_etl.lease import hold
from zfish_assets import settings
from zfish_assets.partitions import validate_day
from zfish_assets.resources.aws_connection import AWSConnection
from zfish_assets.resources.lake_storage import (
    FolderStorage, S3Storage, folder_entries, install_folder, running, staged_files,
)
from zfish_assets.dagster_names import RAW_TABLES


@dataclass(frozen=True)
class LakeObject:
    """One file of a day: its name within the day folder, size, and a version tag.

    The version tag (mtime in ns locally, the ETag on S3) lets the catalog notice a file that was
    changed behind its back.
    """

    name: str
    size: int
    version: str
    unreadable: str = ""  # what the entry is when it is no file to read (a dangling link, a pipe): never opened

    def is_data(self) -> bool:
        """Whether the entry holds rows to judge: a data file's name (`is_data_file`) on a file that can be read."""
        return is_data_file(self.name) and not self.unreadable


@dataclass(frozen=True)
class LandedDay:
    """What landing a day wrote."""

    uri: str
    files: int
    bytes: int


def is_day_folder(name: str) -> bool:
    """Whether a name under a table's folder is a day folder: `day=` and a real `YYYY-MM-DD` date."""
    if not name.startswith("day="):
        return False
    try:
        validate_day(name.removeprefix("day="))
    except ValueError:
        return False
    return True


def validate_table(table: str) -> str:
    """Table names reach paths and SQL: only the raw tables zfish knows pass."""
    if table not in RAW_TABLES:
        raise ValueError(f"unknown raw table {table!r}; expected one of {', '.join(RAW_TABLES)}")
    return table


class Lake(ConfigurableResource, ABC):
    """Storage of the raw days (and, beside them, the Hudi table, quarantine and exports)."""

    prefix: str = Field(default=settings.LAKE_PREFIX.default, description=settings.LAKE_PREFIX.description)

    @abstractmethod
    def uri(self, key: str = "") -> str:
        """The URI of `key` under the prefix, as Spark and hudi-rs address it."""

    @abstractmethod
    def land_day(self, table: str, day: str, write: Callable[[Path], object],
                 stored: Callable[[int], object] | None = None) -> LandedDay:
        """Replace the day folder with what `write(folder)` puts in an empty local folder.

        Replacing (not adding to) the day makes re-landing a day idempotent: no stale or
        duplicate file survives a second delivery. Readers (`list_day`, `list_days`,
        `local_day_dir`, the job) see the old day or the new one whole, also when the landing is
        killed; the next landing of the day completes it and removes what the killed one left. `stored` is called with
        counts of files as they reach the lake (one by one on S3, all at once when a local folder is
        swapped in).
        """

    @abstractmethod
    def list_day(self, table: str, day: str) -> list[LakeObject]:
        """Every file of one day, those in subfolders too (named `sub/name`), sorted by name (empty
        when the day never landed): nothing delivered goes unseen by the crawl."""

    @abstractmethod
    def table_entries(self, table: str) -> list[str]:
        """The names directly under the table's folder (folders and files alike), sorted."""

    def list_days(self, table: str) -> list[str]:
        """The days that have a `day=YYYY-MM-DD` folder with a real date, sorted (see `misnamed`)."""
        return sorted(n.removeprefix("day=") for n in self.table_entries(table) if is_day_folder(n))

    def misnamed(self, table: str) -> list[str]:
        """What sits under the table's folder but is not a `day=YYYY-MM-DD` folder: never read by any
        engine, so the checks name it rather than skip it."""
        return [n for n in self.table_entries(table) if not is_day_folder(n)]

    @abstractmethod
    def local_day_dir(self, table: str, day: str) -> Path:
        """A local folder with the day's files, for readers that need a filesystem (DuckDB)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` as the object at `key`, whole: a reader sees the old object or the new one."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The object at `key`; FileNotFoundError when there is none."""

    @abstractmethod
    def list_keys(self, folder: str) -> list[str]:
        """The keys (under the lake prefix) of every object under the folder key `folder`, sorted."""

    @abstractmethod
    def delete_keys(self, keys: list[str]) -> None:
        """Remove the objects at `keys` (keys with no object are fine)."""

    @abstractmethod
    def local_object(self, key: str) -> Path:
        """The object at `key` as a local file, for readers that need a filesystem (DuckDB). On S3 a
        cached download that is never refreshed: for content-addressed (immutable) keys only."""

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """The objects at `keys`, in order; None for a key with no object."""
        return [self._get_or_none(key) for key in keys]

    def _get_or_none(self, key: str) -> bytes | None:
        try:
            return self.get_bytes(key)
        except FileNotFoundError:
            return None

    def spark_uri(self, key: str = "") -> str:
        """The URI of `key` as Spark addresses it (`s3://` on Glue, `s3a://` locally)."""
        return self.uri(key)

    def storage_options(self) -> dict[str, str]:
        """hudi-rs storage options for reading tables in this lake."""
        return {}

    def day_key(self, table: str, day: str) -> str:
        return f"{validate_table(table)}/day={validate_day(day)}"

    def table_uri(self, table: str) -> str:
        return self.uri(validate_table(table))

    def day_uri(self, table: str, day: str) -> str:
        return self.uri(self.day_key(table, day))


class LocalLake(FolderStorage, Lake):
    """A folder on this machine (`$ZFISH_DATA_DIR/lake` in a deployment), laid out like the S3 bucket."""

    root: str = Field(description="Folder standing in for the bucket.")

    def uri(self, key: str = "") -> str:
        # Not Path.as_uri(): it would percent-encode the `=` of `day=` folders.
        return f"file://{self._path(key)}"

    def land_day(self, table: str, day: str, write: Callable[[Path], object],
                 stored: Callable[[int], object] | None = None) -> LandedDay:
        """Write the day into a staging folder beside it, then swap the two folders in one exchange.

        A reader sees the old day or the new one, never half: a kill before the exchange leaves the
        old day in place, one after it the new day. Either leaves a staging folder (the new files,
        or the old day swapped out), which readers never list and the next landing of the day removes.
        """
        final = self._path(self.day_key(table, day))
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(final)
        staging = final.parent / f"{STAGING}{final.name}-{os.getpid()}-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            with writing(staging):  # the lab's files, however the caller writes them
                write(staging)
            files = staged_files(staging)
            # What this landing wrote, counted before the exchange: a landing of the same day running at
            # once may replace `final` right after it (the last exchange wins, whole).
            size = sum(p.stat().st_size for p in files)
            install_folder(staging, final, bool(files))  # the old day, if any, is in `staging` now
            if stored:
                stored(len(files))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return LandedDay(uri=self.uri(self.day_key(table, day)), files=len(files), bytes=size)

    def list_day(self, table: str, day: str) -> list[LakeObject]:
        folder = self._path(self.day_key(table, day))
        if not folder.is_dir():
            return []
        objects = []
        for path, unreadable in folder_entries(folder):  # every entry: the crawl names what is no file
            stat = path.lstat() if unreadable else path.stat()
            size = 0 if unreadable else stat.st_size
            objects.append(LakeObject(path.relative_to(folder).as_posix(), size, str(stat.st_mtime_ns), unreadable))
        return sorted(objects, key=lambda o: o.name)

    def table_entries(self, table: str) -> list[str]:
        folder = self._path(validate_table(table))
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))  # a landing's .staging-

    def local_day_dir(self, table: str, day: str) -> Path:
        return self._path(self.day_key(table, day))



STAGING = ".staging-"
"""Folders a local landing writes beside the day (`.staging-day=D-<pid>-<token>`): never a day to readers."""


def _remove_leftovers(final: Path) -> None:
    """Remove the staging folders a killed landing of the day `final` left (its process is gone);
    a landing still running keeps its own."""
    for leftover in final.parent.glob(f"{STAGING}{final.name}-*"):
        pid = leftover.name.removeprefix(f"{STAGING}{final.name}-").split("-", 1)[0]
        if not running(pid):
            shutil.rmtree(leftover, ignore_errors=True)
    for retired in final.parent.glob(f".retired-{final.name}-*"):  # what landings before the exchange left
        shutil.rmtree(retired, ignore_errors=True)


class S3Lake(S3Storage, Lake):
    """The walkthrough's bucket: `s3://<bucket>/<prefix>/<table>/day=YYYY-MM-DD/`, as upload_to_s3.sh lays it out.

    Readers that need a filesystem (crawling, DuckDB) get the day downloaded into a cache folder
    under `$ZFISH_DATA_DIR/cache/s3`, refreshed by ETag (`S3Storage`).
    """

    bucket: str = Field(description="The lake's bucket (ZFISH_S3_BUCKET).")
    aws: AWSConnection = Field(default_factory=AWSConnection, description="Where the S3 client connects.")
    spark_scheme: Literal["s3a", "s3"] = Field(default="s3a", description="Scheme Spark uses: s3a locally, s3 (EMRFS) on Glue.")
    cache_dir: str = Field(description="Local folder caching downloaded days for DuckDB and crawls "
                                       "(`$ZFISH_DATA_DIR/cache/s3` in a deployment).")
    upload_threads: int = Field(default=8, description="Parallel uploads when landing a day.")
    landing_wait_s: float = Field(default=900.0, description="How long a landing waits for another landing of the same day.")
    read_threads: int = Field(default=16, description="Parallel GETs when downloading a day or reading other days' keys.")

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def spark_uri(self, key: str = "") -> str:
        return f"{self.spark_scheme}://{self.bucket}/{self._key(key)}"

    def storage_options(self) -> dict[str, str]:
        return self.aws.storage_options()

    def land_day(self, table: str, day: str, write: Callable[[Path], object],
                 stored: Callable[[int], object] | None = None) -> LandedDay:
        """Replace the day, one landing of it at a time: two at once would each delete the other's files and
        copies (the folder left empty, the marker gone, one reported landed). So each holds the day's lease,
        `<landing dir>/<table>/day=D.lease` (S3's conditional writes, as the table's writers: `lease.py`), and
        a second waits for the first, then replaces its day whole."""
        lease = self.lease(staging_prefix(table, day).rstrip("/") + layout.LEASE_SUFFIX)
        with hold(self.uri(self.day_key(table, day)), f"landing {table} day={day}", self.landing_wait_s, print,
                  lease, "the lake's landing_wait_s"):
            return self._land_held_day(table, day, write, stored)

    def _land_held_day(self, table: str, day: str, write: Callable[[Path], object],
                       stored: Callable[[int], object] | None = None) -> LandedDay:
        """Replace the day so that every reader sees the old day or the new one whole (see `landing`).

        1. (no marker yet) the current files are copied aside to a `previous` prefix and verified,
        then the marker naming that copy is written: from here readers read the copy; 2. the new
        files are uploaded into the day folder, the files the delivery no longer has deleted, and
        the folder verified; 3. the marker is deleted: readers read the folder, the new day; 4. the
        copy is deleted. A kill before 3 leaves readers on the old day; the next landing keeps that
        marker and its copy (the folder may be half replaced) and completes. A kill after 3 leaves
        only the copy, which the next landing removes. One function: the protocol's steps read in order.
        """
        import tempfile

        day_prefix = self._key(self.day_key(table, day)) + "/"
        staging_root = self._key(staging_prefix(table, day))
        marker = self._key(marker_key(table, day))
        previous = f"{staging_root}{uuid.uuid4().hex}.previous/"
        pending = self._marker(table, day)  # a killed landing's: its copy is still the day
        kept = self._key(pending["previous"]) if pending and pending["previous"] else None
        self._delete([o["Key"] for o in self._list(staging_root)[0] if not (kept and o["Key"].startswith(kept))])
        with tempfile.TemporaryDirectory(prefix="zfish-land-") as tmp:
            folder = Path(tmp) / "day"
            folder.mkdir()
            write(folder)
            files = staged_files(folder)  # subfolders too: the crawl names what no engine reads
            sizes = {p.relative_to(folder).as_posix(): p.stat().st_size for p in files}
            if pending is None:
                current = {o["Key"][len(day_prefix):]: int(o["Size"]) for o in self._list(day_prefix)[0]}
                self._pooled(lambda name: self._copy(day_prefix + name, previous + name), sorted(current))
                self._verify(previous, current)
                relative = previous[len(self._key()) + 1:] if current else None
                self.client().put_object(Bucket=self.bucket, Key=marker,
                                         Body=json.dumps({"previous": relative}).encode())
            def upload(path: Path) -> None:
                self.client().upload_file(str(path), self.bucket, day_prefix + path.relative_to(folder).as_posix())
                if stored:
                    stored(1)

            self._pooled(upload, files)
        # Files of an earlier delivery that this one does not have: deleted, so re-landing replaces the day.
        self._delete([o["Key"] for o in self._list(day_prefix)[0] if o["Key"][len(day_prefix):] not in sizes])
        self._verify(day_prefix, sizes)
        self.client().delete_object(Bucket=self.bucket, Key=marker)
        self._delete([o["Key"] for o in self._list(staging_root)[0]])
        return LandedDay(uri=self.uri(self.day_key(table, day)), files=len(files), bytes=sum(sizes.values()))

    def _marker(self, table: str, day: str) -> dict | None:
        """The day's landing marker (None: no landing is replacing the day).

        Looked for by listing (which the lake's policy allows under the prefix), not by a GET, whose
        answer for a missing key is AccessDenied rather than NoSuchKey without a bucket-wide list right.
        """
        key = self._key(marker_key(table, day))
        if not any(o["Key"] == key for o in self._list(key)[0]):
            return None
        return json.loads(self.get_bytes(marker_key(table, day)))

    def _verify(self, prefix: str, sizes: dict[str, int]) -> None:
        """The objects under `prefix` are exactly `sizes` (name -> bytes); else an error naming the difference."""
        found = {o["Key"][len(prefix):]: int(o["Size"]) for o in self._list(prefix)[0]}
        if found != sizes:
            wrong = sorted(n for n in set(found) | set(sizes) if found.get(n) != sizes.get(n))
            raise RuntimeError(f"landing: s3://{self.bucket}/{prefix} does not hold what was written "
                               f"(differs: {', '.join(wrong[:10])}); land the day again")

    def _readable_prefix(self, table: str, day: str) -> str | None:
        """Where the day's readable version is: its folder, or while a landing replaces it the previous copy."""
        pending = self._marker(table, day)
        if pending is None:
            return self._key(self.day_key(table, day)) + "/"
        return self._key(pending["previous"]).rstrip("/") + "/" if pending["previous"] else None

    def list_day(self, table: str, day: str) -> list[LakeObject]:
        return self._objects(self._readable_prefix(table, day))

    def _objects(self, day_prefix: str | None) -> list[LakeObject]:
        """The files under `day_prefix` (none for None), in subfolders too, sorted by name."""
        if day_prefix is None:
            return []
        objects = [
            LakeObject(o["Key"][len(day_prefix):], int(o["Size"]), o["ETag"].strip('"'))
            for o in self._list(day_prefix)[0]
        ]
        return sorted(objects, key=lambda o: o.name)

    def list_days(self, table: str) -> list[str]:
        """Days with a folder, and with a readable version while a landing replaces them."""
        table_prefix = self._key(validate_table(table)) + "/"
        _, prefixes = self._list(table_prefix, delimiter="/")
        names = [p[len(table_prefix):].rstrip("/") for p in prefixes]
        days = {n.removeprefix("day=") for n in names if is_day_folder(n)}
        markers_prefix = self._key(layout.landing_table_dir(table) + "/")
        markers, _ = self._list(markers_prefix, delimiter="/")
        for key in (o["Key"][len(markers_prefix):] for o in markers):
            if key.endswith(".json") and is_day_folder(key.removesuffix(".json")):
                day = key.removeprefix("day=").removesuffix(".json")
                days.discard(day)
                if self._readable_prefix(table, day) is not None:
                    days.add(day)
        return sorted(days)

    def table_entries(self, table: str) -> list[str]:
        table_prefix = self._key(validate_table(table)) + "/"
        objects, prefixes = self._list(table_prefix, delimiter="/")
        names = [p[len(table_prefix):].rstrip("/") for p in prefixes] + [o["Key"][len(table_prefix):] for o in objects]
        return sorted(names)

    def local_day_dir(self, table: str, day: str) -> Path:
        """The day's readable version downloaded into the cache (only files whose ETag changed are fetched
        again), one upload whole even while a landing replaces it (`_snapshot`)."""
        def listing() -> tuple[str | None, dict[str, str]]:
            day_prefix = self._readable_prefix(table, day)
            return day_prefix, {o.name: o.version for o in self._objects(day_prefix)}

        return self._snapshot(listing, Path(self.cache_dir) / self.bucket / self.prefix / self.day_key(table, day))
