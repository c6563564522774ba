"""Crawling one day, as a Glue crawler does, but against a declared contract: register `day=D`.

The table's schema is its contract (`glue_scripts/zfish_etl/contract.py`), not what a day's files
suggest: a bad day cannot redefine the table. Each line is judged; unusable rows go to the day's
quarantine with a named reason (`zfish_assets/domain/quarantine.py`) and the good rows of the same day
still flow. The partition parameters record what was crawled (`recordCount` usable rows,
`objectCount`, `sizeKey`, as Glue's crawler does, plus the quarantined row count and a fingerprint
of the files) so a check can tell when files change behind the catalog's back.

The partition's location is not the raw day folder but the day's accepted rows, written by the
crawl as an object of their own (`glue_scripts/zfish_etl/accepted.py`): Athena, and any engine that
reads the catalog's tables, reads exactly the rows the contract accepted, typed as declared. The
raw files stay as delivered. Order, for crash safety: the new object is written, the partition
pointed at it, and only then are the day's other accepted versions removed; a crawl killed
between two steps leaves the partition on one whole version, and the next crawl finishes.

A day whose folder holds no data file any more (the lab retracted the whole day) is dropped: its
partition deleted, then its accepted rows and keys, so the catalog registers exactly the days with
data files and the join removes the day's rows from the joined table.

The order days are crawled in does not matter (`follow_other_days`): a key belongs to the
earliest day that delivers it, and every crawl ends by re-judging the days whose recorded verdict
the lake no longer supports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.accepted import data_fingerprint, day_prefix, encode_rows, rows_key, version_folder
from glue_scripts.zfish_etl.contract import Contract, contract_for
from zfish_assets.partitions import validate_day
from glue_scripts.zfish_etl.ledger import read_ledger
from zfish_assets.domain.quarantine import (
    JudgedDay, judge_day, keys_key, keys_of_earlier_days, recorded_keys, stale_days, write_day,
)
from zfish_assets.resources.data_catalog import Catalog, Columns
from zfish_assets.resources.lake import Lake, LakeObject, validate_table
from zfish_assets.dagster_names import DATA_FINGERPRINT, FINGERPRINT, QUARANTINED_ROWS

PARTITION_KEYS: Columns = (("day", "string"),)


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
    rejudged: tuple[str, ...] = ()  # other days this crawl re-judged (`follow_other_days`)
    others: tuple[CrawledDay, ...] = ()  # those days' own crawls: their partitions' figures changed too
    dropped: bool = False  # the day was registered and is no more (retracted: `retract_day`)


def fingerprint(objects: list[LakeObject]) -> str:
    """A digest of the names, sizes and versions of every file of the day (what the crawl registers).

    Every file counts, data or not (a stray or nested file added later is a change the crawl must
    see and quarantine), whoever lists the day, so every caller agrees with the crawl.
    """
    digest = hashlib.sha256()
    for obj in sorted(objects, key=lambda o: o.name):
        digest.update(f"{obj.name}\0{obj.size}\0{obj.version}\n".encode(errors="surrogateescape"))
    return digest.hexdigest()


def current_contract(catalog: Catalog, table: str) -> Contract:
    """The table's contract as evolved so far: declared fields plus the members its catalog table holds."""
    existing = catalog.get_table(table)
    return contract_for(table).evolve_from_columns(existing.columns if existing else ())


