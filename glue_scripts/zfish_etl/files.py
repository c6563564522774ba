"""Listing a day folder and reading its files by URI, in Python: local paths and S3 alike.

The raw layout is one small object per image. Spark's file sources pay a task-side cost per file
(and, on a local disk without Hadoop's native library, a forked shell per file for permissions),
so a day of 10^4 files took 19-54 s through them against ~4 s listed and read here, with S3 GETs in
a thread pool (benchmarks/read_path.py). S3 goes through the job's boto3 client (`aws.py`: the
job's endpoint, and on Glue the job's role), or, in an executor, a client made from the settings
the driver handed it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from glue_scripts.zfish_etl import aws

S3_SCHEMES = ("s3", "s3a", "s3n")
READ_THREADS = 16
T = TypeVar("T")


def _scheme(uri: str) -> str:
    """The scheme of a URI (`s3`, `file`), lower case; "" for a plain path."""
    head, colon, _ = uri.partition(":")
    return head.lower() if colon and head and "/" not in head else ""


def _s3(uri: str) -> tuple[str, str] | None:
    """(bucket, key) of an S3 URI; None for a local one.

    Taken as written, not parsed as a URL: the lake and the listing join names into URIs as they
    are, so a `#`, `?` or `%` in a file's name is part of its key, not a fragment, query or escape.
    """
    scheme = _scheme(uri)
    if scheme not in S3_SCHEMES:
        return None
    bucket, _, key = uri[len(scheme) + 1:].lstrip("/").partition("/")
    return bucket, key.lstrip("/")


def is_s3(uri: str) -> bool:
    """Whether `uri` names an S3 object (`s3://`, `s3a://`, `s3n://`)."""
    return _s3(uri) is not None


def local_path(uri: str) -> Path:
    """The path of a `file:` URI (`file:///p`, `file:/p`) or a plain path, taken as written (see `_s3`)."""
    scheme = _scheme(uri)
    if scheme not in ("", "file"):
        raise ValueError(f"{uri!r}: not a local path or a file:, s3:, s3a: URI")
    if not scheme:
        return Path(uri)
    rest = uri[len("file:"):]
    if rest.startswith("//"):  # an authority (empty, or localhost) before the path
        rest = "/" + rest[2:].partition("/")[2]
    return Path(rest)


def _each(uris: list[str], work: Callable[[Any, str], T], threads: int = READ_THREADS,
          settings: aws.ClientSettings | None = None) -> Iterator[T]:
    """`work(client, uri)` for each URI, in order. With an S3 URI among them, one S3 client serves
    them all (the job's, or one made from `settings`), in a pool of `threads` (one round trip
    each); local paths alone run in order, client None."""
    if not any(_s3(u) for u in uris):
        yield from (work(None, u) for u in uris)
        return
    client = aws.client("s3") if settings is None else aws.client_for("s3", settings, threads)
    with ThreadPoolExecutor(threads) as pool:
        yield from pool.map(lambda uri: work(client, uri), uris)


def _listed(client: Any, uri: str) -> list[tuple[str, int]]:
    found = _s3(uri)
    if found is None:
        folder = local_path(uri)
        if not folder.is_dir():
            return []
        with os.scandir(folder) as entries:
            return sorted((e.name, e.stat().st_size) for e in entries if e.is_file())
    bucket, key = found
    prefix = key.rstrip("/") + "/"
    listed = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        listed.extend((o["Key"][len(prefix):], o["Size"]) for o in page.get("Contents", []))
    return sorted(listed)


def list_sized(uris: list[str]) -> list[list[tuple[str, int]]]:
    """(name, bytes) of the files directly in each folder, sorted by name (none when it does not exist), in order."""
    return list(_each(uris, _listed))


def list_folders(uris: list[str]) -> list[list[str]]:
    """Names of the files directly in each folder, sorted (none when it does not exist), in order."""
    return [[name for name, _ in listed] for listed in list_sized(uris)]


def join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name


def read_files(uris: list[str], missing_ok: bool = False, threads: int = READ_THREADS,
               settings: aws.ClientSettings | None = None) -> Iterator[tuple[str, bytes | None]]:
    """(uri, content) of each file, in order; content None for a missing file when `missing_ok`, else a
    FileNotFoundError naming it. S3 objects are fetched `threads` at a time (see `_each`)."""

    def read(client: Any, uri: str) -> tuple[str, bytes | None]:
        found = _s3(uri)
        try:
            if found is None:
                return uri, local_path(uri).read_bytes()
            return uri, client.get_object(Bucket=found[0], Key=found[1])["Body"].read()
        except FileNotFoundError:
            if missing_ok:
                return uri, None
            raise
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
            if missing_ok:
                return uri, None
            raise FileNotFoundError(f"no such object: {uri}") from exc

    return _each(uris, read, threads, settings)


def write_file(uri: str, data: bytes) -> None:
    """Store `data` at `uri` whole: an S3 PUT, or locally a temporary file renamed over it, so a reader
    (or a crash) never sees half a file."""
    found = _s3(uri)
    if found is not None:
        aws.client("s3").put_object(Bucket=found[0], Key=found[1], Body=data)
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def delete_files(uris: list[str]) -> None:
    """Remove the files `uris` names (one S3 request per 1000 objects of a bucket); a missing one is no error."""
    by_bucket: dict[str, list[str]] = {}
    for uri in uris:
        found = _s3(uri)
        if found is None:
            local_path(uri).unlink(missing_ok=True)
        else:
            by_bucket.setdefault(found[0], []).append(found[1])
    for bucket, keys in by_bucket.items():
        s3 = aws.client("s3")
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})
