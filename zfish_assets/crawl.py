"""Crawling one day, as a Glue crawler does, but against a declared contract: register `day=D`.

The table's schema is its contract (`glue_scripts/zfish_etl/contract.py`), not what a day's files
suggest: a bad day cannot redefine the table. Each line is judged; unusable rows go to the day's
quarantine with a named reason (`zfish_assets/quarantine.py`) and the good rows of the same day
still flow. The partition parameters record what was crawled (`recordCount` usable rows,
`objectCount`, `sizeKey`, as Glue's crawler does, plus the quarantined row count and a fingerprint
of the files) so a check can tell when files change behind the catalog's back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from glue_scripts.zfish_etl.contract import contract_for, is_data_file
from zfish_assets.partitions import validate_day
from zfish_assets.quarantine import JudgedDay, judge_day, keys_of_other_days, read_ledger, write_day
from zfish_assets.resources.catalog import Catalog, Columns
from zfish_assets.resources.lake import Lake, LakeObject, validate_table

PARTITION_KEYS: Columns = (("day", "string"),)
QUARANTINED_ROWS = "zfish.quarantinedRows"


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
    judged: JudgedDay = field(default_factory=JudgedDay)  # empty when a Glue crawler registered the day


def fingerprint(objects: list[LakeObject]) -> str:
    """A digest of the names, sizes and versions of every file of the day (what the crawl registers).

    Every file counts, data or not (a stray or nested file added later is a change the crawl must
    see and quarantine), whoever lists the day, so every caller agrees with the crawl.
    """
    digest = hashlib.sha256()
    for obj in sorted(objects, key=lambda o: o.name):
        digest.update(f"{obj.name}\0{obj.size}\0{obj.version}\n".encode(errors="surrogateescape"))
    return digest.hexdigest()


def judge_and_record(lake: Lake, catalog: Catalog, table: str, day: str, objects: list[LakeObject]) -> JudgedDay:
    """Judge the day's files (`objects`, as listed) against the contract and replace its quarantine
    ledger and accepted keys: what both crawl modes do, so the job leaves out the same lines."""
    contract = contract_for(validate_table(table))
    folder = lake.local_day_dir(table, validate_day(day)) if objects else None

    def read(obj: LakeObject) -> tuple[str, bytes]:
        return obj.name, (folder / obj.name).read_bytes()  # bytes: the contract decodes, strictly

    taken = keys_of_other_days(lake, contract, catalog.partition_parameters(table), day) if contract.key else {}
    judged = judge_day(contract, day, map(read, (o for o in objects if is_data_file(o.name))),
                       map(read, (o for o in objects if not is_data_file(o.name))), taken)
    if objects or read_ledger(lake, table, day) is not None:  # an empty day leaves no trace, unless it had one
        write_day(lake, contract, day, judged)
    return judged


def crawl_day(lake: Lake, catalog: Catalog, table: str, day: str) -> CrawledDay:
    """Judge the day's files against the contract, replace its quarantine, and register the partition.

    A day with no data file registers nothing and is not an error (a day without labels); its
    stray files, if any, are still quarantined so nothing in the lake goes unaccounted for.
    """
    contract = contract_for(validate_table(table))
    objects = lake.list_day(table, validate_day(day))
    location = lake.day_uri(table, day)
    data_objects = [o for o in objects if is_data_file(o.name)]
    judged = judge_and_record(lake, catalog, table, day, objects)
    size = sum(o.size for o in data_objects)
    if not data_objects:
        return CrawledDay(table, day, location, 0, 0, 0, contract.columns(), False, judged)
    existing = catalog.get_table(table)
    if existing is None or tuple(existing.columns) != contract.columns():
        catalog.put_table(table, contract.columns(), PARTITION_KEYS, lake.table_uri(table), "json")
    catalog.put_partition(
        table,
        day,
        location,
        {
            "recordCount": str(judged.rows),
            "objectCount": str(len(data_objects)),
            "sizeKey": str(size),
            QUARANTINED_ROWS: str(judged.quarantined_rows()),
            "zfish.fingerprint": fingerprint(objects),
        },
    )
    return CrawledDay(table, day, location, judged.rows, len(data_objects), size, contract.columns(), True, judged)
