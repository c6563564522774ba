"""Where a day being landed on S3 is readable meanwhile: the landing's marker, shared by the lake and the job.

S3 replaces a day object by object, so a reader listing the day folder mid-landing would see old
and new files mixed. The landing therefore uploads the new files to staging keys first, copies the
current files to a `previous` prefix, and only then writes the day's marker and copies the new
files into the day folder; it deletes the marker once the folder holds the new day whole. While a
marker exists every reader (the lake's listing for the sensor and the crawl, and this job) reads
the `previous` copy instead of the folder: the old day, whole, or no day when there was none. A
killed landing leaves the marker, so readers keep reading the old day until the next landing of
that day completes and removes it.

    <prefix>/<table>/day=D/                      the day (the walkthrough's layout, untouched)
    <prefix>/_zfish/landing/<table>/day=D.json   the marker: {"previous": <key under prefix> | null}
    <prefix>/_zfish/landing/<table>/day=D/...    staging and the previous copy (removed at the end)

The marker lives outside the table's prefix, so a Glue crawler of the table never sees it.
"""

from __future__ import annotations

import json

from glue_scripts.zfish_etl.files import read_files

LANDING_DIR = "_zfish/landing"


def marker_key(table: str, day: str) -> str:
    """The marker of a day being replaced, as a key under the lake prefix."""
    return f"{LANDING_DIR}/{table}/day={day}.json"


def staging_prefix(table: str, day: str) -> str:
    """The folder (key under the lake prefix, trailing `/`) of a landing's staging and previous copies."""
    return f"{LANDING_DIR}/{table}/day={day}/"


def _parts(folder: str) -> tuple[str, str, str]:
    """(prefix URI, table, day) of a day folder URI `<prefix>/<table>/day=D`."""
    prefix, table, name = folder.rstrip("/").rsplit("/", 2)
    if not name.startswith("day="):
        raise ValueError(f"{folder!r} is not a day folder (<prefix>/<table>/day=YYYY-MM-DD)")
    return prefix, table, name.removeprefix("day=")


def readable_folders(folders: list[str]) -> list[str | None]:
    """For each day folder URI, the folder holding its readable version: itself, or while a landing
    replaces it, the previous copy (None: the day had no previous version, so nothing is readable)."""
    markers = []
    for folder in folders:
        prefix, table, day = _parts(folder)
        markers.append(f"{prefix}/{marker_key(table, day)}")
    found = []
    for folder, (_, content) in zip(folders, read_files(markers, missing_ok=True)):
        if content is None:
            found.append(folder)
            continue
        previous = json.loads(content)["previous"]
        found.append(f"{_parts(folder)[0]}/{previous.rstrip('/')}" if previous else None)
    return found
