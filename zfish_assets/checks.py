"""Asset checks: SQL through the query engine and listings through the lake, nothing engine-specific.

Checks are not partitioned (a preview feature that runs partition-less in range runs): they cover
the days of the run that triggered them, and every day when run on their own, so that an evening's
checks cost what its days cost, however long the history. The SQL says its days (`day IN (...)`,
on which Athena prunes partitions) and tells the engine (`query(sql, days=...)`, over which DuckDB
builds its views). One read stays whole: every label (a fish's latest may be of any day).
`unique_image_id` compares the run's image_ids with every day's through the key digests the job
keeps beside the table (`table_keys`), reading image_ids only of the days where a hash repeats and
of days without a digest of their current files (every day when most have none). The
`quarantine` check of a crawled table reports the rows its crawls quarantined (a warning), and
fails the run (an error) when a day's share exceeds `ZFISH_QUARANTINE_MAX_RATE`.
"""


from collections import Counter
from collections.abc import Sequence

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetKey,
    AssetRecordsFilter,
    MetadataValue,
    asset_check,
)

from glue_scripts.zfish_etl.contract import contract_for, is_data_file
from zfish_assets import settings
from zfish_assets.partitions import days_between, validate_day
from zfish_assets.crawl import QUARANTINED_ROWS, fingerprint
from zfish_assets.quarantine import read_ledger
from zfish_assets.resources.catalog import Catalog
from zfish_assets.resources.lake import Lake
from zfish_assets.resources.query import QueryEngine, identifier, sql_string
from zfish_assets.table_keys import repeated_key_days

MAX_RATE_VARIABLE = "ZFISH_QUARANTINE_MAX_RATE"
DEFAULT_MAX_RATE = "0.1"
JOINED = "joined_fish_data"
MAX_LISTED = 20


def max_quarantine_rate() -> float:
    """`ZFISH_QUARANTINE_MAX_RATE`: the share of a day's rows that may be quarantined before it is an error."""
    raw = settings.env(MAX_RATE_VARIABLE, DEFAULT_MAX_RATE)
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{MAX_RATE_VARIABLE}={raw!r} is not a share between 0 and 1")
    return rate


def run_days(context: AssetCheckExecutionContext) -> list[str] | None:
    """The days of the run's partition or partition range; None for a run without partitions."""
    tags = context.run.tags
    if "dagster/partition" in tags:
        return [validate_day(tags["dagster/partition"])]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    return days_between(start, end) if start and end else None


