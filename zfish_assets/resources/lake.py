"""The lake: where raw days land, in the walkthrough's layout `<prefix>/<table>/day=YYYY-MM-DD/`.

Assets speak to a `Lake` only; the local folder lake lives here and the S3 lake beside it, so the
AWS deployment adds S3 without touching an asset.
"""

from __future__ import annotations

import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dagster import ConfigurableResource
from pydantic import Field

from zfish_assets import settings
from zfish_assets.partitions import validate_day

RAW_TABLES = ("observations", "outcomes")


@dataclass(frozen=True)
class LakeObject:
    """One file of a day: its name within the day folder, size, and a version tag.

    The version tag (mtime in ns locally, the ETag on S3) lets the catalog notice a file that was
    changed behind its back.
    """

    name: str
    size: int
    version: str


@dataclass(frozen=True)
class LandedDay:
    """What landing a day wrote."""

    uri: str
    files: int
    bytes: int


def validate_table(table: str) -> str:
    """Table names reach paths and SQL: only the raw tables zfish knows pass."""
    if table not in RAW_TABLES:
        raise ValueError(f"unknown raw table {table!r}; expected one of {', '.join(RAW_TABLES)}")
    return table


class Lake(ConfigurableResource, ABC):
    """Storage of the raw days (and, beside them, the Hudi table, quarantine and exports)."""

    prefix: str = Field(default_factory=settings.lake_prefix, description="Key prefix of the walkthrough's layout.")

    @abstractmethod
    def uri(self, key: str = "") -> str:
        """The URI of `key` under the prefix, as Spark and hudi-rs address it."""

    @abstractmethod
    def land_day(self, table: str, day: str, write: Callable[[Path], object]) -> LandedDay:
        """Replace the day folder with what `write(folder)` puts in an empty local folder.

        Replacing (not adding to) the day makes re-landing a day idempotent: no stale or
        duplicate file survives a second delivery.
        """

    @abstractmethod
    def list_day(self, table: str, day: str) -> list[LakeObject]:
        """The files of one day, sorted by name (empty when the day never landed)."""

    @abstractmethod
    def list_days(self, table: str) -> list[str]:
        """The days that have a folder, sorted."""

    @abstractmethod
    def local_day_dir(self, table: str, day: str) -> Path:
        """A local folder with the day's files, for readers that need a filesystem (DuckDB)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` as the object at `key`, whole: a reader sees the old object or the new one."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The object at `key`; FileNotFoundError when there is none."""

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


class LocalLake(Lake):
    """A folder on this machine (default `$ZFISH_DATA_DIR/lake`), laid out like the S3 bucket."""

    root: str = Field(
        default_factory=lambda: str(settings.data_dir() / "lake"),
        description="Folder standing in for the bucket.",
    )

    def _path(self, key: str = "") -> Path:
        base = Path(self.root).resolve() / self.prefix
        return base / key if key else base

    def uri(self, key: str = "") -> str:
        # Not Path.as_uri(): it would percent-encode the `=` of `day=` folders.
        return f"file://{self._path(key)}"

    def land_day(self, table: str, day: str, write: Callable[[Path], object]) -> LandedDay:
        final = self._path(self.day_key(table, day))
        staging = final.parent / f".staging-{final.name}-{uuid.uuid4().hex}"
        retired = final.parent / f".retired-{final.name}-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            write(staging)
            files = [p for p in staging.iterdir() if p.is_file()] if staging.is_dir() else []
            # Swap folders with renames so a reader sees the old day or the new one, never half.
            if final.exists():
                os.rename(final, retired)
            if files:
                os.rename(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(retired, ignore_errors=True)
        return LandedDay(uri=self.uri(self.day_key(table, day)), files=len(files),
                         bytes=sum(p.stat().st_size for p in final.iterdir()) if files else 0)

    def list_day(self, table: str, day: str) -> list[LakeObject]:
        folder = self._path(self.day_key(table, day))
        if not folder.is_dir():
            return []
        objects = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_file():
                    stat = entry.stat()
                    objects.append(LakeObject(entry.name, stat.st_size, str(stat.st_mtime_ns)))
        return sorted(objects, key=lambda o: o.name)

    def list_days(self, table: str) -> list[str]:
        folder = self._path(validate_table(table))
        if not folder.is_dir():
            return []
        return sorted(p.name.removeprefix("day=") for p in folder.glob("day=*") if p.is_dir())

    def local_day_dir(self, table: str, day: str) -> Path:
        return self._path(self.day_key(table, day))

    def _object_path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in PurePosixPath(key).parts:
            raise ValueError(f"{key!r} is not an object key under the lake prefix")
        return self._path(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        final = self._object_path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".staging-{final.name}-{uuid.uuid4().hex}"
        try:
            staging.write_bytes(data)
            os.replace(staging, final)
        finally:
            staging.unlink(missing_ok=True)

    def get_bytes(self, key: str) -> bytes:
        return self._object_path(key).read_bytes()
