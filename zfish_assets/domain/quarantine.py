"""The quarantine: rows of a day that cannot be used, each with its file, line, named reason and raw text.

A day's ledger (`layout.ledger_key`: `quarantine/<table>/day=D/quarantine.jsonl` in the lake, one JSON entry a line) is
written whole by each crawl of the day, so re-crawling replaces it. The crawl judges lines with the
shared contract (`glue_scripts/zfish_etl/contract.py`) and adds the rules across rows, which need
the whole day and the other days: a key (observations' `image_id`) seen again later in the day is
a `duplicate_key`, and one delivered on an earlier registered day is a `key_in_other_day`: the
earliest day that delivers a usable line of a key holds it, whatever order the days were crawled
in, so a day's verdict is a function of its files and the earlier days' deliveries. The keys each
day delivered are kept beside the ledger (`layout.day_keys_key`, one JSON value a
line: a string for a key the day holds, `[key, day]` for one an earlier day holds, so any key,
spaces, newlines, quotes and all, reads back exactly) for the crawls of other days, and so a crawl
can tell which days' verdicts another day's change made stale (`stale_days`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from glue_scripts.zfish_etl.contract import DUPLICATE_KEY, KEY_IN_OTHER_DAY, MALFORMED_JSON, MULTILINE_JSON, NESTED_FILE, NOT_A_DATA_FILE, Contract
from glue_scripts.zfish_etl.judging import data_lines, judge_line
from glue_scripts.zfish_etl.accepted import accepted_line
from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.ledger import Entry, format_ledger, ledger_key
from glue_scripts.zfish_etl.names import KEYS_DIGEST
from zfish_assets.resources.lake import Lake


@dataclass
class JudgedDay:
    """A day's verdict: how many rows are usable, which keys they hold, and what was quarantined."""

    rows: int = 0
    keys: list[str] = field(default_factory=list)
    deferred: dict[str, str] = field(default_factory=dict)  # keys an earlier day holds -> that day
    accepted: list[str] = field(default_factory=list)  # the usable rows, normalized, one JSON line each
    entries: list[Entry] = field(default_factory=list)
    unknown_fields: Counter = field(default_factory=Counter)
    added_members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # schema evolution by this day
    refused_members: dict[str, str] = field(default_factory=dict)  # new members that cannot be columns, why

    def reasons(self) -> dict[str, int]:
        return dict(sorted(Counter(e.reason for e in self.entries).items()))

    def quarantined_rows(self) -> int:
        """Rejected lines of data files (stray files are not rows)."""
        return sum(1 for e in self.entries if e.line)


_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"PK\x03\x04": "zip", b"\x28\xb5\x2f\xfd": "zstd"}


def stray_entry(table: str, day: str, name: str, content: bytes) -> Entry:
    """The whole-file entry of a file of the day folder that is not a data file: why, and how to fix it."""
    if "/" in name:
        reason, detail = NESTED_FILE, (f"in a subfolder of day={day}/, which no engine reads: move it into "
                                       f"day={day}/ itself and land the day again")
    else:
        packed = next((kind for magic, kind in _COMPRESSED.items() if content.startswith(magic)), None)
        reason = NOT_A_DATA_FILE
        detail = (f"{packed}-compressed: deliver it uncompressed as *.json" if packed
                  else "its name is not printable UTF-8 text: rename it" if not name.isprintable()
                  else "not a *.json data file: the job does not read it")
    return Entry.of(table, day, name, 0, reason, detail, content)


def multiline_json(content: bytes) -> str | None:
    """What a file is when its lines are not JSON but the whole file is one JSON value (an editor's
    pretty-printed object): the detail its lines get; None otherwise. No engine reads such a file
    as rows (Athena's JSON SerDe and the job take one object per line)."""
    lines = sum(1 for _ in data_lines(content))
    if lines < 2:
        return None
    try:
        whole = json.loads(content.decode("utf-8-sig"))
    except Exception:  # not one JSON value either (or not UTF-8): the lines keep their own reasons
        return None
    shape = {"dict": "object", "list": "array"}.get(type(whole).__name__, "value")
    return (f"the file is one JSON {shape} written over {lines} lines: deliver one object "
            f"per line (e.g. `jq -c . FILE`)")


