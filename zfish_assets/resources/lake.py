"""The lake: where raw days land, in the walkthrough's layout `<prefix>/<table>/day=YYYY-MM-DD/`.

Assets speak to a `Lake` only; the local folder lake lives here and the S3 lake beside it, so the
AWS deployment adds S3 without touching an asset.
"""

from __future__ import annotations

import functools
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
    def land_day(self, table: str, day: str, write: Callable[[Path], object],
                 stored: Callable[[int], object] | None = None) -> LandedDay:
        """Replace the day folder with what `write(folder)` puts in an empty local folder.

        Replacing (not adding to) the day makes re-landing a day idempotent: no stale or
        duplicate file survives a second delivery. `stored` is called with counts of files as they
        reach the lake (one by one on S3, all at once when a local folder is swapped in).
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

    def land_day(self, table: str, day: str, write: Callable[[Path], object],
                 stored: Callable[[int], object] | None = None) -> LandedDay:
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
            if stored:
                stored(len(files))
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


@functools.lru_cache(maxsize=16)
def aws_client(service: str, region: str, endpoint_url: str):
    """One client per service and endpoint per process (boto3 clients are thread-safe; creating one is slow)."""
    import boto3

    return boto3.client(service, region_name=region or None, endpoint_url=endpoint_url or None)


def aws_credentials() -> dict[str, str]:
    """The credentials boto3 resolves (environment, profile, instance role): for s3a and hudi-rs."""
    import boto3

    found = boto3.Session().get_credentials()
    if found is None:
        return {}
    frozen = found.get_frozen_credentials()
    creds = {"access_key": frozen.access_key, "secret_key": frozen.secret_key}
    if frozen.token:
        creds["token"] = frozen.token
    return creds


class S3Lake(Lake):
    """The walkthrough's bucket: `s3://<bucket>/<prefix>/<table>/day=YYYY-MM-DD/`, as upload_to_s3.sh lays it out.

    Readers that need a filesystem (crawling, DuckDB) get the day downloaded into a cache folder
    under `$ZFISH_DATA_DIR/cache/s3`, refreshed by ETag.
    """

    bucket: str = Field(description="The lake's bucket (ZFISH_S3_BUCKET).")
    region: str = Field(default="", description="AWS region (ZFISH_AWS_REGION).")
    endpoint_url: str = Field(default="", description="Optional S3 endpoint, e.g. a local S3 server (ZFISH_AWS_ENDPOINT_URL).")
    spark_scheme: str = Field(default="s3a", description="Scheme Spark uses: s3a locally, s3 on Glue.")
    cache_dir: str = Field(
        default_factory=lambda: str(settings.data_dir() / "cache" / "s3"),
        description="Local folder caching downloaded days for DuckDB and crawls.",
    )
    upload_threads: int = Field(default=8, description="Parallel uploads when landing a day.")

    def client(self):
        return aws_client("s3", self.region, self.endpoint_url)

    def _key(self, key: str = "") -> str:
        return f"{self.prefix}/{key}" if key else self.prefix

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def spark_uri(self, key: str = "") -> str:
        return f"{self.spark_scheme}://{self.bucket}/{self._key(key)}"

    def storage_options(self) -> dict[str, str]:
        options = {"aws_virtual_hosted_style_request": "false"}
        if self.region:
            options["aws_region"] = self.region
        if self.endpoint_url:
            options["aws_endpoint"] = self.endpoint_url
            options["aws_allow_http"] = str(self.endpoint_url.startswith("http://")).lower()
        creds = aws_credentials()
        if creds:
            options["aws_access_key_id"] = creds["access_key"]
            options["aws_secret_access_key"] = creds["secret_key"]
            if "token" in creds:
                options["aws_session_token"] = creds["token"]
        return options

    def _list(self, prefix: str, delimiter: str = "") -> tuple[list[dict], list[str]]:
        paginator = self.client().get_paginator("list_objects_v2")
        objects, prefixes = [], []
        kwargs = {"Bucket": self.bucket, "Prefix": prefix, **({"Delimiter": delimiter} if delimiter else {})}
        for page in paginator.paginate(**kwargs):
            objects.extend(page.get("Contents", []))
            prefixes.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        return objects, prefixes

    def land_day(self, table: str, day: str, write: Callable[[Path], object],
                 stored: Callable[[int], object] | None = None) -> LandedDay:
        import tempfile
        from concurrent.futures import ThreadPoolExecutor

        day_prefix = self._key(self.day_key(table, day)) + "/"
        client = self.client()
        with tempfile.TemporaryDirectory(prefix="zfish-land-") as tmp:
            folder = Path(tmp) / "day"
            folder.mkdir()
            write(folder)
            files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
            with ThreadPoolExecutor(max_workers=max(1, self.upload_threads)) as pool:
                for _ in pool.map(lambda p: client.upload_file(str(p), self.bucket, day_prefix + p.name), files):
                    if stored:
                        stored(1)
            size = sum(p.stat().st_size for p in files)
        # Files of an earlier delivery that this one does not have: delete, so re-landing replaces the day.
        keep = {day_prefix + p.name for p in files}
        stale = [o["Key"] for o in self._list(day_prefix)[0] if o["Key"] not in keep]
        for start in range(0, len(stale), 1000):
            client.delete_objects(Bucket=self.bucket,
                                  Delete={"Objects": [{"Key": k} for k in stale[start:start + 1000]], "Quiet": True})
        return LandedDay(uri=self.uri(self.day_key(table, day)), files=len(files), bytes=size)

    def list_day(self, table: str, day: str) -> list[LakeObject]:
        day_prefix = self._key(self.day_key(table, day)) + "/"
        objects = [
            LakeObject(o["Key"][len(day_prefix):], int(o["Size"]), o["ETag"].strip('"'))
            for o in self._list(day_prefix)[0]
            if "/" not in o["Key"][len(day_prefix):]
        ]
        return sorted(objects, key=lambda o: o.name)

    def list_days(self, table: str) -> list[str]:
        table_prefix = self._key(validate_table(table)) + "/"
        _, prefixes = self._list(table_prefix, delimiter="/")
        names = [p[len(table_prefix):].rstrip("/") for p in prefixes]
        return sorted(n.removeprefix("day=") for n in names if n.startswith("day="))

    def local_day_dir(self, table: str, day: str) -> Path:
        """The day downloaded into the cache (only files whose ETag changed are fetched again)."""
        import json as _json

        folder = Path(self.cache_dir) / self.bucket / self.prefix / self.day_key(table, day)
        folder.mkdir(parents=True, exist_ok=True)
        manifest_path = folder / ".zfish-etags"
        cached = _json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        objects = {o.name: o.version for o in self.list_day(table, day)}
        client = self.client()
        day_prefix = self._key(self.day_key(table, day)) + "/"
        for name, etag in objects.items():
            if cached.get(name) != etag or not (folder / name).is_file():
                client.download_file(self.bucket, day_prefix + name, str(folder / name))
        for path in folder.iterdir():
            if path.is_file() and path.name not in objects and path.name != ".zfish-etags":
                path.unlink()
        manifest_path.write_text(_json.dumps(objects))
        return folder

    def _object_key(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in PurePosixPath(key).parts:
            raise ValueError(f"{key!r} is not an object key under the lake prefix")
        return self._key(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=self._object_key(key), Body=data)

    def get_bytes(self, key: str) -> bytes:
        client = self.client()
        try:
            return client.get_object(Bucket=self.bucket, Key=self._object_key(key))["Body"].read()
        except client.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(self.uri(key)) from exc
