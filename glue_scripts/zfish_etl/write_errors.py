"""A write that the machine refuses (a full disk, a read-only or vanished folder) ends the run at once, saying so.

Spark and Hudi report such a failure as a Java exception chain several screens long whose first
line says nothing of the disk (`SparkException: Job aborted due to stage failure`, or before
`hoodie.write.markers.type=DIRECT`, `SocketTimeoutException: Read timed out` five minutes later,
"No space left on device" being only in a background thread's trace). `os_errors` finds the
operating system's own words anywhere in the chain and raises `TableWriteError`, an OSError with
that errno, naming the table, the path when the chain names one, the cause, the room left and the
fix. `ensure_room` refuses, before a commit, a local table whose filesystem lacks the room the
commit may take. Python's own writes fail at once but name no path (`write()` on a full disk:
`[Errno 28] No space left on device`, and `shutil.copy2` names its *source*): `writing` names the
file being written and the room left.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from glue_scripts.zfish_etl.files import is_s3, local_path

ROOM_MARGIN = 8 * 2**20
"""Room a commit needs beyond the files it may rewrite: its timeline files, markers and key digests."""

# The strerror texts of the errors a write can meet on a local or mounted filesystem, as the JVM
# and Python print them (both use the C library's strerror).
OS_ERRORS = {code: os.strerror(code) for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO)}


class TableWriteError(OSError):
    """Writing the table failed for a reason of the machine's (errno set), not of the data."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def os_error_in(exc: BaseException) -> tuple[int, str] | None:
    """(errno, the chain's text) of the first OS error the chain names, most telling first (ENOSPC before EIO)."""
    text = "\n".join(str(e) for e in _chain(exc))
    for code, words in OS_ERRORS.items():
        if words in text:
            return code, text
    return None


def room(path: Path) -> str:
    """The free and total space of the filesystem holding `path` (its nearest existing ancestor)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    return f"{usage.free / 2**20:.1f} MiB free of {usage.total / 2**20:.1f} MiB"


@contextmanager
def os_errors(table_path: str) -> Iterator[None]:
    """Turn a failure whose chain names an OS error into TableWriteError naming the table, path and cause."""
    try:
        yield
    except TableWriteError:
        raise
    except Exception as exc:
        found = os_error_in(exc)
        if found is None:
            raise
        code, text = found
        where = local_path(table_path) if not is_s3(table_path) else None
        named = re.search(re.escape(str(where)) + r"[^\s:'\"]*", text, re.ASCII) if where else None
        path = named.group(0) if named else table_path
        left = f" ({room(where)} on its filesystem)" if where else ""
        raise TableWriteError(
            code, f"writing {table_path} failed: {os.strerror(code)} at {path}{left}. The table stays at its last "
                  "commit; fix the cause (free room, permissions), then run again: the next run rolls the failed "
                  "commit back", path) from exc


@contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """Re-raise an OSError of the body as one naming `path` (the file or folder being written) and the room left:
    a full disk or quota always, another error when it names no file (one naming a file, a source that
    cannot be read, is right as it is)."""
    try:
        yield
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        if exc.errno is None or (exc.filename is not None and not full) or getattr(exc, NAMED, False):
            raise  # an inner `writing` named the innermost path already: said once
        left = f"; {room(Path(path))} there" if full else ""
        named = OSError(exc.errno, f"{exc.strerror}: writing {path}{left}", str(path))
        setattr(named, NAMED, True)
        raise named from exc


NAMED = "zfish_names_target"
"""Set on the OSError `writing` raises, so that an enclosing `writing` keeps it as it is."""


def folder_bytes(folder: Path) -> int:
    """Bytes of the files directly in `folder` (0 when it does not exist)."""
    if not folder.is_dir():
        return 0
    with os.scandir(folder) as entries:
        return sum(e.stat().st_size for e in entries if e.is_file())


def ensure_room(table_path: str, days: set[str]) -> None:
    """Refuse (ENOSPC, naming the room) a commit to a local table that may not fit: copy-on-write may
    rewrite every file of `days`, plus ROOM_MARGIN. S3 has no such limit."""
    if is_s3(table_path) or not days:
        return
    table = local_path(table_path)
    needed = sum(folder_bytes(table / f"day={day}") for day in days) + ROOM_MARGIN
    existing = table
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise TableWriteError(
            errno.ENOSPC, f"not enough room to write {table_path}: the commit may rewrite {len(days)} day folder(s) "
                          f"and needs about {needed / 2**20:.1f} MiB, the filesystem has {room(table)}. Free room "
                          "there, then run again (nothing was written)", str(table))
