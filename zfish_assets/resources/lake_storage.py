"""The lake's storage: objects put, got, listed and deleted, in a folder on this machine or in an S3 bucket.

`resources/lake.py` says where things are (the layout under the prefix, the days of a table) and
how a day is landed so that readers see it whole; this module only stores bytes at keys. Its two
classes are mixins of the `Lake` resources (`LocalLake`, `S3Lake`), whose fields (`root`, `prefix`;
`bucket`, `aws`, `cache_dir`, the thread counts) they read: kept apart so that each side can be read
as one thing, the storage calls of a backend together.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TypeVar

from glue_scripts.zfish_etl.files import DENIED_CODES, MISSING_CODES, get_s3_object
from glue_scripts.zfish_etl.lease import LocalLease, S3Lease
from glue_scripts.zfish_etl.write_errors import writing

T = TypeVar("T")
U = TypeVar("U")
CHANGED_CODES = ("PreconditionFailed", "412", *MISSING_CODES, *DENIED_CODES)  # a listed file replaced, or gone
SNAPSHOT_ATTEMPTS = 5
ETAGS = ".zfish-etags"  # a cached day's manifest: each file's ETag when it was downloaded


def write_atomically(path: Path, data: bytes) -> None:
    """`data` written beside `path` and renamed onto it: a reader meanwhile sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".staging-{path.name}-{uuid.uuid4().hex}"
    try:
        with writing(path):
            staging.write_bytes(data)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def staged_files(folder: Path) -> list[Path]:
    """Every file under a folder, in subfolders too (a lab's script may nest them), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def folder_entries(folder: Path) -> list[tuple[Path, str]]:
    """Every entry under a folder that is not a folder (in subfolders too), sorted, each with what it
    is when its bytes cannot be read as a file's ("" for a file or a link to one).

    `staged_files` passes over the rest in silence: a lab writing into the lake itself can leave a
    dangling link, a link loop, a link to a folder or a named pipe there, which the crawl must name
    (and must not open: a pipe blocks its reader). Links to folders are not followed (as pathlib's
    recursive glob does not), so a loop of folders ends. An empty folder is an entry too (a folder
    holding entries is named through them): no engine reads it, and the crawl names it."""
    if not folder.is_dir():
        return []
    return sorted((p, _unreadable(p)) for p in folder.rglob("*")
                  if p.is_symlink() or not p.is_dir() or not any(p.iterdir()))


def _unreadable(path: Path) -> str:
    """What `path` is, when it is not a file (or a link to one) whose bytes can be read; else ""."""
    try:
        mode = path.stat().st_mode  # through a link
    except FileNotFoundError:
        return f"a dangling symbolic link (to {os.readlink(path)!r}, which does not exist)"
    except OSError as exc:
        return f"a symbolic link that cannot be followed ({exc.strerror})"
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode) and not path.is_symlink():
        return "an empty folder, which holds no file to read"
    if stat.S_ISDIR(mode):
        return f"a symbolic link to a folder ({os.readlink(path)!r}), which no engine follows"
    kinds = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((what for test, what in kinds if test(mode)), f"not a file (mode {oct(mode)})")


def _checked_key(key: str) -> str:
    if not key or key.startswith("/") or ".." in PurePosixPath(key).parts:
        raise ValueError(f"{key!r} is not an object key under the lake prefix")
    return key


def running(pid: str) -> bool:
    """Whether the process `pid` (a staging folder's owner) runs on this machine."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def swap_folders(a: Path, b: Path) -> None:
    """Exchange two folders in one atomic step (Linux renameat2 RENAME_EXCHANGE, macOS renamex_np RENAME_SWAP)."""
    import ctypes
    import ctypes.util
    import sys

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if sys.platform.startswith("linux"):
        at_fdcwd, rename_exchange = -100, 2
        result = libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    elif sys.platform == "darwin":
        result = libc.renamex_np(os.fsencode(a), os.fsencode(b), 2)
    else:
        raise OSError(f"no atomic folder exchange on {sys.platform}: the local lake needs Linux or macOS")
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"exchanging {a} and {b}: {os.strerror(errno)}")


