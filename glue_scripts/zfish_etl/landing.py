"""Where a day being landed on S3 is readable meanwhile: the landing's marker, shared by the lake and the job.

S3 replaces a day object by object, so a reader listing the day folder mid-landing would see old
and new files mixed. The landing therefore first copies the current files aside (a `previous`
prefix, server-side) and writes the day's marker naming that copy; only then does it upload the
new files into the day folder, and it deletes the marker once the folder holds the new day whole.
While a marker exists every reader (the lake's listing for the sensor and the crawl, and this job)
reads the `previous` copy instead of the folder: the old day, whole, or no day when there was
none. A killed landing leaves the marker, so readers keep reading the old day until the next
landing of that day completes and removes it.

    <prefix>/<table>/day=D/                      the day (the walkthrough's layout, untouched)
    <prefix>/<landing dir>/<table>/day=D.json    the marker: {"previous": <key under prefix> | null}
    <prefix>/<landing dir>/<table>/day=D/...     the previous copy (removed at the end)

(`layout.landing_dir()`, `layout.marker_key`, `layout.staging_prefix`).

The marker lives outside the table's prefix, so a Glue crawler of the table never sees it.
"""

from __future__ import annotations

import json

from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.files import join, list_folders, read_files
from glue_scripts.zfish_etl.layout import marker_key, staging_prefix

__all__ = ["marker_key", "readable_folders", "staging_prefix"]


def _parts(folder: str) -> tuple[str, str, str]:
    """(prefix URI, table, day) of a day folder URI `<prefix>/<table>/day=D`."""
    prefix, table, name = folder.rstrip("/").rsplit("/", 2)
    if not name.startswith("day="):
        raise ValueError(f"{folder!r} is not a day folder (<prefix>/<table>/day=YYYY-MM-DD)")
    return prefix, table, name.removeprefix("day=")


def readable_folders(folders: list[str]) -> list[str | None]:
    """For each day folder URI, the folder holding its readable version: itself, or while a landing
    replaces it, the previous copy (None: the day had no previous version, so nothing is readable)."""
    parts = [_parts(folder) for folder in folders]
    # The markers are found by listing each table's landing folder once (a GET of a missing key is
    # AccessDenied, not NoSuchKey, for a role that may list the lake's prefix only), then read.
    landing = sorted({f"{prefix}/{layout.landing_table_dir(table)}" for prefix, table, _ in parts})
    present = {join(folder, name) for folder, names in zip(landing, list_folders(landing)) for name in names}
    markers = [f"{prefix}/{marker_key(table, day)}" for prefix, table, day in parts]
    wanted = [m for m in markers if m in present]
    contents = dict(read_files(wanted))
    found = []
    for folder, (prefix, _, _), marker in zip(folders, parts, markers):
        if marker not in contents:
            found.append(folder)
            continue
        previous = json.loads(contents[marker])["previous"]
        found.append(f"{prefix}/{previous.rstrip('/')}" if previous else None)
    return found
