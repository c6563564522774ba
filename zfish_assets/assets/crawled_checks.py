"""The crawled tables' checks: partitions match the lake, rows match the landing, columns, quarantine.

Each is a pure function of what it reads (`check_specs`). The `quarantine` check of a crawled table
reports the rows its crawls quarantined (a warning), and fails the run (an error) when a day's
share exceeds `ZFISH_QUARANTINE_MAX_RATE`.
"""

from __future__ import annotations

from collections import Counter

from dagster import AssetCheckResult, AssetCheckSeverity

from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.accepted import day_prefix, rows_key
from glue_scripts.zfish_etl.contract import contract_for
from glue_scripts.zfish_etl.ledger import read_ledger
from zfish_assets.bounded import bounded_json
from zfish_assets import settings
from zfish_assets.assets.check_specs import (
    MAX_LISTED, CheckSpec, LandedLookup, TableLookup, asset_checks, listed, tables_exist,
)
from zfish_assets.domain.crawl import fingerprint
from zfish_assets.backends.sql import in_days, qualified
from zfish_assets.dagster_names import DATA_FINGERPRINT, FINGERPRINT, QUARANTINED_ROWS, RAW_TABLES, raw_asset_name
from zfish_assets.resources.data_catalog import Catalog
from zfish_assets.resources.lake import Lake
from zfish_assets.resources.query import Query

MAX_RATE_VARIABLE, DEFAULT_MAX_RATE = settings.QUARANTINE_MAX_RATE.name, settings.QUARANTINE_MAX_RATE.default


def not_serving_accepted(lake: Lake, catalog: Catalog, asset: str, days: set[str]) -> list[str]:
    """The registered `days` whose partition does not point at an existing accepted-rows object of
    the day (`glue_scripts/zfish_etl/accepted.py`), each with where it points: Athena reads such a
    day's raw files (quarantined lines too), or nothing. A partition registered over the raw folder
    (by a Glue crawler run outside zfish, or a crawl from before the accepted rows) is one."""
    table = catalog.get_table(asset)
    locations = {day: loc for day, loc in (table.partitions if table else {}).items() if day in days}
    held = set(lake.list_keys(f"{layout.accepted_dir()}/{asset}")) if locations else set()
    base = lake.uri().rstrip("/") + "/"
    return [f"day={day} at {location}" for day, location in sorted(locations.items())
            if not location.startswith(base + day_prefix(asset, day) + "/")
            or rows_key(location.removeprefix(base).strip("/")) not in held]


def partitions_match_lake(asset: str, days: list[str] | None, lake: Lake, catalog: Catalog) -> AssetCheckResult:
    """Registered days against the day folders holding data files, each day's files against the
    fingerprint its crawl recorded, and each registered day's partition against its accepted rows."""
    registered = catalog.partition_parameters(asset)
    candidates = set(lake.list_days(asset)) | set(registered)
    scope = candidates if days is None else set(days)
    objects = {day: lake.list_day(asset, day) for day in sorted(scope & candidates)}
    files = {day: [o for o in found if o.is_data()] for day, found in objects.items()}
    in_lake = {day for day, found in files.items() if found}
    unregistered = sorted(in_lake - set(registered))
    orphaned = sorted((set(registered) & scope) - in_lake)
    changed = [
        f"day={day}: {len(files[day])} files / {sum(o.size for o in files[day])} bytes now, "
        f"{registered[day].get('objectCount')} files / {registered[day].get('sizeKey')} bytes when crawled"
        for day in sorted(in_lake & set(registered))
        if fingerprint(objects[day]) != registered[day].get(FINGERPRINT)
    ]
    raw_served = not_serving_accepted(lake, catalog, asset, scope & set(registered))
    problems = (
        [f"day folders not registered: {listed(unregistered)}"] * bool(unregistered)
        + [f"registered days with no folder: {listed(orphaned)}"] * bool(orphaned)
        + [f"files changed since the crawl (re-crawl the day): {listed(changed)}"] * bool(changed)
        + [f"partitions not at the day's accepted rows, so Athena reads the raw files, quarantined lines "
           f"included (re-crawl the day): {listed(raw_served)}"] * bool(raw_served)
    )
    return AssetCheckResult(
        passed=not problems,
        description="; ".join(problems) or f"{len(scope & set(registered))} registered days match the lake",
        metadata={"days_checked": len(scope), "unregistered": len(unregistered), "orphaned": len(orphaned),
                  "changed": len(changed), "not_at_accepted_rows": len(raw_served)},
    )


def rows_match_landed(asset: str, days: list[str] | None, query: Query, catalog: Catalog,
                      landed: LandedLookup) -> AssetCheckResult:
    """Rows per registered day of the run: the query side's count against the landing's, less the
    quarantined rows (the crawl's `recordCount` for a day whose crawled files did not land here)."""
    registered = catalog.partition_parameters(asset)
    scope = sorted(set(registered) if days is None else set(days) & set(registered))
    counted = {r["day"]: r["n"] for r in query.query(
        f"SELECT day, count(*) AS n FROM {qualified(catalog.database, asset)} WHERE {in_days('day', scope)} "
        "GROUP BY day", {asset: scope}).to_pylist()} if scope else {}
    mismatches = []
    for day in scope:
        landed_rows = landed(raw_asset_name(asset), day, registered[day].get(DATA_FINGERPRINT))
        quarantined = int(registered[day].get(QUARANTINED_ROWS, 0))
        expected = int(registered[day]["recordCount"]) if landed_rows is None else landed_rows - quarantined
        if counted.get(day, 0) != expected:
            mismatches.append(f"day={day}: expected {expected}, query counts {counted.get(day, 0)}")
    return AssetCheckResult(
        passed=not mismatches,
        description="; ".join(mismatches[:MAX_LISTED]) or f"{len(scope)} days: rows match the landing",
        metadata={"days_checked": len(scope), "rows_counted": sum(counted.get(d, 0) for d in scope),
                  "days_differing": len(mismatches)},
    )


