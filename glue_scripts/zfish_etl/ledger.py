"""The quarantine ledger's format: where a day's ledger lives and how its entries are written and read.

Both sides read it (the crawl writes it; the job and DuckDB's views leave out the lines it names),
so its format is stated here once, Spark-free. A day's ledger is JSON lines, one `Entry` a line,
ASCII (`json.dumps` escapes), so any text the lab sent survives it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from glue_scripts.zfish_etl.contract import RAW_LIMIT
from glue_scripts.zfish_etl.judging import shown_raw
from glue_scripts.zfish_etl.layout import ledger_key

__all__ = ["Entry", "format_ledger", "ledger_key", "ledger_uri", "parse_ledger"]


def ledger_uri(table_location: str, day: str) -> str:
    """The ledger's URI from the raw table's location `<lake prefix>/<table>` (what the catalog holds)."""
    prefix, _, table = table_location.rstrip("/").rpartition("/")
    return f"{prefix}/{ledger_key(table, day)}"


@dataclass(frozen=True)
class Entry:
    """One quarantined row (or a whole stray file: `line` 0).

    `raw` is the delivered text (bytes that are not UTF-8 shown as `\\xNN`); when the bytes are not
    UTF-8, `raw_base64` holds them exactly, so nothing the lab sent is lost in the ledger.
    """

    table: str
    day: str
    file: str
    line: int
    reason: str
    detail: str
    raw: str
    raw_base64: str = ""

    @classmethod
    def of(cls, table: str, day: str, file: str, line: int, reason: str, detail: str, raw: bytes) -> Entry:
        kept = raw[:4 * RAW_LIMIT]
        try:
            kept.decode("utf-8")
            exact = ""
        except UnicodeDecodeError:
            exact = base64.b64encode(kept).decode()
        return cls(table, day, file, line, reason, detail, shown_raw(raw), exact)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)  # ASCII: any text the lab sent survives the ledger


def format_ledger(entries: Iterable[Entry]) -> bytes:
    """A day's ledger file: one entry a line."""
    return "".join(entry.to_json() + "\n" for entry in entries).encode()


def parse_ledger(data: bytes) -> list[Entry]:
    """The entries of a ledger file (blank lines ignored)."""
    return [Entry(**json.loads(line)) for line in data.decode("utf-8").splitlines() if line.strip()]


def read_ledger(get_bytes: Callable[[str], bytes], table: str, day: str) -> list[Entry] | None:
    """The day's quarantine entries through `get_bytes(key)` (a lake's); None when the day has no ledger."""
    try:
        return parse_ledger(get_bytes(ledger_key(table, day)))
    except FileNotFoundError:
        return None