def _listed(items: Sequence[object]) -> str:
    shown = ", ".join(str(i) for i in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _table_name(catalog: Catalog, table: str) -> str:
    return f"{identifier(catalog.database)}.{identifier(table)}"


def _in_days(column: str, days: Sequence[str] | None) -> str:
    """SQL keeping the rows of `days` (every row when None), spelled the same for DuckDB and Athena."""
    if days is None:
        return "TRUE"
    return f"{column} IN ({', '.join(sql_string(d) for d in days)})" if days else "FALSE"


def _scope(days: Sequence[str] | None, *tables: str) -> dict[str, list[str]] | None:
    """The days each of `tables` is read over (the rest are read whole); None when the run has no days."""
    return None if days is None else dict.fromkeys(tables, list(days))


def landed_rows(context: AssetCheckExecutionContext, raw_asset: str, day: str) -> int | None:
    """Rows the latest landing of `day` recorded (None when the day never landed here)."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(raw_asset), asset_partitions=[day]), limit=1
    ).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get("dagster/row_count")
    return None if value is None else int(value.value)


def crawled_table_checks(table: str) -> list[AssetChecksDefinition]:
    """The crawled table's checks: partitions match the lake, rows match the landing, columns present."""

    @asset_check(asset=table, name="partitions_match_lake", blocking=True,
                 description="Registered partitions are exactly the day folders, and no file changed since the crawl.")
    def partitions_match_lake(context: AssetCheckExecutionContext, lake: Lake, catalog: Catalog) -> AssetCheckResult:
        registered = catalog.partition_parameters(table)
        days = run_days(context)
        candidates = set(lake.list_days(table)) | set(registered)
        scope = candidates if days is None else set(days)
        listed = {day: lake.list_day(table, day) for day in sorted(scope & candidates)}
        files = {day: [o for o in objects if is_data_file(o.name)] for day, objects in listed.items()}
        in_lake = {day for day, listed in files.items() if listed}
        unregistered = sorted(in_lake - set(registered))
        orphaned = sorted((set(registered) & scope) - in_lake)
        changed = [
            f"day={day}: {len(files[day])} files / {sum(o.size for o in files[day])} bytes now, "
            f"{registered[day].get('objectCount')} files / {registered[day].get('sizeKey')} bytes when crawled"
            for day in sorted(in_lake & set(registered))
            if fingerprint(listed[day]) != registered[day].get("zfish.fingerprint")
        ]
        problems = (
            [f"day folders not registered: {_listed(unregistered)}"] * bool(unregistered)
            + [f"registered days with no folder: {_listed(orphaned)}"] * bool(orphaned)
            + [f"files changed since the crawl (re-crawl the day): {_listed(changed)}"] * bool(changed)
        )
        return AssetCheckResult(
            passed=not problems,
            description="; ".join(problems) or f"{len(scope & set(registered))} registered days match the lake",
            metadata={"days_checked": len(scope), "unregistered": len(unregistered), "orphaned": len(orphaned),
                      "changed": len(changed)},
        )

    @asset_check(asset=table, name="rows_match_landed", blocking=True,
                 description="Rows the query engine counts per registered day equal the rows landed that day, "
                             "less the quarantined ones.")
    def rows_match_landed(context: AssetCheckExecutionContext, query: QueryEngine, catalog: Catalog) -> AssetCheckResult:
        registered = catalog.partition_parameters(table)
        days = run_days(context)
        scope = sorted(set(registered) if days is None else set(days) & set(registered))
        counted = {r["day"]: r["n"] for r in query.query(
            f"SELECT day, count(*) AS n FROM {_table_name(catalog, table)} WHERE {_in_days('day', scope)} GROUP BY day",
            _scope(scope, table)).to_pylist()} if scope else {}
        mismatches = []
        for day in scope:
            landed = landed_rows(context, f"raw_{table}", day)
            quarantined = int(registered[day].get(QUARANTINED_ROWS, 0))
            expected = int(registered[day]["recordCount"]) if landed is None else landed - quarantined
            if counted.get(day, 0) != expected:
                mismatches.append(f"day={day}: expected {expected}, query counts {counted.get(day, 0)}")
        return AssetCheckResult(
            passed=not mismatches,
            description="; ".join(mismatches[:MAX_LISTED]) or f"{len(scope)} days: rows match the landing",
            metadata={"days_checked": len(scope), "rows_counted": sum(counted.get(d, 0) for d in scope),
                      "days_differing": len(mismatches)},
        )

    @asset_check(asset=table, name="required_columns", blocking=True,
                 description="The table has the columns of its contract, with their types.")
    def required_columns(catalog: Catalog) -> AssetCheckResult:
        found = catalog.get_table(table)
        if found is None:
            return AssetCheckResult(passed=True, description=f"{table} not crawled yet: no day has files")
        columns = dict(found.columns)
        problems = [
            f"{name}: expected {ctype}, found {columns.get(name, 'nothing')}"
            for name, ctype in contract_for(table).evolve_from_columns(found.columns).columns()
            if columns.get(name) != ctype
        ]
        return AssetCheckResult(passed=not problems, description="; ".join(problems) or "all required columns present",
                                metadata={"columns": MetadataValue.json(columns)})

    @asset_check(asset=table, name="quarantine", blocking=True,
                 description=f"Rows quarantined per day, by reason: a warning when there are any, an error when a "
                             f"day's share exceeds {MAX_RATE_VARIABLE} (default {DEFAULT_MAX_RATE}).")
    def quarantine(context: AssetCheckExecutionContext, lake: Lake, catalog: Catalog) -> AssetCheckResult:
        max_rate = max_quarantine_rate()
        registered = catalog.partition_parameters(table)
        days = run_days(context)
        scope = sorted((set(lake.list_days(table)) | set(registered)) if days is None else set(days))
        per_day: dict[str, dict] = {}
        for day in scope:
            entries = read_ledger(lake, table, day) or []
            if entries:
                accepted = int(registered.get(day, {}).get("recordCount", 0))
                per_day[day] = {"quarantined": len(entries), "rows": accepted + len(entries),
                                "rate": round(len(entries) / (accepted + len(entries)), 4),
                                "reasons": dict(sorted(Counter(e.reason for e in entries).items())),
                                "files": sorted({e.file for e in entries})}
        over = [d for d, v in per_day.items() if v["rate"] > max_rate]
        reasons = sum((Counter(v["reasons"]) for v in per_day.values()), Counter())
        misnamed = lake.misnamed(table)
        problems = [f"day={d}: {v['quarantined']} of {v['rows']} quarantined ({v['rate']:.0%}): "
                    + ", ".join(f"{r} {n}" for r, n in v["reasons"].items()) + f" (in {_listed(v['files'])})"
                    for d, v in per_day.items()]
        return AssetCheckResult(
            passed=not per_day and not misnamed,
            severity=AssetCheckSeverity.ERROR if over else AssetCheckSeverity.WARN,
            description=(
                "; ".join(filter(None, [
                    _listed(problems) if per_day else "",
                    f"above the {max_rate:.0%} allowed ({MAX_RATE_VARIABLE}): {_listed(over)}" if over else "",
                    f"not day=YYYY-MM-DD folders under {table}/, never read (rename them): {_listed(misnamed)}"
                    if misnamed else ""]))
            ) if per_day or misnamed else f"{len(scope)} days: nothing quarantined",
            metadata={"days_checked": len(scope), "quarantined": sum(v["quarantined"] for v in per_day.values()),
                      "misnamed_folders": MetadataValue.json(misnamed),
                      "max_rate": max_rate, "days_over_max_rate": len(over),
                      "reasons": MetadataValue.json(dict(sorted(reasons.items()))),
                      "per_day": MetadataValue.json(per_day)},
        )

    return [partitions_match_lake, rows_match_landed, required_columns, quarantine]


@asset_check(asset=JOINED, name="labeled_rows", blocking=True,
             description="Per image day of the run, the table holds exactly the observations whose fish has a "
                         "registered label (labels of any day).")
def labeled_rows(context: AssetCheckExecutionContext, query: QueryEngine, catalog: Catalog) -> AssetCheckResult:
    days = run_days(context)
    obs, out = _table_name(catalog, "observations"), _table_name(catalog, "outcomes")
    expected = {} if catalog.get_table("outcomes") is None else {r["day"]: r["n"] for r in query.query(
        f"SELECT o.day, count(*) AS n FROM {obs} o WHERE {_in_days('o.day', days)} "
        f"AND o.fish_id IN (SELECT fish_id FROM {out} WHERE condition_developed IS NOT NULL) GROUP BY o.day",
        _scope(days, "observations")).to_pylist()}
    actual = {} if catalog.get_table(JOINED) is None else {r["day"]: r["n"] for r in query.query(
        f"SELECT day, count(*) AS n FROM {_table_name(catalog, JOINED)} WHERE {_in_days('day', days)} GROUP BY day",
        _scope(days, JOINED)).to_pylist()}
    differing = sorted(d for d in set(expected) | set(actual) if expected.get(d, 0) != actual.get(d, 0))
    return AssetCheckResult(
        passed=not differing,
        description=(
            "days differ (expected vs actual): " + _listed([f"{d}: {expected.get(d, 0)} vs {actual.get(d, 0)}" for d in differing])
            if differing else f"{sum(actual.values())} labeled rows over {len(actual)} days, as expected"
            + ("" if not days else f" (the run's {len(days)} days, {days[0]}..{days[-1]})")
        ),
        metadata={
            "expected_rows": sum(expected.values()),
            "actual_rows": sum(actual.values()),
            "days_differing": MetadataValue.json({d: {"expected": expected.get(d, 0), "actual": actual.get(d, 0)} for d in differing}),
        },
    )


def _repeated_image_ids(joined: str, days: Sequence[str] | None, counted: Sequence[str] | None) -> str:
    """SQL: the image_ids of `days` found more than once, with their count, over the days `counted`
    (None: every day). Exact when `counted` holds every row of each such image_id."""
    of_run = days if days is None or counted is None else sorted(set(days) & set(counted))
    where = [f"image_id IN (SELECT image_id FROM {joined} WHERE {_in_days('day', of_run)})"] * (of_run is not None) \
        + [_in_days("day", counted)] * (counted is not None)
    return (f"SELECT image_id, count(*) AS n FROM {joined} {'WHERE ' + ' AND '.join(where) + ' ' if where else ''}"
            "GROUP BY image_id HAVING count(*) > 1 ORDER BY image_id")


@asset_check(asset=JOINED, name="unique_image_id", blocking=True,
             description="No image_id of the run's days twice in the whole table (Hudi keys are unique per "
                         "partition only).")
def unique_image_id(context: AssetCheckExecutionContext, query: QueryEngine, catalog: Catalog,
                    lake: Lake) -> AssetCheckResult:
    table = catalog.get_table(JOINED)
    if table is None:
        return AssetCheckResult(passed=True, description="no table yet")
    days, joined = run_days(context), _table_name(catalog, JOINED)
    # A run's image_id may repeat one of any day: the key digests beside the table name the days
    # where it can (see table_keys), and only those days' image_ids are read and counted (without
    # digests, only the image_id and day columns of every day).
    repeated = repeated_key_days(table.location, lake.storage_options(), days)
    counted = None if repeated is None else repeated.days  # None: no digests to go by, every day is read
    dupes = [] if counted == [] else query.query(
        _repeated_image_ids(joined, days, counted), _scope(counted, JOINED)).to_pylist()
    return AssetCheckResult(
        passed=not dupes,
        description=f"duplicated image_id: {_listed([d['image_id'] + ' x' + str(d['n']) for d in dupes])}" if dupes else "no duplicate image_id",
        metadata={"duplicated_image_ids": len(dupes),
                  "key_digest_days": 0 if repeated is None else repeated.from_digests,
                  "days_without_key_digest": MetadataValue.json("every day" if repeated is None else repeated.from_table),
                  "days_counted": MetadataValue.json("every day" if counted is None else counted)},
    )


@asset_check(asset=JOINED, name="labels_are_latest", blocking=True,
             description="No null label, and each row of the run's days carries its fish's latest registered label.")
def labels_are_latest(context: AssetCheckExecutionContext, query: QueryEngine, catalog: Catalog) -> AssetCheckResult:
    if catalog.get_table(JOINED) is None:
        return AssetCheckResult(passed=True, description="no table yet")
    days, joined = run_days(context), _table_name(catalog, JOINED)
    # Every label is read (a fish's latest may be of any day), but only the run's fish are ranked.
    of_run = "" if days is None else f" AND fish_id IN (SELECT fish_id FROM {joined} WHERE {_in_days('day', days)})"
    # The rule, restated independently of the job: the latest day wins, a positive label within a day.
    rows = query.query(
        f"WITH ranked AS (SELECT fish_id, condition_developed, day, row_number() OVER "
        f"(PARTITION BY fish_id ORDER BY day DESC, condition_developed DESC) AS rn "
        f"FROM {_table_name(catalog, 'outcomes')} WHERE condition_developed IS NOT NULL{of_run}) "
        f"SELECT j.image_id, j.fish_id, j.condition_developed AS stored, r.condition_developed AS latest "
        f"FROM {joined} j LEFT JOIN ranked r ON r.fish_id = j.fish_id AND r.rn = 1 "
        f"WHERE {_in_days('j.day', days)} AND (j.condition_developed IS NULL OR r.condition_developed IS NULL "
        f"OR j.condition_developed <> r.condition_developed)",
        _scope(days, JOINED),
    ).to_pylist()
    return AssetCheckResult(
        passed=not rows,
        description=(f"{len(rows)} rows with a null or stale label: "
                     + _listed([f"{r['image_id']} ({r['fish_id']}: {r['stored']} vs latest {r['latest']})" for r in rows]))
        if rows else "every row has its fish's latest label",
        metadata={"stale_or_null_labels": len(rows)},
    )


@asset_check(asset=JOINED, name="flattened_schema", blocking=True,
             description="Gene columns flattened from genetic_markers; no genetic_markers struct left.")
def flattened_schema(catalog: Catalog) -> AssetCheckResult:
    joined, observations = catalog.get_table(JOINED), catalog.get_table("observations")
    if joined is None or observations is None:
        return AssetCheckResult(passed=True, description="no table yet")
    markers = dict(observations.columns).get("genetic_markers", "struct<>")
    genes = [f.split(":")[0] for f in markers[len("struct<"):-1].split(",") if f]
    columns = dict(joined.columns)
    missing = [g for g in genes if g not in columns]
    problems = [f"missing gene columns: {', '.join(missing)}"] * bool(missing) + \
        ["genetic_markers struct still present"] * ("genetic_markers" in columns)
    return AssetCheckResult(passed=not problems, description="; ".join(problems) or f"gene columns {', '.join(genes)} present",
                            metadata={"gene_columns": ", ".join(genes)})


joined_checks = [labeled_rows, unique_image_id, labels_are_latest, flattened_schema]
crawled_checks = crawled_table_checks("observations") + crawled_table_checks("outcomes")


def column_schema_change_check(asset: str) -> AssetChecksDefinition:
    """Every schema change of `asset`: the column schema (`dagster/column_schema`) of its latest
    materialization against that of the previous run's, a warning when columns were added, removed
    or retyped (evolution is allowed, and worth seeing). Unlike Dagster's factory check, which
    compares the last two materializations, it compares runs: a range run records one
    materialization per day, all with the same schema."""

    @asset_check(asset=asset, name="column_schema_change",
                 description="Columns added, removed or retyped since the previous run's materialization.")
    def column_schema_change(context: AssetCheckExecutionContext) -> AssetCheckResult:
        records = [r for r in context.instance.fetch_materializations(AssetKey(asset), limit=200).records
                   if "dagster/column_schema" in r.asset_materialization.metadata]
        earlier = [r for r in records if records and r.run_id != records[0].run_id]
        if not earlier:
            return AssetCheckResult(passed=True, description="no earlier run's column schema to compare with")

        def columns(record) -> dict[str, str]:
            schema = record.asset_materialization.metadata["dagster/column_schema"].value
            return {c.name: c.type for c in schema.columns}

        now, before = columns(records[0]), columns(earlier[0])
        changes = ([f"added {n} ({t})" for n, t in now.items() if n not in before]
                   + [f"removed {n}" for n in before if n not in now]
                   + [f"{n}: {before[n]} -> {t}" for n, t in now.items() if n in before and before[n] != t])
        return AssetCheckResult(passed=not changes, severity=AssetCheckSeverity.WARN,
                                description="; ".join(changes) or f"{len(now)} columns, as in the previous run",
                                metadata={"changes": MetadataValue.json(changes)})

    return column_schema_change


schema_checks = [column_schema_change_check(a) for a in ("observations", "outcomes", JOINED)]
