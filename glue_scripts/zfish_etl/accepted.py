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
from collections.abc import Iterable

from glue_scripts.zfish_etl import layout

ROWS = "rows.json"


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
