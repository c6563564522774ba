"""What a lab's day folder holds, entry by entry: every entry is landed or named, none skipped in silence.

`zfish upload` landed the regular files under a day folder (subfolders too, for the crawl to
quarantine as `nested_file`) and passed over the rest without a word: a symbolic link to a folder
(pathlib's recursive glob does not follow it), a dangling link, a named pipe. `delivered_files`
decides each entry's fate:

- a regular file, or a symbolic link to one: landed (the link's target's bytes, under the link's name);
- a folder, or a symbolic link to one: its entries, landed under that subfolder's name as delivered
  (the crawl then quarantines them, `nested_file`); an empty subfolder is refused like the kinds
  below: the lake keeps files, not folders, so it would land as nothing, and a day folder holding
  nothing else would even retract the day (an empty delivery), where a lab's copy may have failed;
- anything else (a dangling link, a link looping back to a folder it is in, a named pipe, a socket,
  a device, an entry that cannot be read): the upload is refused before anything lands, naming each
  such entry, what it is and the fix (`UnlandableEntries`).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"))


@dataclass(frozen=True)
class Unlandable:
    """An entry of a day folder that cannot be landed, and what it is."""

    path: Path
    what: str


class UnlandableEntries(ValueError):
    """A day folder holds entries that are neither files nor folders: the upload lands nothing."""

    def __init__(self, folder: Path, entries: list[Unlandable]) -> None:
        self.folder, self.entries = folder, entries
        listed = "; ".join(f"{e.path.relative_to(folder)}: {e.what}" for e in entries)
        super().__init__(f"{folder} holds {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} that cannot be "
                         f"landed: {listed}. Replace each with the file it stands for, or remove it, then upload "
                         "again (nothing was landed)")


def _kind(mode: int) -> str:
    return next((what for test, what in KINDS if test(mode)), f"not a file or folder (mode {oct(mode)})")


def _entry_fate(path: Path, seen: frozenset[tuple[int, int]],
                files: list[Path], refused: list[Unlandable]) -> None:
    """Put `path` among the files to land (a folder: its entries), or among the refused, saying why."""
    try:
        info = os.stat(path)  # through a symbolic link
    except FileNotFoundError:
        refused.append(Unlandable(path, f"a dangling symbolic link (to {os.readlink(path)!r}, which does not exist)"))
        return
    except OSError as exc:
        refused.append(Unlandable(path, f"cannot be read ({exc.strerror})"))
        return
    if stat.S_ISREG(info.st_mode):
        files.append(path)
    elif stat.S_ISDIR(info.st_mode):
        folder_id = (info.st_dev, info.st_ino)
        if folder_id in seen:
            refused.append(Unlandable(path, f"a symbolic link to {os.readlink(path)!r}, a folder it is in (a loop)"))
        else:
            _folder_fate(path, seen | {folder_id}, files, refused, sub=True)
    else:
        refused.append(Unlandable(path, _kind(info.st_mode)))


def _folder_fate(folder: Path, seen: frozenset[tuple[int, int]],
                 files: list[Path], refused: list[Unlandable], sub: bool = False) -> None:
    """The fates of the entries of `folder` (`sub`: a subfolder of the day folder, which must hold some)."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        refused.append(Unlandable(folder, f"a folder that cannot be listed ({exc.strerror})"))
        return
    if sub and not names:
        refused.append(Unlandable(folder, "an empty folder (the lake keeps files, not folders: it would land as "
                                          "nothing)"))
    for name in names:
        _entry_fate(folder / name, seen, files, refused)


def delivered_files(folder: Path) -> list[Path]:
    """The files to land from the day folder `folder` (paths under it, through links), sorted;
    UnlandableEntries naming every entry that is neither a file nor a folder."""
    files: list[Path] = []
    refused: list[Unlandable] = []
    info = os.stat(folder)
    _folder_fate(folder, frozenset({(info.st_dev, info.st_ino)}), files, refused)
    if refused:
        raise UnlandableEntries(folder, refused)
    return sorted(files)
