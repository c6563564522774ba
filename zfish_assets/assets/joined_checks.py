"""joined_fish_data's checks: labeled rows, unique image_id, latest labels, the flattened schema.

Each is a pure function of what it reads (`check_specs`), over the run's days. One read stays
whole: every label (a fish's latest may be of any day). `unique_image_id` compares the run's
image_ids with every day's through the key digests the job keeps beside the table
(`backends/key_digests.py`), reading image_ids only of the days where a hash repeats and of days
without a digest of their current files (every day when most have none).
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetCheckResult

from zfish_assets.bounded import bounded_json
from zfish_assets.assets.check_specs import CheckSpec, TableLookup, asset_checks, listed, tables_exist
from zfish_assets.backends.sql import in_days, qualified
from zfish_assets.dagster_names import JOINED
from zfish_assets.backends.key_digests import repeated_key_days
from zfish_assets.resources.data_catalog import Catalog
from zfish_assets.resources.lake import Lake
from zfish_assets.resources.query import Query


def labeled_rows(days: list[str] | None, query: Query, catalog: Catalog, tables: TableLookup) -> AssetCheckResult:
    """Rows per day of the table against the observations whose fish has a registered label."""
    obs, out = qualified(catalog.database, "observations"), qualified(catalog.database, "outcomes")
    expected = {} if tables("outcomes") is None else {r["day"]: r["n"] for r in query.query(
        f"SELECT o.day, count(*) AS n FROM {obs} o WHERE {in_days('o.day', days)} "
        f"AND o.fish_id IN (SELECT fish_id FROM {out} WHERE condition_developed IS NOT NULL) GROUP BY o.day",
        {"observations": days, "outcomes": None}).to_pylist()}
    actual = {} if tables(JOINED) is None else {r["day"]: r["n"] for r in query.query(
        f"SELECT day, count(*) AS n FROM {qualified(catalog.database, JOINED)} WHERE {in_days('day', days)} "
        "GROUP BY day", {JOINED: days}).to_pylist()}
    differing = sorted(d for d in set(expected) | set(actual) if expected.get(d, 0) != actual.get(d, 0))
    return AssetCheckResult(
        passed=not differing,
        description=(
            "days differ (expected vs actual): " + listed([f"{d}: {expected.get(d, 0)} vs {actual.get(d, 0)}" for d in differing])
            if differing else f"{sum(actual.values())} labeled rows over {len(actual)} days, as expected"
            + ("" if not days else f" (the run's {len(days)} days, {days[0]}..{days[-1]})")
        ),
        metadata={
            "expected_rows": sum(expected.values()),
            "actual_rows": sum(actual.values()),
            "days_differing": bounded_json({d: {"expected": expected.get(d, 0), "actual": actual.get(d, 0)} for d in differing}),
        },
    )


def repeated_image_ids_sql(joined: str, days: Sequence[str] | None, counted: Sequence[str] | None) -> str:
    """SQL: the image_ids of `days` found more than once, with their count, over the days `counted`
    (None: every day). Exact when `counted` holds every row of each such image_id."""
    of_run = days if days is None or counted is None else sorted(set(days) & set(counted))
    where = [f"image_id IN (SELECT image_id FROM {joined} WHERE {in_days('day', of_run)})"] * (of_run is not None) \
        + [in_days("day", counted)] * (counted is not None)
    return (f"SELECT image_id, count(*) AS n FROM {joined} {'WHERE ' + ' AND '.join(where) + ' ' if where else ''}"
            "GROUP BY image_id HAVING count(*) > 1 ORDER BY image_id")


def unique_image_id(days: list[str] | None, query: Query, catalog: Catalog, lake: Lake,
                    tables: TableLookup) -> AssetCheckResult:
    """The run's image_ids that occur more than once in the whole table. A run's image_id may repeat
    one of any day: the key digests beside the table name the days where it can (`table_keys`), and
    only those days' image_ids are read and counted (without digests, the image_id and day columns
    of every day)."""
    joined = qualified(catalog.database, JOINED)
    repeated = repeated_key_days(tables(JOINED).location, lake.storage_options(), days)
    counted = None if repeated is None else repeated.days  # None: no digests to go by, every day is read
    dupes = [] if counted == [] else query.query(
        repeated_image_ids_sql(joined, days, counted), {JOINED: counted}).to_pylist()
    return AssetCheckResult(
        passed=not dupes,
        description=f"duplicated image_id: {listed([d['image_id'] + ' x' + str(d['n']) for d in dupes])}" if dupes else "no duplicate image_id",
        metadata={"duplicated_image_ids": len(dupes),
                  "key_digest_days": 0 if repeated is None else repeated.from_digests,
                  "days_without_key_digest": bounded_json("every day" if repeated is None else repeated.from_table),
                  "days_counted": bounded_json("every day" if counted is None else counted)},
    )


def labels_are_latest(days: list[str] | None, query: Query, catalog: Catalog) -> AssetCheckResult:
    """Rows of the run's days whose label is null or not their fish's latest (every label is read, but
    only the run's fish are ranked)."""
    joined = qualified(catalog.database, JOINED)
    of_run = "" if days is None else f" AND fish_id IN (SELECT fish_id FROM {joined} WHERE {in_days('day', days)})"
    # The rule, restated independently of the job: the latest day wins, a positive label within a day.
    rows = query.query(
        f"WITH ranked AS (SELECT fish_id, condition_developed, day, row_number() OVER "
        f"(PARTITION BY fish_id ORDER BY day DESC, condition_developed DESC) AS rn "
        f"FROM {qualified(catalog.database, 'outcomes')} WHERE condition_developed IS NOT NULL{of_run}) "
        f"SELECT j.image_id, j.fish_id, j.condition_developed AS stored, r.condition_developed AS latest "
        f"FROM {joined} j LEFT JOIN ranked r ON r.fish_id = j.fish_id AND r.rn = 1 "
        f"WHERE {in_days('j.day', days)} AND (j.condition_developed IS NULL OR r.condition_developed IS NULL "
        f"OR j.condition_developed <> r.condition_developed)",
        {JOINED: days, "outcomes": None},
    ).to_pylist()
    return AssetCheckResult(
        passed=not rows,
        description=(f"{len(rows)} rows with a null or stale label: "
                     + listed([f"{r['image_id']} ({r['fish_id']}: {r['stored']} vs latest {r['latest']})" for r in rows]))
        if rows else "every row has its fish's latest label",
        metadata={"stale_or_null_labels": len(rows)},
    )


def flattened_schema(tables: TableLookup) -> AssetCheckResult:
    """The table's columns against the members of the observations' `genetic_markers` struct."""
    markers = dict(tables("observations").columns).get("genetic_markers", "struct<>")
    genes = [f.split(":")[0] for f in markers[len("struct<"):-1].split(",") if f]
    columns = dict(tables(JOINED).columns)
    missing = [g for g in genes if g not in columns]
    problems = [f"missing gene columns: {', '.join(missing)}"] * bool(missing) + \
        ["genetic_markers struct still present"] * ("genetic_markers" in columns)
    return AssetCheckResult(passed=not problems, description="; ".join(problems) or f"gene columns {', '.join(genes)} present",
                            metadata={"gene_columns": ", ".join(genes)})


JOINED_SPECS = [
    CheckSpec(JOINED, "labeled_rows",
              "Per image day of the run, the table holds exactly the observations whose fish has a "
              "registered label (labels of any day).", True, labeled_rows),
    CheckSpec(JOINED, "unique_image_id",
              "No image_id of the run's days twice in the whole table (Hudi keys are unique per "
              "partition only).", True, unique_image_id, tables_exist(JOINED)),
    CheckSpec(JOINED, "labels_are_latest",
              "No null label, and each row of the run's days carries its fish's latest registered label.",
              True, labels_are_latest, tables_exist(JOINED)),
    CheckSpec(JOINED, "flattened_schema",
              "Gene columns flattened from genetic_markers; no genetic_markers struct left.",
              True, flattened_schema, tables_exist(JOINED, "observations")),
]

joined_checks = asset_checks(JOINED_SPECS)