def required_columns(asset: str, tables: TableLookup) -> AssetCheckResult:
    """The catalog's columns against the contract's (evolved by the members the crawls added)."""
    found = tables(asset)
    columns = dict(found.columns)
    problems = [
        f"{name}: expected {ctype}, found {columns.get(name, 'nothing')}"
        for name, ctype in contract_for(asset).evolve_from_columns(found.columns).columns()
        if columns.get(name) != ctype
    ]
    return AssetCheckResult(passed=not problems, description="; ".join(problems) or "all required columns present",
                            metadata={"columns": bounded_json(columns)})


def quarantined_per_day(lake: Lake, table: str, registered: dict[str, dict[str, str]],
                        scope: list[str]) -> dict[str, dict]:
    """Per day of `scope` with a quarantine: rows quarantined and read, the share, reasons and files."""
    per_day: dict[str, dict] = {}
    for day in scope:
        entries = read_ledger(lake.get_bytes, table, day) or []
        if entries:
            accepted = int(registered.get(day, {}).get("recordCount", 0))
            per_day[day] = {"quarantined": len(entries), "rows": accepted + len(entries),
                            "rate": round(len(entries) / (accepted + len(entries)), 4),
                            "reasons": dict(sorted(Counter(e.reason for e in entries).items())),
                            "files": sorted({e.file for e in entries})}
    return per_day


def quarantine(asset: str, days: list[str] | None, lake: Lake, catalog: Catalog) -> AssetCheckResult:
    """Quarantined rows and misnamed folders: a warning, an error when a day's share is above the maximum."""
    max_rate = settings.QUARANTINE_MAX_RATE.get()
    registered = catalog.partition_parameters(asset)
    scope = sorted((set(lake.list_days(asset)) | set(registered)) if days is None else set(days))
    per_day = quarantined_per_day(lake, asset, registered, scope)
    over = [d for d, v in per_day.items() if v["rate"] > max_rate]
    reasons = sum((Counter(v["reasons"]) for v in per_day.values()), Counter())
    misnamed = lake.misnamed(asset)
    first = settings.sim_start().isoformat()
    early = [f"day={d}" for d in lake.list_days(asset) if d < first]  # no partition: never crawled
    problems = [f"day={d}: {v['quarantined']} of {v['rows']} quarantined ({v['rate']:.0%}): "
                + ", ".join(f"{r} {n}" for r, n in v["reasons"].items()) + f" (in {listed(v['files'])})"
                for d, v in per_day.items()]
    return AssetCheckResult(
        passed=not per_day and not misnamed and not early,
        severity=AssetCheckSeverity.ERROR if over else AssetCheckSeverity.WARN,
        description=(
            "; ".join(filter(None, [
                listed(problems) if per_day else "",
                f"above the {max_rate:.0%} allowed ({MAX_RATE_VARIABLE}): {listed(over)}" if over else "",
                f"not day=YYYY-MM-DD folders under {asset}/, never read (rename them): {listed(misnamed)}"
                if misnamed else "",
                f"day folders under {asset}/ before {settings.SIM_START.name}={first}, the first partition, never "
                f"crawled (move them, or start the partitions earlier): {listed(early)}" if early else ""]))
        ) if per_day or misnamed or early else f"{len(scope)} days: nothing quarantined",
        metadata={"days_checked": len(scope), "quarantined": sum(v["quarantined"] for v in per_day.values()),
                  "misnamed_folders": bounded_json(misnamed), "days_before_first_partition": bounded_json(early),
                  "max_rate": max_rate, "days_over_max_rate": len(over),
                  "reasons": bounded_json(dict(sorted(reasons.items()))),
                  "per_day": bounded_json(per_day)},
    )


def crawled_specs(table: str) -> list[CheckSpec]:
    """The four checks of one crawled table."""
    return [
        CheckSpec(table, "partitions_match_lake",
                  "Registered partitions are exactly the day folders, no file changed since the crawl, and "
                  "each partition points at its day's accepted rows (what Athena reads).",
                  True, partitions_match_lake),
        CheckSpec(table, "rows_match_landed",
                  "Rows the query side counts per registered day equal the rows landed that day, "
                  "less the quarantined ones.", True, rows_match_landed),
        CheckSpec(table, "required_columns", "The table has the columns of its contract, with their types.",
                  True, required_columns, tables_exist(table, otherwise=f"{table} not crawled yet: no day has files")),
        CheckSpec(table, "quarantine",
                  f"Rows quarantined per day, by reason: a warning when there are any, an error when a "
                  f"day's share exceeds {MAX_RATE_VARIABLE} (default {DEFAULT_MAX_RATE}).", True, quarantine),
    ]


crawled_checks = asset_checks(spec for table in RAW_TABLES for spec in crawled_specs(table))
