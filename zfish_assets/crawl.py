"""Crawling one day, as a Glue crawler does: infer the schema from the files, register `day=D`.

Schema drift between days is reported, never merged silently: a day whose inferred schema differs
from the table's fails its crawl with the columns that differ. The partition parameters record
what was crawled (`recordCount`, `objectCount`, `sizeKey`, as Glue's crawler does, plus a
fingerprint of the files) so a check can tell when files change behind the catalog's back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zfish_assets.resources.catalog import Catalog, Columns
from zfish_assets.resources.lake import Lake, LakeObject

PARTITION_KEYS: Columns = (("day", "string"),)
SCHEMA_SAMPLE_FILES = 1000


class SchemaDriftError(ValueError):
    """A day's files do not have the table's schema."""


@dataclass(frozen=True)
class CrawledDay:
    table: str
    day: str
    location: str
    rows: int
    files: int
    bytes: int
    columns: Columns
    registered: bool


def hive_type(value: Any, where: str) -> str:
    """The Glue/Hive type a crawler would give a JSON value (ISO timestamps stay strings)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        fields = ",".join(f"{k}:{hive_type(v, f'{where}.{k}')}" for k, v in value.items())
        return f"struct<{fields}>"
    raise ValueError(f"{where}: no catalog type for JSON value {value!r}")


def _widen(a: str, b: str) -> str | None:
    """The common type of two inferred types, or None when they conflict (int widens to double)."""
    if a == b:
        return a
    if {a, b} == {"bigint", "double"}:
        return "double"
    return None


def infer_columns(records: list[tuple[str, dict[str, Any]]]) -> Columns:
    """Columns in first-seen order; `records` are (file name, object) pairs, named in errors."""
    types: dict[str, str] = {}
    for name, record in records:
        for key, value in record.items():
            if value is None:
                continue
            found = hive_type(value, f"{name}: {key}")
            known = types.get(key)
            merged = found if known is None else _widen(known, found)
            if merged is None:
                raise SchemaDriftError(f"{name}: field {key!r} is {found}, other files of the day have {known}")
            types[key] = merged
    return tuple(types.items())


def read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of one file (one per line), failing with the file and line."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: malformed JSON ({exc.msg})") from exc
    return records


def fingerprint(objects: list[LakeObject]) -> str:
    """A digest of the day's file names, sizes and versions."""
    digest = hashlib.sha256()
    for obj in objects:
        digest.update(f"{obj.name}\0{obj.size}\0{obj.version}\n".encode())
    return digest.hexdigest()


def schema_diff(expected: Columns, found: Columns) -> str:
    """A one-line description of how `found` differs from `expected`."""
    old, new = dict(expected), dict(found)
    parts = [f"+{k} {new[k]}" for k in new if k not in old]
    parts += [f"-{k} {old[k]}" for k in old if k not in new]
    parts += [f"{k}: {old[k]} -> {new[k]}" for k in new if k in old and _widen(old[k], new[k]) is None]
    return ", ".join(parts)


def crawl_day(lake: Lake, catalog: Catalog, table: str, day: str) -> CrawledDay:
    """Infer the day's schema, check it against the table's, and register the partition.

    A day with no files registers nothing and is not an error (a day without labels).
    """
    objects = lake.list_day(table, day)
    location = lake.day_uri(table, day)
    json_objects = [o for o in objects if o.name.endswith(".json")]
    if not json_objects:
        return CrawledDay(table, day, location, 0, 0, 0, (), registered=False)
    folder = lake.local_day_dir(table, day)
    rows = 0
    sample: list[tuple[str, dict[str, Any]]] = []
    for obj in json_objects:
        records = read_records(folder / obj.name)
        rows += len(records)
        if len(sample) < SCHEMA_SAMPLE_FILES:
            sample.extend((obj.name, r) for r in records)
    columns = infer_columns(sample)
    existing = catalog.get_table(table)
    if existing is None:
        catalog.put_table(table, columns, PARTITION_KEYS, lake.table_uri(table), "json")
    else:
        diff = schema_diff(existing.columns, columns)
        if diff:
            raise SchemaDriftError(
                f"schema drift in {table} day={day} ({location}): {diff}. The table keeps its schema; "
                "fix the files or evolve the table deliberately."
            )
    size = sum(o.size for o in json_objects)
    catalog.put_partition(
        table,
        day,
        location,
        {
            "recordCount": str(rows),
            "objectCount": str(len(json_objects)),
            "sizeKey": str(size),
            "zfish.fingerprint": fingerprint(json_objects),
        },
    )
    return CrawledDay(table, day, location, rows, len(json_objects), size, columns, registered=True)
