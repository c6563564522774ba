"""A small lake of observation days for the crawl's tests without Spark: days delivered as lists of keys, what the
crawls left (registrations and quarantines), and what the final lake alone implies, computed from the delivered
keys, never from the crawl's records.

A key (observations' `image_id`) belongs to the earliest day that delivers a usable line of it;
every other delivery of it is quarantined as `key_in_other_day`, naming that day.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from hypothesis import strategies as st

from glue_scripts.zfish_etl.accepted import rows_key
from glue_scripts.zfish_etl.ledger import read_ledger
from zfish_assets.domain.glue_crawler import crawl
from zfish_assets.resources.data_catalog import Catalog, LocalCatalog
from zfish_assets.resources.lake import Lake, LocalLake

DAYS = ("2025-04-25", "2025-04-26", "2025-04-27")
KEYS = ("X", "Y", "Z")

DAY_KEYS = st.lists(st.sampled_from(KEYS), max_size=3)
"""One delivery of a day: the keys its lines carry, repeats allowed, none for an emptied day."""
DELIVER_OR_CRAWL = (st.tuples(st.just("deliver"), st.sampled_from(DAYS), DAY_KEYS),
                    st.tuples(st.just("crawl"), st.sampled_from(DAYS), st.just([])))
"""The steps of a delivery history: a day delivered anew, or a day crawled."""


def line(key: str, fish: str = "zfish_A") -> str:
    return json.dumps({"fish_id": fish, "image_id": key, "timestamp": "2025-04-25T09:00:00Z", "age_days": 5,
                       "treatment": "control", "genetic_markers": {"gene_a": 0.1, "gene_b": 0.2, "gene_c": 0.3},
                       "length_mm": 4.5, "sex": "F"})


def make_lake(root: Path) -> tuple[LocalLake, LocalCatalog]:
    return LocalLake(root=str(root / "lake"), prefix="p"), LocalCatalog(root=str(root / "catalog"), database="db")


def deliver(lake: Lake, table: str, day: str, keys: list[str]) -> None:
    """Replace the day's folder with one file of a line per key (none: the day is retracted)."""
    def write(folder: Path) -> None:
        if keys:
            (folder / "obs.json").write_text("".join(line(k) + "\n" for k in keys))
    lake.land_day(table, day, write)



def play(lake: Lake, catalog: Catalog, history: Iterable[tuple[str, str, object]],
         other: Callable[[str, str, object], None] | None = None) -> tuple[dict[str, list[str]], set[str]]:
    """Play a history of `DELIVER_OR_CRAWL` steps on observations (any other action goes to `other`): each
    day's last delivery, and the days delivered since their last crawl."""
    delivered: dict[str, list[str]] = {day: [] for day in DAYS}
    changed: set[str] = set()
    for action, day, what in history:
        if action == "deliver":
            deliver(lake, "observations", day, what)
            delivered[day], changed = list(what), changed | {day}
        elif action == "crawl":
            crawl(lake, catalog, "observations", day)
            changed.discard(day)
        else:
            other(action, day, what)
    return delivered, changed

def outcome(lake: Lake, catalog: Catalog, table: str = "observations") -> dict:
    """What the crawls left: per registered day its accepted keys (from the accepted rows the
    partition points at) and its count; per day its quarantine as (line, reason, detail)."""
    base = lake.uri().rstrip("/") + "/"
    found = catalog.get_table(table)
    registered = {}
    for day, location in (found.partitions if found else {}).items():
        rows = lake.get_bytes(rows_key(location.removeprefix(base))).decode().splitlines()
        registered[day] = (sorted(json.loads(r).get("image_id", r) for r in rows),
                           catalog.partition_parameters(table)[day]["recordCount"])
    quarantined = {day: sorted((e.line, e.reason, e.detail) for e in read_ledger(lake.get_bytes, table, day) or [])
                   for day in DAYS}
    return {"registered": registered, "quarantined": {d: q for d, q in quarantined.items() if q}}


def expected(delivered: dict[str, list[str]]) -> dict:
    """The outcome the final lake alone implies: the earliest day delivering a key holds it."""
    holder: dict[str, str] = {}
    registered, quarantined = {}, {}
    for day in sorted(delivered):
        keys = delivered[day]
        if not keys:
            continue
        accepted, entries, seen = [], [], set()
        for number, key in enumerate(keys, start=1):
            if key in holder and holder[key] != day:
                entries.append((number, "key_in_other_day", f'image_id "{key}" was accepted on day={holder[key]}'))
            elif key in seen:
                entries.append((number, "duplicate_key", f'image_id "{key}" first seen at obs.json:{keys.index(key) + 1}'))
            else:
                seen.add(key)
                accepted.append(key)
        for key in seen:
            holder.setdefault(key, day)
        registered[day] = (sorted(accepted), str(len(accepted)))
        if entries:
            quarantined[day] = sorted(entries)
    return {"registered": registered, "quarantined": quarantined}
