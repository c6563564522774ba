"""Metadata that stays small however large the input: each list or mapping in an event is a sample plus a count.

Dagster keeps every event's metadata in its event log and the UI renders it whole, so a value that
grows with the data grows every event: a crawl of a day whose rows carried 50,000 extra field
names wrote one `unknown_fields` event naming all 50,000. `bounded` caps every list and mapping,
at any depth, at `MAX_SHOWN` entries: a longer one becomes `{"count": N, "shown": <the first
MAX_SHOWN>, "not_shown": N - MAX_SHOWN}` (a mapping of numbers shows its largest values first, a
set its smallest members), so the UI says how many there were and names a sample. Values within
the cap keep their shape. Text is capped too: a name from the data (an undeclared field's, a
gene's) can be any length, and a sample of 100 names of a megabyte each is 100 MB; a string or key
over `MAX_TEXT` characters keeps its start and says its length (`shortened`). And the caps do not
multiply: a value shows `MAX_LEAVES` values in all (the weekly quarantine check's days, each with
its files, named 10,000 files at 100 a day); past that a container shows its count only. Every JSON
value the assets, checks and IO manager record goes through `bounded_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import MetadataValue

MAX_SHOWN = 100
MAX_TEXT = 200
MAX_LEAVES = 1000
"""Values one metadata value shows in all, however its containers nest."""


def shortened(text: str, limit: int = MAX_TEXT) -> str:
    """`text` when it has at most `limit` characters; else its start and its length, e.g.
    `"xxxx… (5000 characters)"` (what the UI then shows of a name from the data)."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _keys(items: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Mapping items with long text keys shortened, numbered where two long keys shorten alike."""
    seen: set[Any] = set()
    out = []
    for key, value in items:
        short = shortened(key) if isinstance(key, str) else key
        n = 1
        while short != key and short in seen:
            n += 1
            short = f"{shortened(key)} #{n}"
        seen.add(short)
        out.append((short, value))
    return out


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _capped(items: list[Any], shown: Any) -> dict[str, Any]:
    return {"count": len(items), "shown": shown, "not_shown": len(items) - len(shown)}


def bounded(value: Any) -> Any:
    """`value` with every list, tuple, set and mapping in it cut to MAX_SHOWN entries plus their count,
    every string in it (keys too) to MAX_TEXT characters plus its length, and MAX_LEAVES values in all."""
    return _bounded(value, [MAX_LEAVES])


def _bounded(value: Any, budget: list[int]) -> Any:
    """`bounded`, `budget[0]` the values (leaves) still to show: a container met once it is spent shows
    its count only, so nesting cannot multiply the caps (100 days of 100 files each)."""
    if not isinstance(value, (Mapping, list, tuple, set, frozenset)):
        budget[0] -= 1
        return shortened(value) if isinstance(value, str) else value
    room = max(0, min(MAX_SHOWN, budget[0]))
    if isinstance(value, Mapping):
        items = list(value.items())
        if len(items) <= room:
            return {key: _bounded(v, budget) for key, v in _keys(items)}
        if all(_is_number(v) for _, v in items):
            items.sort(key=lambda kv: (-kv[1], str(kv[0])))
        return _capped(items, {key: _bounded(v, budget) for key, v in _keys([(str(k), v) for k, v in items[:room]])})
    items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
    if len(items) <= room:
        return [_bounded(v, budget) for v in items]
    return _capped(items, [_bounded(v, budget) for v in items[:room]])


def bounded_json(value: Any) -> Any:
    """A JSON metadata value of `bounded(value)`."""
    return MetadataValue.json(bounded(value))