def judge_and_record(lake: Lake, catalog: Catalog, table: str, day: str,
                     objects: list[LakeObject]) -> tuple[JudgedDay, Contract]:
    """Judge the day's files (`objects`, as listed) against the contract and replace its quarantine
    ledger and accepted keys: what both crawl modes do, so the job leaves out the same lines.

    A new member of an open struct (a new gene) evolves the contract first: the day is then judged
    with it, and the evolved contract is returned for the catalog.
    """
    contract = current_contract(catalog, validate_table(table))
    folder = lake.local_day_dir(table, validate_day(day)) if objects else None

    def read(obj: LakeObject) -> tuple[str, bytes]:
        return obj.name, (folder / obj.name).read_bytes()  # bytes: the contract decodes, strictly

    def judge(contract: Contract) -> JudgedDay:
        return judge_day(contract, day, map(read, (o for o in objects if o.is_data())),
                         map(read, (o for o in objects if not o.is_data() and not o.unreadable)), taken,
                         [(o.name, o.unreadable) for o in objects if o.unreadable])

    taken = keys_of_earlier_days(lake, contract, catalog.partition_parameters(table), day) if contract.key else {}
    judged = judge(contract)
    evolved = contract.evolve(contract.new_members(judged.unknown_fields))
    refused = contract.refused_members(judged.unknown_fields)
    if evolved != contract:
        before = contract.members()
        contract, judged = evolved, judge(evolved)
        judged.added_members = {s: tuple(m for m in names if m not in before.get(s, ()))
                                for s, names in evolved.members().items() if names != before.get(s, ())}
    judged.refused_members = refused
    if objects or read_ledger(lake.get_bytes, table, day) is not None:  # an empty day leaves no trace, unless it had one
        write_day(lake, contract, day, judged)
    return judged, contract


def register_columns(lake: Lake, catalog: Catalog, table: str, contract: Contract, attempts: int = 5) -> Columns:
    """Make the catalog table hold the contract's columns, never dropping a member another crawl added.

    Crawls of several days run at once: each merges the members it found with those the table
    holds, writes, and reads back, until the table holds its members (a concurrent writer that
    removed them is undone by the next round).
    """
    for _ in range(attempts):
        existing = catalog.get_table(table)
        held = contract_for(table).evolve_from_columns(existing.columns if existing else ())
        merged = held.evolve(contract.members()).columns()
        if existing is not None and tuple(existing.columns) == merged:
            return merged
        catalog.put_table(table, merged, PARTITION_KEYS, lake.table_uri(table), "json")
    raise RuntimeError(f"{catalog.database}.{table}: its columns kept changing under {attempts} crawls' updates; "
                       "run the crawl again")


def write_accepted(lake: Lake, table: str, day: str, judged: JudgedDay) -> str:
    """Write the day's accepted rows as their content-addressed object; the URI of its folder (what
    the partition registers). The same rows give the same key: a re-crawl rewrites identical bytes."""
    data = encode_rows(judged.accepted)
    folder = version_folder(table, day, data)
    lake.put_bytes(rows_key(folder), data)
    return lake.uri(folder)


def remove_superseded(lake: Lake, table: str, day: str, registered: str) -> None:
    """Remove the day's accepted versions other than the one at `registered` (the URI the partition
    now points at): only called once the catalog no longer names them."""
    folder = registered.removeprefix(lake.uri("")).strip("/") + "/"
    lake.delete_keys([k for k in lake.list_keys(day_prefix(table, day)) if not k.startswith(folder)])


def register_accepted(lake: Lake, catalog: Catalog, table: str, day: str, judged: JudgedDay,
                      parameters: dict[str, str]) -> str:
    """Write the day's accepted rows, point the partition at them with `parameters`, then remove the
    versions it no longer names; the registered location.

    Two crawls of one day at once would leave the partition on the version the other removed: crawls of
    a table take turns (`glue_crawler.crawl`), and `partitions_match_lake` names such a day (a crawl repairs it)."""
    location = write_accepted(lake, table, day, judged)
    catalog.put_partition(table, day, location, parameters)
    remove_superseded(lake, table, day, location)
    return location


def retract_day(lake: Lake, catalog: Catalog, table: str, day: str) -> bool:
    """Drop a day with no data file: its partition first (so nothing names its accepted rows), then
    its accepted rows and keys; whether a partition was dropped. Idempotent: a crawl killed between
    the steps is finished by the next."""
    registered = day in catalog.partition_parameters(table)
    if registered:
        catalog.delete_partition(table, day)
    lake.delete_keys([*lake.list_keys(day_prefix(table, day)), keys_key(table, day)])
    return registered