INSTALL_ATTEMPTS = 100
"""Looks at the day folder one landing takes at most: each retry means another landing of the day moved it
between this one's look and its step, which a handful of landings at once cannot keep doing."""
_MOVED = (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST)


def install_folder(staging: Path, final: Path, has_files: bool) -> None:
    """Make `staging` the folder at `final` in one step, the folder `final` was (if any) left at `staging`;
    with `has_files` False, only move `final` (if any) aside to `staging`: an empty delivery removes it.

    Other landings of the same day may run at once, so whether `final` exists can change between the
    look and the step: a first landing's rename onto a folder another one just created fails ENOTEMPTY,
    an exchange with a folder an empty delivery just moved away fails ENOENT. Each such failure means
    only that the other landing's step came first, so the step is chosen again from a new look: the
    last step wins, whole, and no landing fails for another's."""
    for _ in range(INSTALL_ATTEMPTS):
        try:
            if has_files and final.exists():
                swap_folders(staging, final)
            elif has_files:
                os.rename(staging, final)
            elif final.exists():
                shutil.rmtree(staging, ignore_errors=True)  # renaming onto an empty folder would do; a full one not
                os.rename(final, staging)
            return
        except OSError as exc:
            if exc.errno not in _MOVED:
                raise
    raise OSError(errno.EBUSY, f"landing {final}: other landings of the day kept moving it; land it again")


