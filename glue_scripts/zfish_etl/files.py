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


def s3_location(uri: str) -> tuple[str, str] | None:
    """(bucket, key) of an S3 URI (`s3://`, `s3a://`, `s3n://`), taken as written; None for a local one."""
    return _s3(uri)


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


def _listed(client: Any, uri: str) -> list[tuple[str, int, str]]:
    found = _s3(uri)
    if found is None:
        folder = local_path(uri)
        if not folder.is_dir():
            return []
        with os.scandir(folder) as entries:
            stats = [(e.name, e.stat()) for e in entries if _is_file(e)]
        return sorted((name, st.st_size, str(st.st_mtime_ns)) for name, st in stats)
    bucket, key = found
    prefix = key.rstrip("/") + "/"
    listed = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        listed.extend((o["Key"][len(prefix):], o["Size"], o["ETag"].strip('"')) for o in page.get("Contents", []))
    return sorted(listed)


def _is_file(entry: os.DirEntry) -> bool:
    """Whether a local entry is a file to read (through a link). A link loop or one that cannot be
    followed is none (`DirEntry.is_file` raises there): the crawl quarantines such entries whole."""
    try:
        return entry.is_file()
    except OSError:
        return False


def list_versioned(uris: list[str]) -> list[list[tuple[str, int, str]]]:
    """(name, bytes, version) of the files directly in each folder, sorted by name (none when it does not
    exist), in order. The version is the lake's own tag of a file (`LakeObject.version`): its mtime in
    nanoseconds locally (through a link), its ETag on S3; a file rewritten in place gets a new one."""
    return list(_each(uris, _listed))


def list_sized(uris: list[str]) -> list[list[tuple[str, int]]]:
    """(name, bytes) of the files directly in each folder, sorted by name (none when it does not exist), in order."""
    return [[(name, size) for name, size, _ in listed] for listed in list_versioned(uris)]


def list_folders(uris: list[str]) -> list[list[str]]:
    """Names of the files directly in each folder, sorted (none when it does not exist), in order."""
    return [[name for name, _ in listed] for listed in list_sized(uris)]


def list_subfolders(uri: str, limit: int = 1000) -> list[str]:
    """Names of (up to about `limit`) folders directly in the folder `uri`, sorted (none when it does not exist):
    a local folder's subfolders, or an S3 prefix's common prefixes."""
    found = _s3(uri)
    if found is None:
        folder = local_path(uri)
        return sorted(e.name for e in os.scandir(folder) if e.is_dir())[:limit] if folder.is_dir() else []
    bucket, key = found
    listed = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", Delimiter="/", MaxKeys=limit)
    return sorted(p["Prefix"].rstrip("/").rpartition("/")[2] for p in listed.get("CommonPrefixes", []))


def join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name


MISSING_CODES = ("NoSuchKey", "404", "NotFound")
DENIED_CODES = ("AccessDenied", "403")


def s3_object_exists(client: Any, bucket: str, key: str) -> bool:
    """Whether `key` is an object of `bucket`, found by listing (its first key under `key` as prefix).

    Listing, not a GET or HEAD: S3 answers those for a missing key 404 NoSuchKey only to a principal
    that may list the whole bucket; every zfish principal may list only under its prefixes, so to
    them a missing key is 403 AccessDenied, the same answer as a key they may not read. A listing
    under the key itself is allowed wherever the key's folder is.
    """
    listed = client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    return bool(listed) and listed[0]["Key"] == key  # the key sorts before every longer key it prefixes


def get_s3_object(client: Any, bucket: str, key: str) -> bytes | None:
    """The object's bytes; None when there is no such key (a 403 for it is told apart by listing, see
    `s3_object_exists`); any other error, a real denial included, is raised."""
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in MISSING_CODES or (code in DENIED_CODES and not s3_object_exists(client, bucket, key)):
            return None
        raise


def read_files(uris: list[str], missing_ok: bool = False, threads: int = READ_THREADS,
               settings: aws.ClientSettings | None = None) -> Iterator[tuple[str, bytes | None]]:
    """(uri, content) of each file, in order; content None for a missing file when `missing_ok`, else a
    FileNotFoundError naming it. S3 objects are fetched `threads` at a time (see `_each`)."""

    def read(client: Any, uri: str) -> tuple[str, bytes | None]:
        found = _s3(uri)
        try:
            if found is None:
                return uri, local_path(uri).read_bytes()
            content = get_s3_object(client, *found)
            if content is None:
                raise FileNotFoundError(f"no such object: {uri}")
            return uri, content
        except FileNotFoundError:
            if missing_ok:
                return uri, None
            raise

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
