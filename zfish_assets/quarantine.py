"""The quarantine: rows of a day that cannot be used, each with its file, line, named reason and raw text.

A day's ledger (`quarantine/<table>/day=D/quarantine.jsonl` in the lake, one JSON entry a line) is
written whole by each crawl of the day, so re-crawling replaces it. The crawl judges lines with the
shared contract (`glue_scripts/zfish_etl/contract.py`) and adds the rules across rows, which need
the whole day and the other days: a key (observations' `image_id`) seen again later in the day is
a `duplicate_key`, and one already accepted on another registered day is a `key_in_other_day` (the
first crawled delivery keeps it). The keys each day accepted are kept beside the ledger in
`_zfish/keys/<table>/day=D.txt` for the crawls of other days.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from glue_scripts.zfish_etl.contract import (
    DUPLICATE_KEY,
    KEY_IN_OTHER_DAY,
    NOT_A_DATA_FILE,
    RAW_LIMIT,
    Contract,
    check_line,
    data_lines,
    ledger_key,
)
from zfish_assets.resources.lake import Lake


@dataclass(frozen=True)
class Entry:
    """One quarantined row (or a whole stray file: `line` 0)."""

    table: str
    day: str
    file: str
    line: int
    reason: str
    detail: str
    raw: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False, sort_keys=True)


@dataclass
class JudgedDay:
    """A day's verdict: how many rows are usable, which keys they hold, and what was quarantined."""

    rows: int = 0
    keys: list[str] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    unknown_fields: Counter = field(default_factory=Counter)

    def reasons(self) -> dict[str, int]:
        return dict(sorted(Counter(e.reason for e in self.entries).items()))

    def quarantined_rows(self) -> int:
        """Rejected lines of data files (stray files are not rows)."""
        return sum(1 for e in self.entries if e.line)


def judge_day(contract: Contract, day: str, files: Iterable[tuple[str, str]], stray: Iterable[tuple[str, str]],
              taken: Mapping[str, str]) -> JudgedDay:
    """Judge a day's data `files` and `stray` files ((name, text), names sorted) against the contract.

    `taken` maps keys accepted on other days to their day. Within the day the first occurrence of a
    key in (file name, line) order is the one kept.
    """
    judged = JudgedDay()
    seen: dict[str, str] = {}
    for name, content in stray:
        judged.entries.append(Entry(contract.table, day, name, 0, NOT_A_DATA_FILE,
                                    "not a *.json data file: the job does not read it", content[:RAW_LIMIT]))
    for name, content in files:
        for line, text in data_lines(content):
            verdict = check_line(contract, text)
            reason, detail = verdict.reason, verdict.detail
            if reason is None and contract.key:
                key = verdict.row[contract.key]
                if key in taken:
                    reason, detail = KEY_IN_OTHER_DAY, f"{contract.key} {key} was accepted on day={taken[key]}"
                elif key in seen:
                    reason, detail = DUPLICATE_KEY, f"{contract.key} {key} first seen at {seen[key]}"
                else:
                    seen[key] = f"{name}:{line}"
                    judged.keys.append(key)
            if reason is not None:
                judged.entries.append(Entry(contract.table, day, name, line, reason, detail, text[:RAW_LIMIT]))
            else:
                judged.rows += 1
                judged.unknown_fields.update(verdict.unknown_fields)
    return judged


def keys_key(table: str, day: str) -> str:
    return f"_zfish/keys/{table}/day={day}.txt"


def write_day(lake: Lake, contract: Contract, day: str, judged: JudgedDay) -> None:
    """Replace the day's ledger (and its accepted keys): a re-crawl leaves exactly its own verdict."""
    lake.put_bytes(ledger_key(contract.table, day), "".join(e.to_json() + "\n" for e in judged.entries).encode())
    if contract.key:
        lake.put_bytes(keys_key(contract.table, day), "".join(k + "\n" for k in judged.keys).encode())


def keys_of_other_days(lake: Lake, contract: Contract, days: Iterable[str], day: str) -> dict[str, str]:
    """Keys accepted on `days` other than `day`, mapped to their day (earliest day first wins the map)."""
    taken: dict[str, str] = {}
    for other in sorted(set(days) - {day}, reverse=True):
        try:
            text = lake.get_bytes(keys_key(contract.table, other)).decode()
        except FileNotFoundError:
            continue  # registered before quarantines existed: re-crawl that day to index its keys
        taken.update(dict.fromkeys(text.split(), other))
    return taken


def read_ledger(lake: Lake, table: str, day: str) -> list[Entry] | None:
    """The day's quarantine entries; None when the day was never crawled with a quarantine."""
    try:
        text = lake.get_bytes(ledger_key(table, day)).decode()
    except FileNotFoundError:
        return None
    return [Entry(**json.loads(line)) for line in text.splitlines() if line.strip()]