def judge_day(contract: Contract, day: str, files: Iterable[tuple[str, bytes]],
              stray: Iterable[tuple[str, bytes]], taken: Mapping[str, str],
              unreadable: Iterable[tuple[str, str]] = ()) -> JudgedDay:
    """Judge a day's data `files` and `stray` files ((name, bytes), names sorted) against the contract.

    `taken` maps keys held by earlier days to their day. Within the day the first occurrence of a
    key in (file name, line) order is the one kept. `unreadable`: (name, what it is) of the entries
    that are no file to read (a dangling link, a named pipe), each quarantined whole, unopened.
    """
    judged = JudgedDay()
    seen: dict[str, str] = {}
    for name, what in unreadable:
        judged.entries.append(Entry.of(contract.table, day, name, 0, NOT_A_DATA_FILE,
                                       f"{what}: no engine reads it; replace it with the file it stands for "
                                       f"(or remove it) and land the day again", b""))
    for name, content in stray:
        judged.entries.append(stray_entry(contract.table, day, name, content))
    for name, content in files:
        pretty: str | None = None  # decided once per file, at its first malformed line
        for line, raw in data_lines(content):
            verdict = judge_line(contract, raw)
            reason, detail = verdict.reason, verdict.detail
            if reason == MALFORMED_JSON:
                if pretty is None:
                    pretty = multiline_json(content) or ""
                if pretty:
                    reason, detail = MULTILINE_JSON, pretty
            if reason is None and contract.key:
                key = verdict.row[contract.key]
                if key in taken:
                    reason, detail = KEY_IN_OTHER_DAY, f"{contract.key} {_shown_key(key)} was accepted on day={taken[key]}"
                    judged.deferred.setdefault(key, taken[key])
                elif key in seen:
                    reason, detail = DUPLICATE_KEY, f"{contract.key} {_shown_key(key)} first seen at {seen[key]}"
                else:
                    seen[key] = f"{name}:{line}"
                    judged.keys.append(key)
            if reason is not None:
                judged.entries.append(Entry.of(contract.table, day, name, line, reason, detail, raw))
            else:
                judged.rows += 1
                judged.accepted.append(accepted_line(verdict.row))
                judged.unknown_fields.update(verdict.unknown_fields)
    return judged


def _shown_key(key: str) -> str:
    """A key as a detail names it: JSON-quoted, so spaces, quotes and newlines are visible."""
    return json.dumps(key)[:200]


def keys_key(table: str, day: str) -> str:
    return layout.day_keys_key(table, day)


def encode_keys(keys: Iterable[str], deferred: Mapping[str, str] | None = None) -> bytes:
    """The day's keys file: one JSON value a line (ASCII), so every key reads back exactly: a string
    for a key the day holds, `[key, day]` for one it delivered that an earlier `day` holds."""
    held = "".join(json.dumps(k) + "\n" for k in keys)
    return (held + "".join(json.dumps([k, d]) + "\n" for k, d in (deferred or {}).items())).encode()


def decode_keys(data: bytes) -> list[str]:
    """The keys the day holds."""
    return [v for v in _key_values(data) if isinstance(v, str)]


def decode_deferred(data: bytes) -> dict[str, str]:
    """The keys the day delivered that an earlier day holds, each with the day its ledger names."""
    return {v[0]: v[1] for v in _key_values(data) if isinstance(v, list)}


def _key_values(data: bytes) -> list:
    return [json.loads(line) for line in data.decode("ascii").split("\n") if line]


def write_day(lake: Lake, contract: Contract, day: str, judged: JudgedDay) -> None:
    """Replace the day's ledger (and its keys): a re-crawl leaves exactly its own verdict."""
    lake.put_bytes(ledger_key(contract.table, day), format_ledger(judged.entries))
    if contract.key:
        lake.put_bytes(keys_key(contract.table, day), encode_keys(judged.keys, judged.deferred))


def recorded_keys(contract: Contract, judged: JudgedDay) -> dict[str, str]:
    """The partition parameter naming the keys file `write_day` wrote for `judged` (none without a key)."""
    return {KEYS_DIGEST: keys_digest(encode_keys(judged.keys, judged.deferred))} if contract.key else {}


def _delivered(lake: Lake, contract: Contract, days: Iterable[str]) -> dict[str, bytes | None]:
    """Each of `days`' keys file (None: crawled before keys files existed; a re-crawl writes it)."""
    ordered = sorted(set(days))
    return dict(zip(ordered, lake.get_many([keys_key(contract.table, d) for d in ordered])))


def keys_of_earlier_days(lake: Lake, contract: Contract, days: Iterable[str], day: str) -> dict[str, str]:
    """Keys delivered (held or deferred) on `days` before `day`, each mapped to the earliest such day:
    the day that holds it, whatever any day's last verdict said."""
    taken: dict[str, str] = {}
    for other, data in sorted(_delivered(lake, contract, [d for d in days if d < day]).items(), reverse=True):
        if data is not None:
            taken.update(dict.fromkeys([*decode_keys(data), *decode_deferred(data)], other))
    return taken


def keys_digest(data: bytes) -> str:
    """The digest of a keys file, which the crawl records on the day's partition (`KEYS_DIGEST`)."""
    return hashlib.sha256(data).hexdigest()


def stale_days(lake: Lake, contract: Contract, registered: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The `registered` days (day -> partition parameters) whose recorded verdict no longer follows from
    the earlier days' deliveries: a day holding a key an earlier day delivers, or deferring one to a day
    that is not its holder (that day retracted it, or an even earlier day delivers it); or whose keys
    file is not the one its partition records (a crawl killed between writing the day's keys and
    ledger and registering them). Read from the keys files alone (no day's files are read), in one
    pass in day order."""
    holder: dict[str, str] = {}
    stale = []
    for day, data in sorted(_delivered(lake, contract, registered).items()):
        if data is None:
            continue
        held, deferred = decode_keys(data), decode_deferred(data)
        recorded = registered[day].get(KEYS_DIGEST)
        if (any(k in holder for k in held) or any(holder.get(k) != d for k, d in deferred.items())
                or recorded not in (None, keys_digest(data))):
            stale.append(day)
        for key in (*held, *deferred):
            holder.setdefault(key, day)
    return stale