class FolderStorage:
    """Objects as files under `<root>/<prefix>/`, laid out like the bucket."""

    def _path(self, key: str = "") -> Path:
        base = Path(self.root).resolve() / self.prefix
        return base / key if key else base

    def _object_path(self, key: str) -> Path:
        return self._path(_checked_key(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        write_atomically(self._object_path(key), data)

    def get_bytes(self, key: str) -> bytes:
        return self._object_path(key).read_bytes()

    def list_keys(self, folder: str) -> list[str]:
        base = self._path()
        return sorted(p.relative_to(base).as_posix() for p in staged_files(self._object_path(folder)))

    def delete_keys(self, keys: list[str]) -> None:
        for key in keys:
            path = self._object_path(key)
            path.unlink(missing_ok=True)
            for parent in path.parents:  # emptied folders go too, as S3 has none
                if parent == self._path() or not parent.is_dir() or any(parent.iterdir()):
                    break
                parent.rmdir()

    def local_object(self, key: str) -> Path:
        return self._object_path(key)

    def lease(self, key: str) -> LocalLease:
        """The lease at `key` (for `lease.hold`): a `flock` on the file, freed by the kernel with its holder."""
        return LocalLease(str(self._object_path(key)))


class S3Storage:
    """Objects under `s3://<bucket>/<prefix>/`, with a local cache for readers that need files.

    Readers that need a filesystem (crawling, DuckDB) get objects downloaded into `cache_dir`, a day
    refreshed by ETag. They run on the Dagster machine, where no executor can share the GETs, so those
    go `read_threads` at a time: one object per request is latency-bound, and a day of 10^4 objects one
    after another at 50 ms each takes ~8 minutes (benchmarks/s3_read.py).
    """

    def client(self):
        return self.aws.client("s3")

    def lease(self, key: str) -> S3Lease:
        """The lease object at `key` (for `lease.hold`): written with S3's conditional writes only."""
        return S3Lease(self.bucket, self._key(key), self.client())

    def _key(self, key: str = "") -> str:
        return f"{self.prefix}/{key}" if key else self.prefix

    def _object_key(self, key: str) -> str:
        return self._key(_checked_key(key))

    def _list(self, prefix: str, delimiter: str = "") -> tuple[list[dict], list[str]]:
        paginator = self.client().get_paginator("list_objects_v2")
        objects, prefixes = [], []
        kwargs = {"Bucket": self.bucket, "Prefix": prefix, **({"Delimiter": delimiter} if delimiter else {})}
        for page in paginator.paginate(**kwargs):
            objects.extend(page.get("Contents", []))
            prefixes.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        return objects, prefixes

    def _pooled(self, work: Callable[[T], U], items: list[T], threads: int | None = None) -> list[U]:
        """`work(item)` for each item, in order, `threads` at a time (default: `upload_threads`)."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, threads or self.upload_threads)) as pool:
            return list(pool.map(work, items))

    def _copy(self, source: str, dest: str) -> None:
        self.client().copy_object(Bucket=self.bucket, Key=dest, CopySource={"Bucket": self.bucket, "Key": source})

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            self.client().delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True})

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=self._object_key(key), Body=data)

    def get_bytes(self, key: str) -> bytes:
        """The object; FileNotFoundError when missing, whether S3 says 404 or (least privilege) 403 (`get_s3_object`)."""
        content = get_s3_object(self.client(), self.bucket, self._object_key(key))
        if content is None:
            raise FileNotFoundError(self.uri(key))
        return content

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        return self._pooled(self._get_or_none, keys, self.read_threads)

    def list_keys(self, folder: str) -> list[str]:
        base = len(self._key()) + 1
        return sorted(o["Key"][base:] for o in self._list(self._object_key(folder).rstrip("/") + "/")[0])

    def delete_keys(self, keys: list[str]) -> None:
        self._delete([self._object_key(k) for k in keys])

    def local_object(self, key: str) -> Path:
        path = Path(self.cache_dir) / self.bucket / self._object_key(key)
        if not path.is_file():
            write_atomically(path, self.get_bytes(key))
        return path

    def _snapshot(self, listing: Callable[[], tuple[str | None, dict[str, str]]], folder: Path) -> Path:
        """`_cached` of what `listing` (a day's prefix and its files' ETags) names, as one version of the day.

        Each GET is pinned to its listed ETag, so a landing that replaces the day between the listing
        and the downloads fails one (changed; or gone, which S3 answers 403 to a prefix-scoped reader)
        rather than leaving a mix of two uploads, which a crawl would register. The listing is then
        taken again and the day fetched whole (the manifest dropped: files of the failed try may differ
        from it); an error without a change in the listing is raised.
        """
        seen = listing()
        for attempt in range(SNAPSHOT_ATTEMPTS):
            try:
                return self._cached(*seen, folder)
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code")
                now = listing()
                if code not in CHANGED_CODES or now == seen or attempt == SNAPSHOT_ATTEMPTS - 1:
                    raise
                (folder / ETAGS).unlink(missing_ok=True)
                seen = now
        raise AssertionError("unreachable")

    def _cached(self, day_prefix: str | None, objects: dict[str, str], folder: Path) -> Path:
        """`folder` holding exactly `objects` (name -> ETag) of `day_prefix`: only files whose ETag changed
        are fetched again, and files no longer there removed."""
        folder.mkdir(parents=True, exist_ok=True)
        manifest_path = folder / ETAGS
        cached = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        client = self.client()

        def download(name: str) -> None:
            # One GET (download_file would send a HEAD first), written beside and renamed into place:
            # a crawl reading the cache meanwhile sees the old file or the new one.
            # Pinned to the listed version: a landing replacing the day meanwhile fails it (`_snapshot`).
            got = client.get_object(Bucket=self.bucket, Key=day_prefix + name, IfMatch=f'"{objects[name]}"')
            write_atomically(folder / name, got["Body"].read())

        changed = [n for n, etag in objects.items() if cached.get(n) != etag or not (folder / n).is_file()]
        self._pooled(download, changed, self.read_threads)
        for path in staged_files(folder):
            name = path.relative_to(folder).as_posix()
            if name not in objects and name != ETAGS:
                path.unlink()
        manifest_path.write_text(json.dumps(objects))
        return folder