def crawl_day(lake: Lake, catalog: Catalog, table: str, day: str, own_schema: bool = True) -> CrawledDay:
    """Judge the day's files against the contract, replace its quarantine, and register the partition.

    A day with no data file registers nothing and is not an error (a day without labels, or one
    retracted: `retract_day`); its stray files, if any, are still quarantined so nothing in the lake
    goes unaccounted for. `own_schema=False` (the crawler mode) leaves the table's columns and the
    partition's other parameters as the crawler wrote them.
    """
    objects = lake.list_day(validate_table(table), validate_day(day))
    data_objects = [o for o in objects if o.is_data()]
    judged, contract = judge_and_record(lake, catalog, table, day, objects)
    size = sum(o.size for o in data_objects)
    if not data_objects:
        dropped = retract_day(lake, catalog, table, day)
        return CrawledDay(table, day, lake.day_uri(table, day), 0, 0, 0, contract.columns(), False, judged,
                          dropped=dropped)
    found = None if own_schema else catalog.get_table(table)
    columns = register_columns(lake, catalog, table, contract) if found is None else tuple(found.columns)
    kept = {} if found is None else catalog.partition_parameters(table).get(day, {})
    location = register_accepted(lake, catalog, table, day, judged, {
        **kept,
        "recordCount": str(judged.rows),
        "objectCount": str(len(data_objects)),
        "sizeKey": str(size),
        QUARANTINED_ROWS: str(judged.quarantined_rows()),
        FINGERPRINT: fingerprint(objects),
        DATA_FINGERPRINT: data_fingerprint((o.name, o.size, o.version) for o in data_objects),
        **recorded_keys(contract, judged),
    })
    return CrawledDay(table, day, location, judged.rows, len(data_objects), size, columns, True, judged)


def follow_other_days(lake: Lake, catalog: Catalog, crawled: CrawledDay, own_schema: bool = True) -> CrawledDay:
    """Re-judge, in day order, every registered day whose verdict the lake no longer supports (after
    `crawled` changed which keys its day delivers); `crawled` with those days named.

    Re-judged in the same crawl rather than by triggering the other days' crawls: a trigger is a
    second run that can be lost (a sensor off, a run canceled) while the quarantine names a day
    that no longer holds the key. Days whose records are gone (`records_missing`) are re-judged first,
    in day order, which writes them again. Then correct in one pass: a day's verdict depends only on the
    keys the earlier days deliver, which re-judging changes for no day. Crash-safe without a journal: the
    stale days are found from the keys files alone on every crawl of any day, whether or not this
    crawl changed anything, so a crawl killed part-way is finished by the next crawl of the table.
    """
    contract = contract_for(crawled.table)
    registered = catalog.partition_parameters(crawled.table)
    missing = records_missing(lake, contract, registered)
    # in day order: each re-judged against the earlier days' records, repaired first
    repaired = [crawl_day(lake, catalog, crawled.table, day, own_schema) for day in missing]
    stale = stale_days(lake, contract, catalog.partition_parameters(crawled.table)) if contract.key else []
    others = {c.day: c for c in [*repaired, *(crawl_day(lake, catalog, crawled.table, day, own_schema) for day in stale)]}
    return replace(crawled, rejudged=tuple(sorted(others)), others=tuple(others[d] for d in sorted(others)))


def records_missing(lake: Lake, contract: Contract, registered: dict[str, dict[str, str]]) -> list[str]:
    """The registered days whose crawl records are gone from the lake (deleted by hand, or a day crawled
    before keys files existed), sorted: no keys file (for a table with a key), or no quarantine ledger
    though the partition counts quarantined rows.

    Without its keys file a day's keys look free to every other day's crawl (an image accepted on two
    days), and without its ledger the job would read the day's quarantined duplicates as rows; so each
    crawl re-judges such days from their files, which writes the records again (one listing each)."""
    table = contract.table
    have_ledger = {k.removeprefix(f"{layout.QUARANTINE}/{table}/day=").partition("/")[0]
                   for k in lake.list_keys(f"{layout.QUARANTINE}/{table}")}
    have_keys = ({k.rpartition("/day=")[2].removesuffix(".jsonl") for k in lake.list_keys(f"{layout.keys_dir()}/{table}")}
                 if contract.key else set(registered))
    return sorted(day for day, parameters in registered.items()
                  if day not in have_keys or (int(parameters.get(QUARANTINED_ROWS) or 0) and day not in have_ledger))
