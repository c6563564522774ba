"""Every schema change of the crawled tables and joined_fish_data, a warning (evolution is allowed,
and worth seeing).

The column schema (`dagster/column_schema`: the crawl's, the IO manager's) of an asset's latest
materialization against that of the previous run's. Unlike Dagster's factory check, which compares
the last two materializations, it compares runs: a range run records one materialization per day,
all with the same schema.
"""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity

from zfish_assets.bounded import bounded_json
from zfish_assets.assets.check_specs import CheckSpec, Schemas, asset_checks
from zfish_assets.dagster_names import JOINED, RAW_TABLES


def column_schema_change(schemas: Schemas) -> AssetCheckResult:
    """Columns added, removed or retyped between the latest run's schema and the previous run's."""
    earlier = [columns for run_id, columns in schemas if run_id != schemas[0][0]]
    if not earlier:
        return AssetCheckResult(passed=True, description="no earlier run's column schema to compare with")
    now, before = schemas[0][1], earlier[0]
    changes = ([f"added {n} ({t})" for n, t in now.items() if n not in before]
               + [f"removed {n}" for n in before if n not in now]
               + [f"{n}: {before[n]} -> {t}" for n, t in now.items() if n in before and before[n] != t])
    return AssetCheckResult(passed=not changes, severity=AssetCheckSeverity.WARN,
                            description="; ".join(changes) or f"{len(now)} columns, as in the previous run",
                            metadata={"changes": bounded_json(changes)})


schema_checks = asset_checks(
    CheckSpec(asset, "column_schema_change",
              "Columns added, removed or retyped since the previous run's materialization.", False,
              column_schema_change)
    for asset in (*RAW_TABLES, JOINED))
