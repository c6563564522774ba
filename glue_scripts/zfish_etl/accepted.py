"""The accepted rows of a crawled day: what the catalog's partition points at, so Athena reads the contract.

A Glue table over the raw day folders would make Athena read every line the lab delivered: a
quarantined line is counted, and one that its JSON SerDe cannot parse (a truncated line, `"ten"`
for a bigint) fails every query that reaches the file. So the crawl writes the day's accepted rows,
normalized by the contract (`judge_line`'s rows: declared fields only, timestamps in UTC), as one
JSON Lines object of their own, and registers the partition there:

    <prefix>/<table>/day=D/...                                 the raw files (the walkthrough's, untouched)
    <prefix>/<accepted dir>/<table>/day=D/<digest>/rows.json  the accepted rows, one object a line (layout.py)

JSON Lines, not Parquet: the table keeps the JSON SerDe a Glue crawler gives it, and Athena needs
a table and its partitions in one data format; every accepted value is one the SerDe reads as the
declared column type (the contract's domains). `<digest>` is the SHA-256 of the object's bytes:
a re-crawl of unchanged files writes the same object at the same key, and a changed day gets a new
folder, registered before the old one is removed, so a query reads one version whole. The prefix
sits outside the table's folder, so a crawler of the table never sees it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping

from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.names import FINGERPRINT

ROWS = "rows.json"
_ACCEPTED = re.compile(rf"/{re.escape(layout.accepted_dir())}/[^/]+/day=[^/]+/(?P<digest>[0-9a-f]{{64}})/?\Z")


def accepted_line(row: dict) -> str:
    """One accepted row as its line: compact JSON, ASCII (escapes survive every reader)."""
    return json.dumps(row, separators=(",", ":"))


def encode_rows(lines: Iterable[str]) -> bytes:
    """The accepted object's bytes: one line a row, each ended by a newline (no rows: empty)."""
    return "".join(line + "\n" for line in lines).encode()


def day_prefix(table: str, day: str) -> str:
    """The folder (key under the lake prefix, no trailing `/`) of a day's accepted versions."""
    return layout.accepted_day(table, day)


def version_folder(table: str, day: str, data: bytes) -> str:
    """The folder (key under the lake prefix) of the accepted object holding `data`: content-addressed."""
    return f"{day_prefix(table, day)}/{hashlib.sha256(data).hexdigest()}"


def rows_key(folder: str) -> str:
    """The accepted object's key inside its version folder."""
    return f"{folder}/{ROWS}"


def day_fingerprint(location: str, parameters: Mapping[str, str]) -> str | None:
    """A crawled day's fingerprint: equal only where the job reads the same rows from the day (both sides
    compare it: the IO manager's no-news skip, the job's days without news); None when the crawl
    recorded none.

    Where the partition points at the day's accepted rows (this module's object), the folder is named by
    the rows' SHA-256: a digest of what the job computes from the day, whoever delivered the files
    and when. The crawl's own fingerprint of the files is not used there, because on a local lake it
    includes each file's mtime: an identical re-delivery (a rerun's landing) would be news. Anywhere
    else, the crawl's fingerprint and usable row count, and the location.
    """
    found = _ACCEPTED.search(location)
    if found:
        return f"rows:{found['digest']}"
    files = parameters.get(FINGERPRINT)
    return f"files:{files}:{parameters.get('recordCount', '')}:{location}" if files else None


def data_fingerprint(files: Iterable[tuple[str, int, str]]) -> str:
    """A digest of a day's data files as (name, bytes, version) (`files.list_versioned`, `LakeObject`):
    what the crawl records (`DATA_FINGERPRINT`) and the job compares before it passes over a day
    (`read.as_crawled`). The version, not only the sizes: a file rewritten in place with as many bytes
    (a value corrected to one of the same width) keeps the day's count and bytes, and must still be
    read. Data files only, as the job lists them, so a stray file beside them changes nothing read."""
    digest = hashlib.sha256()
    for name, size, version in sorted(files):
        digest.update(f"{name}\0{size}\0{version}\n".encode(errors="surrogateescape"))
    return digest.hexdigest()

